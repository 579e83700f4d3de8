#!/usr/bin/env python3
"""HTTP/1.1 parsing benchmark: the metadata agent's framing (``agents/metadata/wire.py``) against
h11 and httptools, on what each metadata request costs the agent.  Prints figures; asserts nothing.

    .venv/bin/python bench/lib_http_parse_bench.py [--requests 20000] [--repeat 5]

Pure CPU, one thread, no network.  Per metadata request the agent parses one request from haproxy
(keep-alive connection, requests arriving one per read) and, when it does not replay a cached
answer, one response from the metadata API; it renders one response to haproxy.  Measured per
parser (best of ``--repeat``, requests/s and microseconds per message):

* request: the haproxy -> agent GET as haproxy sends it (X-Forwarded-For, X-Neutron-Router-ID),
  fed one request per ``feed``, parsed into method, target, version, lower-cased header list and
  body (what ``wire.Request`` holds, so every parser does the same work);
* request + response rendered: the same, then a 200 answer rendered (h11 renders its own;
  httptools has no writer, so ``wire.render_response`` is used);
* response: the metadata API's 200 answer (Content-Length, Cache-Control) parsed for the agent.

Then a strictness table: the malformed requests ``wire.RequestReader`` refuses (see its module
docstring) fed to each parser, and whether it refuses them too.

``wire.py`` now hands its header lines to llhttp (httptools) and keeps its own checks around them
(head size, request and status lines, body framing): "ours (wire.py)" measures that, "httptools"
llhttp alone.  ``--wire FILE`` measures another version of the module instead, e.g. the
hand-written one it replaced (``git show 2402b8a:neutrino/agents/metadata/wire.py > /tmp/w.py``);
the figures are in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import h11  # noqa: E402 - imported after sys.path names the bench folder
import httptools  # noqa: E402 - imported after sys.path names the bench folder

from neutrino.agents.metadata import wire  # noqa: E402 - imported after sys.path names the bench folder

REQUEST = (
    b"GET /latest/meta-data/instance-id HTTP/1.1\r\n"
    b"Host: 169.254.169.254\r\nUser-Agent: cloud-init/23.1\r\nAccept: */*\r\n"
    b"Accept-Encoding: gzip, deflate\r\n"
    b"X-Forwarded-For: 10.0.0.5\r\nX-Neutron-Router-ID: 6f1e1a4c-8a3b-4b9b-9d7e-0f2a1c3d4e5f\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 36\r\n"
    b"cache-control: max-age=14\r\ndate: Mon, 07 Dec 2026 23:00:00 GMT\r\nserver: uvicorn\r\n\r\n"
    b"0c7b7b5e-3c3a-4d8e-9a55-3f1d2b1e6a11"
)
BODY = b"0c7b7b5e-3c3a-4d8e-9a55-3f1d2b1e6a11"


# ---- request parsing, one connection, N requests --------------------------------------------------


def ours_requests(n: int, render: bool) -> int:
    reader = wire.RequestReader()
    got = 0
    for _ in range(n):
        reader.feed(REQUEST)
        req = reader.next()
        if req is not None:
            got += 1
            if render:
                wire.render_response(200, BODY)
    return got


def h11_requests(n: int, render: bool) -> int:
    conn = h11.Connection(h11.SERVER)
    got = 0
    for _ in range(n):
        conn.receive_data(REQUEST)
        ev = conn.next_event()
        assert isinstance(ev, h11.Request), ev
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in ev.headers]  # already lower-case
        body = b""
        while True:
            ev2 = conn.next_event()
            if isinstance(ev2, h11.Data):
                body += ev2.data
            elif isinstance(ev2, h11.EndOfMessage):
                break
        wire.Request(ev.method.decode(), ev.target.decode(), "HTTP/" + ev.http_version.decode(), headers, body)
        got += 1
        # h11 only reads the next request once this one is answered
        conn.send(
            h11.Response(status_code=200, headers=[("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
        )
        conn.send(h11.Data(data=BODY))
        conn.send(h11.EndOfMessage())
        conn.start_next_cycle()
    del render  # h11 always renders (it cannot go on otherwise)
    return got


class _HttptoolsRequest:
    __slots__ = ("url", "headers", "body", "done", "parser")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.done: list[wire.Request] = []
        self.parser: Any = None  # the httptools parser calling us back (set by the caller)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        p = self.parser
        self.done.append(
            wire.Request(
                p.get_method().decode(),
                self.url.decode(),
                "HTTP/" + p.get_http_version(),
                self.headers,
                self.body,
                keep_alive=p.should_keep_alive(),
            )
        )
        self.url, self.headers, self.body = b"", [], b""


def httptools_requests(n: int, render: bool) -> int:
    proto = _HttptoolsRequest()
    proto.parser = httptools.HttpRequestParser(proto)
    got = 0
    for _ in range(n):
        proto.parser.feed_data(REQUEST)
        if proto.done:
            proto.done.clear()
            got += 1
            if render:
                wire.render_response(200, BODY)
    return got


# ---- response parsing (agent <- metadata API) --------------------------------------------------------


def ours_responses(n: int) -> int:
    got = 0
    for _ in range(n):
        if wire.ResponseReader("GET").feed(RESPONSE) is not None:
            got += 1
    return got


def h11_responses(n: int) -> int:
    got = 0
    for _ in range(n):
        conn = h11.Connection(h11.CLIENT)
        conn.send(
            h11.Request(method="GET", target="/latest/meta-data/instance-id", headers=[("Host", "127.0.0.1:8775")])
        )
        conn.send(h11.EndOfMessage())
        conn.receive_data(RESPONSE)
        ev = conn.next_event()
        assert isinstance(ev, h11.Response), ev
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in ev.headers}
        body = b""
        while isinstance(data := conn.next_event(), h11.Data):
            body += data.data
        wire.Response(200, headers, body)
        got += 1
    return got


class _HttptoolsResponse:
    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.body = b""
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


def httptools_responses(n: int) -> int:
    got = 0
    for _ in range(n):
        proto = _HttptoolsResponse()
        parser = httptools.HttpResponseParser(proto)
        parser.feed_data(RESPONSE)
        if proto.done:
            wire.Response(parser.get_status_code(), proto.headers, proto.body)
            got += 1
    return got


# ---- strictness ----------------------------------------------------------------------------------

BAD = {
    "CL and TE both": (
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "two Content-Length": b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "obs-fold": b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
    "bare LF line end": b"GET /x HTTP/1.1\nHost: a\n\n",
    "space before colon": b"GET /x HTTP/1.1\r\nHost : a\r\n\r\n",
    "CTL in value": b"GET /x HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
    "absolute-form target": b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n",
    "TE gzip, chunked": b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "HTTP/2.0 line": b"GET /x HTTP/2.0\r\nHost: a\r\n\r\n",
    "head > 16 KiB": b"GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n",
}


def refuses(parse: Callable[[bytes], Any], data: bytes) -> str:
    try:
        parse(data)
    except Exception:  # noqa: BLE001 - any refusal counts
        return "refuses"
    return "ACCEPTS"


def _ours_one(data: bytes) -> None:
    r = wire.RequestReader()
    r.feed(data)
    if r.next() is None:
        raise ValueError("incomplete")


def _h11_one(data: bytes) -> None:
    c = h11.Connection(h11.SERVER)
    c.receive_data(data)
    if not isinstance(c.next_event(), h11.Request):
        raise ValueError("incomplete")


def _httptools_one(data: bytes) -> None:
    p = _HttptoolsRequest()
    p.parser = httptools.HttpRequestParser(p)
    p.parser.feed_data(data)
    if not p.done:
        raise ValueError("incomplete")


def best(fn: Callable[[int], int], n: int, repeat: int) -> float:
    """Best seconds per message over ``repeat`` runs of ``n``."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        assert fn(n) == n
        out.append((time.perf_counter() - t) / n)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--wire", type=Path, help="measure this copy of wire.py as ours")
    args = ap.parse_args()
    if args.wire:
        global wire
        spec = importlib.util.spec_from_file_location("wire_under_test", args.wire)
        assert spec is not None and spec.loader is not None, args.wire
        wire = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up
        spec.loader.exec_module(wire)
    n, rep = args.requests, args.repeat
    print(
        f"h11 {version('h11')}, httptools {version('httptools')} (llhttp), python {sys.version.split()[0]}; "
        f"{n} messages x {rep}, best run"
    )
    cases = [
        (
            "request",
            {"ours (wire.py)": lambda k: ours_requests(k, False), "httptools": lambda k: httptools_requests(k, False)},
        ),
        (
            "request + render 200",
            {
                "ours (wire.py)": lambda k: ours_requests(k, True),
                "h11": lambda k: h11_requests(k, True),
                "httptools + ours render": lambda k: httptools_requests(k, True),
            },
        ),
        (
            "response from the API",
            {"ours (wire.py)": ours_responses, "h11": h11_responses, "httptools": httptools_responses},
        ),
    ]
    for title, fns in cases:
        print(f"\n{title}:")
        base = None
        for name, fn in fns.items():
            s = best(fn, n, rep)
            base = base or s
            print(f"  {name:26} {s * 1e6:6.1f} us/msg  {1 / s:9,.0f} msg/s  ({s / base:4.2f}x ours)")
    print(f"\nstrictness (malformed requests wire.py refuses):\n  {'':22} {'ours':>8} {'h11':>8} {'httptools':>10}")
    for name, data in BAD.items():
        print(
            f"  {name:22} {refuses(_ours_one, data):>8} {refuses(_h11_one, data):>8} "
            f"{refuses(_httptools_one, data):>10}"
        )


if __name__ == "__main__":
    main()
