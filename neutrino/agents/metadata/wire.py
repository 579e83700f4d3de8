"""HTTP/1.1 message framing for the metadata agent (pure: bytes in, values out).

The agent speaks HTTP/1.1 on two hops, both of them short and trusted to
different degrees:

* haproxy -> agent (``RequestReader``): requests already normalised by
  haproxy, but the reader is strict anyway, because a framing disagreement
  on a connection that carries requests of several instances would let one
  instance's bytes be read as another request.  Anything it does not fully
  understand is refused (``BadMessage``, answered with a 4xx and the
  connection closed): a request line other than ``METHOD SP origin-form SP
  HTTP/1.x``; header lines that are not ``token ":" value`` or contain
  control characters; obsolete line folding; a body framed other than by
  one ``Content-Length`` or ``Transfer-Encoding: chunked`` (both at once
  included); heads over ``MAX_HEAD`` bytes (431) or bodies over
  ``MAX_BODY`` bytes (413).
* agent -> metadata API (``ResponseReader``): responses framed by
  ``Content-Length``, chunked, or the end of the connection; interim 1xx
  responses are skipped; HEAD, 204 and 304 have no body.

Who does what: this module finds where a head ends (so its size is
bounded before anything is parsed), checks the request or status line
against its own patterns, decides the framing of the body and decodes
chunked bodies.  The header lines between are split and checked by llhttp
(``httptools``): a request takes about three quarters of the time the
regular expressions it replaced took, with the same refusals (an empty
``Transfer-Encoding`` is now a 400, not a 501); see docs/architecture.md.
llhttp never sees a body nor a byte past the head, so its own framing
rules cannot disagree with ours.

Header names are lower-cased ``str`` (latin-1); values are ``str`` with the
surrounding blanks removed.  ``render_response`` / ``render_request``
produce the bytes to send; they never copy a value containing CR or LF
(``ValueError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import httptools

__all__ = [
    "MAX_HEAD",
    "MAX_BODY",
    "BadMessage",
    "Request",
    "RequestReader",
    "Response",
    "ResponseReader",
    "REASONS",
    "render_request",
    "render_response",
]

#: Largest request or response head (request line + headers) accepted.
MAX_HEAD = 16 * 1024
#: Largest body accepted, in either direction (user data is at most 64 KiB; a
#: password 1020 bytes; the rest are GETs).
MAX_BODY = 1024 * 1024

REASONS = {
    100: "Continue",
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_IS_TOKEN = re.compile(_TOKEN.encode())
_NAMES = re.compile(_TOKEN)
#: ``method SP origin-form SP HTTP/1.x CRLF``; any token as a method (llhttp knows a fixed list;
#: an unknown one reaches the metadata API, which answers 405); the target visible ASCII only.
_REQUEST_LINE = re.compile(rb"(" + _TOKEN.encode() + rb") (/[!-~]*) (HTTP/1\.[01])\r\n")
#: ``HTTP/1.x SP 3DIGIT [SP reason] CRLF``
_STATUS_LINE = re.compile(rb"(HTTP/1\.[01]) ([0-9]{3})(?: [^\x00-\x08\x0a-\x1f\x7f]*)?\r\n")
#: Header lines as ``render_*`` may send them: ``name ":" value CRLF``, the value without control
#: characters (HTAB allowed).
_FIELD_BLOCK = re.compile(r"(?:" + _TOKEN + r":[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*")
#: What llhttp is shown before a header block: the real request or status line is checked by the
#: patterns above, which are stricter than llhttp's (origin-form targets, HTTP/1.0 and 1.1 only).
_LEAD = b"GET / HTTP/1.1\r\n"
#: What ``render_request`` accepts as a target.
_TARGET = re.compile(rb"/[!-~]*")


def _is_token(value: bytes) -> bool:
    return _IS_TOKEN.fullmatch(value) is not None


def _first_line(head: bytes) -> bytes:
    """The start of a head's first line, for an error message."""
    return head.partition(b"\r")[0][:60]


