"""The metadata agent's framing where llhttp (httptools) splits the header lines
(neutrino.agents.metadata.wire): the places where llhttp's own rules differ from ours and ours must
win, and the llhttp parser kept or replaced from one request to the next on one connection."""

from __future__ import annotations

import pytest

from neutrino.agents.metadata.wire import BadMessage, Request, RequestReader, ResponseReader

GET = b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"


def read_all(data: bytes) -> list[Request]:
    r = RequestReader()
    r.feed(data)
    out = []
    while (req := r.next()) is not None:
        out.append(req)
    assert r.buffered == 0
    return out


@pytest.mark.parametrize("method", ["FOO", "get", "M-SEARCH", "CONNECT", "PRI"])
def test_any_token_is_a_method(method: str) -> None:
    """llhttp knows a fixed list of methods (upper case); ours reads any token, and the metadata API
    answers 405 to the ones it does not serve.  CONNECT with an origin-form target is no tunnel."""
    reqs = read_all(method.encode() + b" /x HTTP/1.1\r\nHost: a\r\n\r\n" + GET)
    assert [(r.method, r.target) for r in reqs] == [(method, "/x"), ("GET", "/latest/meta-data/instance-id")]


@pytest.mark.parametrize(
    "first",
    [
        b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",  # llhttp would stop here
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",  # llhttp would refuse what follows
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",  # llhttp would wait for the body
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_the_next_request_is_read_whatever_the_one_before(first: bytes) -> None:
    reqs = read_all(first + GET + first + GET)
    assert [r.target for r in reqs] == ["/", "/latest/meta-data/instance-id"] * 2
    assert reqs[1].headers == reqs[3].headers == [("host", "169.254.169.254")]


def test_blanks_around_values_are_dropped_inside_kept() -> None:
    (req,) = read_all(b"GET / HTTP/1.1\r\nX-A:\t \ta b\t \r\nX-B: \xe9\r\n\r\n")
    assert req.headers == [("x-a", "a b"), ("x-b", "\xe9")]


@pytest.mark.parametrize(
    "data, status",
    [
        # framing is ours: llhttp (lenient there, as it never frames a body) would take these
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
        # llhttp's refusals are 400s
        (b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX\x80: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\x0bb\r\n\r\n", 400),
    ],
)
def test_refused(data: bytes, status: int) -> None:
    r = RequestReader()
    r.feed(data)
    with pytest.raises(BadMessage) as exc:
        r.next()
    assert exc.value.status == status


def test_requests_before_a_malformed_one_are_served_first() -> None:
    r = RequestReader()
    r.feed(GET + GET + b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n" + GET)
    assert r.next() is not None and r.next() is not None
    with pytest.raises(BadMessage) as exc:
        r.next()
    assert exc.value.status == 400


def test_response_with_both_framings_follows_transfer_encoding() -> None:
    """As HTTP/1.1 says for a recipient of both (the agent reads the API's answers, it does not
    judge them): the chunked body, not the Content-Length, ends the response."""
    r = ResponseReader("GET")
    resp = r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n")
    assert resp is not None and (resp.body, resp.keep_alive, r.leftover) == (b"ab", True, False)
    r = ResponseReader("GET")
    assert r.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz") is None
    assert r.eof().body == b"zz"


@pytest.mark.parametrize(
    "data",
    [b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"],
)
def test_bad_response_headers_are_502(data: bytes) -> None:
    with pytest.raises(BadMessage) as exc:
        ResponseReader("GET").feed(data)
    assert exc.value.status == 502
