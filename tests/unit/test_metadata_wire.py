"""HTTP/1.1 framing of the metadata agent (neutrino.agents.metadata.wire): what it reads, what it
refuses (and with which status), and the bytes it writes."""

from __future__ import annotations

import pytest

from neutrino.agents.metadata.wire import BadMessage, RequestReader, ResponseReader, render_request, render_response

GET = b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nX-Forwarded-For: 10.0.0.5\r\n\r\n"


def read_all(data: bytes, step: int | None = None) -> list:
    """Every request in ``data``, fed at once or ``step`` bytes at a time."""
    r = RequestReader()
    out = []
    chunks = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        r.feed(chunk)
        while (req := r.next()) is not None:
            out.append(req)
    assert r.buffered == 0
    return out


@pytest.mark.parametrize("step", [None, 1, 7])
def test_requests_back_to_back_in_any_pieces(step: int | None) -> None:
    post = b"POST /openstack/latest/password HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    chunked = (
        b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n"
    )
    reqs = read_all(GET + post + chunked + GET, step)
    assert [(r.method, r.target, r.body) for r in reqs] == [
        ("GET", "/latest/meta-data/instance-id", b""),
        ("POST", "/openstack/latest/password", b"hello"),
        ("POST", "/p", b"abcde"),
        ("GET", "/latest/meta-data/instance-id", b""),
    ]
    assert reqs[0].headers == [("host", "169.254.169.254"), ("x-forwarded-for", "10.0.0.5")]
    assert all(r.keep_alive for r in reqs)


def test_header_names_lower_case_values_trimmed_and_repeats_kept() -> None:
    (req,) = read_all(
        b"GET /?a=1&b=%20 HTTP/1.1\r\nX-Forwarded-For:  1.2.3.4 \t\r\nx-forwarded-for: 10.0.0.5\r\nX-Empty:\r\n\r\n"
    )
    assert req.target == "/?a=1&b=%20"
    assert req.get_all("x-forwarded-for") == ["1.2.3.4", "10.0.0.5"]
    assert req.get("x-forwarded-for") == "10.0.0.5" and req.get("x-empty") == "" and req.get("nope") is None


@pytest.mark.parametrize(
    "head, keep",
    [
        (b"GET / HTTP/1.1\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nConnection: Keep-Alive, Close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    ],
)
def test_keep_alive(head: bytes, keep: bool) -> None:
    assert read_all(head)[0].keep_alive is keep


@pytest.mark.parametrize(
    "data, status",
    [
        (b"THIS IS NOT HTTP\r\n\r\n", 400),
        (b"GET\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/9\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\n\r\n", 400),  # two spaces
        (b"GET http://evil/ HTTP/1.1\r\n\r\n", 400),  # absolute-form
        (b"GET /a\x01b HTTP/1.1\r\n\r\n", 400),
        (b"G(T / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nNo colon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n: empty name\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400),  # obsolete line folding
        (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n", 400),  # bare LF
        (b"GET / HTTP/1.1\r\nX: a\rY: b\r\n\r\n", 400),  # bare CR
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", 400),  # no CRLF after the data
        (b"POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", 413),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20000, 431),  # no end of head in sight
    ],
)
def test_refused(data: bytes, status: int) -> None:
    r = RequestReader()
    r.feed(data)
    with pytest.raises(BadMessage) as exc:
        r.next()
    assert exc.value.status == status


def test_incomplete_is_not_an_error() -> None:
    r = RequestReader()
    for part in (b"GET / HT", b"TP/1.1\r\nHost: x\r\n", b"\r"):
        r.feed(part)
        assert r.next() is None
    r.feed(b"\n")
    assert r.next().target == "/"


def test_expect_100_continue_until_the_body_is_read() -> None:
    r = RequestReader()
    r.feed(b"POST /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert r.next() is None and r.expects_continue
    r.feed(b"abc")
    assert r.next().body == b"abc" and not r.expects_continue


# --- responses ---------------------------------------------------------------------------------------
def read_response(data: bytes, method: str = "GET", step: int | None = None, eof: bool = False):
    r = ResponseReader(method)
    chunks = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        resp = r.feed(chunk)
        if resp is not None:
            return resp, r.leftover
    return (r.eof(), r.leftover) if eof else (None, r.leftover)


@pytest.mark.parametrize("step", [None, 1, 5])
def test_response_framings(step: int | None) -> None:
    resp, left = read_response(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc", step=step
    )
    assert (resp.status, resp.headers["content-type"], resp.body, resp.keep_alive, left) == (
        200,
        "text/plain",
        b"abc",
        True,
        False,
    )
    resp, _ = read_response(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n", step=step
    )
    assert resp.body == b"abc" and resp.keep_alive
    # interim 100 Continue, then the response
    resp, _ = read_response(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", step=step
    )
    assert (resp.status, resp.body) == (404, b"")
    # delimited by the end of the connection: never reused
    resp, _ = read_response(b"HTTP/1.0 200 OK\r\n\r\nuntil close", step=step, eof=True)
    assert (resp.body, resp.keep_alive) == (b"until close", False)


def test_response_without_body_and_leftovers() -> None:
    resp, _ = read_response(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 20\r\n\r\n", method="HEAD")
    assert resp.status == 405 and resp.body == b""
    resp, _ = read_response(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert resp.status == 204
    resp, left = read_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naEXTRA")
    assert resp.body == b"a" and left
    resp, _ = read_response(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na")
    assert not resp.keep_alive


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    ],
)
def test_bad_responses(data: bytes) -> None:
    with pytest.raises(BadMessage) as exc:
        ResponseReader("GET").feed(data)
    assert exc.value.status == 502


def test_truncated_response_is_an_error() -> None:
    r = ResponseReader("GET")
    assert r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") is None
    with pytest.raises(BadMessage):
        r.eof()


# --- writing -----------------------------------------------------------------------------------------
def test_render_response() -> None:
    assert render_response(200, b"i-1", "text/plain; charset=UTF-8") == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 3\r\n\r\ni-1"
    )
    assert render_response(400, b"", close=True) == (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    for ctype, extra in (
        ("text/plain\r\nSet-Cookie: x", []),
        ("text/plain\nX: y", []),
        ("text/plain", [("X-A:B", "c")]),
        ("text/plain", [("", "c")]),
        ("text/plain", [("X", "\u20ac")]),
    ):
        with pytest.raises(ValueError):
            render_response(200, b"", ctype, extra)


def test_render_request_and_read_it_back() -> None:
    data = render_request(
        "PUT",
        "/latest/api/token?x=1",
        "127.0.0.1:8775",
        [("X-Instance-ID", "vm-1"), ("X-aws-ec2-metadata-token-ttl-seconds", "60")],
        b"",
    )
    (req,) = read_all(data)
    assert (req.method, req.target, req.body) == ("PUT", "/latest/api/token?x=1", b"")
    assert req.headers == [
        ("host", "127.0.0.1:8775"),
        ("x-instance-id", "vm-1"),
        ("x-aws-ec2-metadata-token-ttl-seconds", "60"),
        ("content-length", "0"),
    ]
    (post,) = read_all(render_request("POST", "/p", "h", [], b"pw"))
    assert post.body == b"pw"
    assert "content-length" not in dict(read_all(render_request("GET", "/", "h", [], b""))[0].headers)
    for method, target, headers in (
        ("GET", "/a b", []),
        ("GET", "relative", []),
        ("G T", "/", []),
        ("GET", "/", [("X", "a\r\nX-Instance-ID: other")]),
    ):
        with pytest.raises(ValueError):
            render_request(method, target, "h", headers, b"")