class BadMessage(Exception):
    """A message the reader refuses; ``status`` is what to answer (400, 413, 431, 501)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(slots=True)
class Request:
    method: str
    target: str
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    headers: list[tuple[str, str]]  # in order, names lower-case
    body: bytes = b""
    keep_alive: bool = True

    def get(self, name: str) -> str | None:
        """The last value of header ``name`` (lower-case), or None."""
        for k, v in reversed(self.headers):
            if k == name:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # last value wins; names lower-case
    body: bytes = b""
    keep_alive: bool = True


class _Fields:
    """Splits header blocks with llhttp: ``name ":" OWS value OWS CRLF`` lines with token names and
    values free of control characters (HTAB allowed); no bare CR or LF, no obsolete line folding;
    a malformed or repeated ``Content-Length`` and one beside ``Transfer-Encoding`` refused.

    ``read(block)`` takes the header lines of one head and the empty line that ends it, and
    returns them in order, names lower-cased, or raises ``BadMessage(400)``.  One llhttp parser
    serves block after block while llhttp would read a next message: not after a block that
    announces a body (llhttp would wait for it, and bodies never reach it: they are framed here),
    asks for an upgrade or closes the connection; the next block then gets a new parser.
    """

    __slots__ = ("_parser", "_fields", "_complete", "_keep", "_reusable")

    def __init__(self) -> None:
        self._parser: httptools.HttpRequestParser | None = None
        self._fields: list[tuple[str, str]] = []
        self._complete = False  # llhttp read the whole block
        self._keep = False  # ... and would read a next message after this one
        self._reusable = False  # ... and this one has ended (no body announced)

    # llhttp's callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp drops the blanks before a value, not those after it
        self._fields.append((name.decode("latin-1").lower(), value.decode("latin-1").rstrip(" \t")))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._complete = True
        # after "Connection: close" llhttp refuses any further message (decided here, not later:
        # llhttp forgets the headers once the message ends)
        self._keep = self._parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self._reusable = self._keep

    def read(self, block: bytes) -> list[tuple[str, str]]:
        parser = self._parser
        if parser is None or not self._reusable:
            parser = self._parser = httptools.HttpRequestParser(self)
            # The body's framing (Transfer-Encoding, and Content-Length beside it) is judged by
            # _Framing, with its own statuses; llhttp never frames a body here, so these
            # leniencies cannot make it disagree with us about where a message ends.
            parser.set_dangerous_leniencies(lenient_transfer_encoding=True, lenient_chunked_length=True)
        self._fields, self._complete, self._keep, self._reusable = [], False, False, False
        try:
            parser.feed_data(_LEAD + block)
        except httptools.HttpParserUpgrade:
            self._reusable = False  # "Connection: upgrade" is a header like any other here
        except httptools.HttpParserError as exc:
            self._parser = None
            raise BadMessage(400, f"malformed header block: {exc}") from None
        if not self._complete:  # cannot happen: the block ends with the head's empty line
            self._parser = None
            raise BadMessage(400, "incomplete header block")
        return self._fields


class _Framing:
    """The headers that decide how a message ends (one pass over the headers)."""

    __slots__ = ("length", "encodings", "connection", "expect")

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        lengths: list[str] = []
        encodings: list[str] = []
        connection: list[str] = []
        self.expect = ""
        for k, v in headers:
            if k == "content-length":
                lengths.append(v)
            elif k == "transfer-encoding":
                encodings.extend(t.strip().lower() for t in v.split(","))
            elif k == "connection":
                connection.extend(t.strip().lower() for t in v.split(","))
            elif k == "expect":
                self.expect = v.lower()
        self.encodings, self.connection = encodings, connection
        self.length: int | None = None
        if lengths:
            if len(lengths) != 1 or not lengths[0].isdigit() or not lengths[0].isascii() or len(lengths[0]) > 12:
                raise BadMessage(400, f"bad Content-Length {lengths!r}")
            self.length = int(lengths[0])

    def keep_alive(self, version: str) -> bool:
        return "keep-alive" in self.connection if version == "HTTP/1.0" else "close" not in self.connection


class _Chunked:
    """Incremental decoder of a chunked body (trailers are read and dropped)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.state = "size"  # size | data | data-crlf | trailer | done
        self.left = 0

    def feed(self, buf: bytearray) -> bool:
        """Consume what it can from ``buf``; True once the body (and its trailers) is complete."""
        while True:
            if self.state in ("size", "trailer"):
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 4096:
                        raise BadMessage(400, "chunk size or trailer line too long")
                    return False
                line = bytes(buf[:end])
                del buf[: end + 2]
                if self.state == "trailer":
                    if not line:
                        self.state = "done"
                        return True
                    if len(line) > 4096 or b":" not in line:
                        raise BadMessage(400, "malformed trailer")
                    continue
                digits = line.split(b";", 1)[0].strip(b" \t")
                if not digits or len(digits) > 8 or any(c not in b"0123456789abcdefABCDEF" for c in digits):
                    raise BadMessage(400, f"bad chunk size {line[:20]!r}")
                self.left = int(digits, 16)
                if self.size + self.left > self.limit:
                    raise BadMessage(413, "body too large")
                self.state = "data" if self.left else "trailer"
            elif self.state == "data":
                if not buf:
                    return False
                take = bytes(buf[: self.left])
                del buf[: len(take)]
                self.parts.append(take)
                self.size += len(take)
                self.left -= len(take)
                if self.left == 0:
                    self.state = "data-crlf"
            elif self.state == "data-crlf":
                if len(buf) < 2:
                    return False
                if buf[:2] != b"\r\n":
                    raise BadMessage(400, "chunk not followed by CRLF")
                del buf[:2]
                self.state = "size"
            else:
                return True

    def body(self) -> bytes:
        return b"".join(self.parts)


class RequestReader:
    """Reads requests off one connection, one after the other.

    ``feed(data)`` appends received bytes; ``next()`` returns the next
    complete ``Request`` or None (more bytes needed), and raises
    ``BadMessage`` for a request it refuses (the connection must then be
    closed: its framing can no longer be trusted).  ``expects_continue``
    is True while a request head asked for ``100-continue`` and its body
    has not been read yet.
    """

    def __init__(self, max_head: int = MAX_HEAD, max_body: int = MAX_BODY) -> None:
        self.buf = bytearray()
        self.max_head, self.max_body = max_head, max_body
        self._pending: Request | None = None  # head read, body not complete
        self._length = 0
        self._chunked: _Chunked | None = None
        self._fields = _Fields()
        self.expects_continue = False

    def feed(self, data: bytes) -> None:
        self.buf += data

    @property
    def buffered(self) -> int:
        return len(self.buf)

    def next(self) -> Request | None:
        if self._pending is None:
            req = self._head()
            if req is None:
                return None
        else:
            req = self._pending
        if self._chunked is not None:
            if not self._chunked.feed(self.buf):
                return None
            req.body = self._chunked.body()
        else:
            if len(self.buf) < self._length:
                return None
            req.body = bytes(self.buf[: self._length])
            del self.buf[: self._length]
        self._pending, self._chunked, self._length, self.expects_continue = None, None, 0, False
        return req

    def _head(self) -> Request | None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > self.max_head:
                raise BadMessage(431, "request head too large")
            return None
        if end + 4 > self.max_head:
            raise BadMessage(431, "request head too large")
        head = bytes(self.buf[: end + 4])
        del self.buf[: end + 4]
        m = _REQUEST_LINE.match(head)
        if m is None:
            raise BadMessage(400, f"malformed request line {_first_line(head)!r}")
        method, target, version = (g.decode("ascii") for g in m.groups())
        headers = self._fields.read(head[m.end() :])
        f = _Framing(headers)
        req = Request(method, target, version, headers, keep_alive=f.keep_alive(version))
        if f.encodings:
            if f.length is not None:
                raise BadMessage(400, "both Content-Length and Transfer-Encoding")
            if version != "HTTP/1.1" or f.encodings != ["chunked"]:
                raise BadMessage(501, f"unsupported Transfer-Encoding {f.encodings!r}")
            self._chunked = _Chunked(self.max_body)
        elif f.length is not None:
            if f.length > self.max_body:
                raise BadMessage(413, "body too large")
            self._length = f.length
        has_body = self._chunked is not None or self._length > 0
        self.expects_continue = has_body and f.expect == "100-continue"
        self._pending = req
        return req


class ResponseReader:
    """Reads one response (to a request made with ``method``) off a connection.

    ``feed(data)`` returns the complete ``Response`` once it has it, else
    None; ``eof()`` is called when the peer closed and returns the response
    if it was delimited by the close (else raises ``BadMessage``).
    ``leftover`` tells whether bytes followed the response (the connection
    then cannot be reused).
    """

    def __init__(self, method: str, max_head: int = MAX_HEAD, max_body: int = MAX_BODY) -> None:
        self.method = method
        self.buf = bytearray()
        self.max_head, self.max_body = max_head, max_body
        self.resp: Response | None = None
        self._length: int | None = None  # None: until close
        self._chunked: _Chunked | None = None
        self._fields = _Fields()
        self.started = False

    @property
    def leftover(self) -> bool:
        return bool(self.buf)

    def feed(self, data: bytes) -> Response | None:
        self.started = True
        self.buf += data
        while self.resp is None:
            if not self._head():
                return None
        if self._chunked is not None:
            if not self._chunked.feed(self.buf):
                return None
            self.resp.body = self._chunked.body()
            return self.resp
        if self._length is None:
            if len(self.buf) > self.max_body:
                raise BadMessage(502, "response body too large")
            return None
        if len(self.buf) < self._length:
            return None
        self.resp.body = bytes(self.buf[: self._length])
        del self.buf[: self._length]
        return self.resp

    def eof(self) -> Response:
        if self.resp is not None and self._length is None and self._chunked is None:
            self.resp.body, self.buf = bytes(self.buf), bytearray()
            self.resp.keep_alive = False
            return self.resp
        raise BadMessage(502, "connection closed before the end of the response")

    def _head(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > self.max_head:
                raise BadMessage(502, "response head too large")
            return False
        head = bytes(self.buf[: end + 4])
        del self.buf[: end + 4]
        m = _STATUS_LINE.match(head)
        if m is None:
            raise BadMessage(502, f"malformed status line {_first_line(head)!r}")
        status = int(m[2])
        version = m[1].decode("ascii")
        try:
            fields = self._fields.read(head[m.end() :])
            f = _Framing(fields)
        except BadMessage as exc:
            raise BadMessage(502, str(exc)) from None
        if 100 <= status < 200:
            return self._head()  # interim response: the real one follows
        self.resp = Response(status, dict(fields), keep_alive=f.keep_alive(version))
        if self.method == "HEAD" or status in (204, 304):
            self._length = 0
        elif f.encodings:
            if f.encodings[-1] != "chunked":
                self._length, self.resp.keep_alive = None, False
            else:
                self._chunked = _Chunked(self.max_body)
        elif f.length is not None:
            if f.length > self.max_body:
                raise BadMessage(502, "response body too large")
            self._length = f.length
        else:
            self._length, self.resp.keep_alive = None, False
        return True


def _header_block(headers: list[tuple[str, str]]) -> str:
    """``name: value CRLF`` lines; ValueError unless every name is a token and no value holds a
    control character (so nothing sent can end a line or the head early)."""
    block = "".join([f"{name}: {value}\r\n" for name, value in headers])
    # one line per header (a value with a line end would add one), each a valid header line
    if (
        block.count("\n") != len(headers)
        or _FIELD_BLOCK.fullmatch(block) is None
        or _NAMES.fullmatch("".join([name for name, _ in headers])) is None
        or not block.isascii()
        and not _latin1(block)
    ):
        raise ValueError(f"cannot send headers {[name for name, _ in headers]}")
    return block


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def render_response(
    status: int,
    body: bytes,
    content_type: str = "text/plain",
    headers: list[tuple[str, str]] | None = None,
    *,
    close: bool = False,
) -> bytes:
    """A complete response (always framed by Content-Length)."""
    block = _header_block(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            *(headers or ()),
            *((("Connection", "close"),) if close else ()),
        ]
    )
    return f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n{block}\r\n".encode("latin-1") + body


def render_request(method: str, target: str, host: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """A complete request (``Content-Length`` when there is a body or the method carries one)."""
    if (
        not method.isascii()
        or not _is_token(method.encode())
        or not target.isascii()
        or _TARGET.fullmatch(target.encode()) is None
    ):
        raise ValueError(f"cannot send {method} {target!r}")
    extra = [("Content-Length", str(len(body)))] if body or method in ("POST", "PUT", "PATCH") else []
    block = _header_block([("Host", host), *headers, *extra])
    return f"{method} {target} HTTP/1.1\r\n{block}\r\n".encode("latin-1") + body
