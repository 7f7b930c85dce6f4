"""A strict HTTP/1.1 request-head parser and message framing (RFC 9112), without I/O.

http.server's own reader is lenient where leniency helps request smuggling (a space before the
colon, obs-fold, bare CR, `Content-Length: +5`, several Content-Length values, Transfer-Encoding
next to Content-Length) and answers some errors with an HTML page. The server reads bytes
itself (with deadlines) and hands the head to `parse_head` and `framing` here; both either
return a value or raise `HttpError` with a 4xx/5xx status and the offending element as `param`.
They never see the network, so the unit tests fuzz them with arbitrary bytes.

Choices, each with its RFC 9112 section:

- Line endings: CRLF, or a bare LF (§2.2 allows recognising it); a bare CR anywhere is 400.
  Empty lines before the request line are skipped (§2.2).
- Request line (§3): exactly `method SP request-target SP HTTP-version`; a method that is not
  a token, a target with controls, spaces or non-ASCII bytes, or a target in neither origin
  form (`/...`), absolute form (`http://...`) nor asterisk form (`*` with OPTIONS) is 400;
  a request line over `MAX_REQUEST_LINE` bytes is 414; HTTP/1.0 and HTTP/1.1 are served,
  another well-formed version is 505.
- Header fields (§5): a field name must be a token with the colon right after it (whitespace
  before the colon is 400, §5.1); obs-fold (a line starting with SP/HTAB) is 400 (§5.2);
  CR, LF, NUL and other controls except HTAB in a value are 400 (§5.5); over `MAX_FIELDS`
  fields, a field line over `MAX_FIELD_LINE` or a head over `MAX_HEAD` bytes is 431.
- Host (§3.2): an HTTP/1.1 request without exactly one Host field, or with an invalid Host
  value, is 400.
- Framing (§6): Transfer-Encoding together with Content-Length is rejected with 400 rather than
  processed per §6.3 rule 3 (the combination is the classic smuggling vector, and no client
  of this API needs it); Transfer-Encoding in an HTTP/1.0 request is 400 (§6.1); a
  Transfer-Encoding whose final coding is not chunked is 400 (§6.3 rule 4); a chunked body is
  answered 411 (this server requires a Content-Length, RFC 9110 §15.5.12). Content-Length must
  be 1*DIGIT (no sign, no spaces inside, no junk); several Content-Length fields or a list
  value are accepted only when every value is the same (RFC 9110 §8.6), otherwise 400 (§6.3
  rule 5). After any framing error the server closes the connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import Any
from urllib.parse import urlsplit

MAX_REQUEST_LINE = 8 * 1024  # bytes, without the line ending -> 414 beyond
MAX_FIELD_LINE = 8 * 1024  # bytes per header field line -> 431 beyond
MAX_HEAD = 32 * 1024  # request line plus all header lines -> 431 beyond
MAX_FIELDS = 100  # header fields -> 431 beyond
MAX_LENGTH_DIGITS = 18  # a longer Content-Length is valid syntax and simply too large

# Every method RFC 9110 defines; another token is 501 (RFC 9110 §9.1).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
_DIGITS = re.compile(r"[0-9]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs except HTAB
_BARE_CR = re.compile(rb"\r(?!\n)")
_HEAD_END = re.compile(rb"\n\r?\n")
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(:[0-9]*)?")
_OWS = " \t"


class HttpError(Exception):
    """An OpenAI-shaped error response: status, message, type, code and the offending param."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def _bad(message: str, param: str, status: int = 400, code: str | None = None) -> HttpError:
    return HttpError(status, message, "invalid_request_error", code, param)


@dataclass(frozen=True)
class Head:
    """A parsed request head."""

    method: str
    target: str
    path: str
    version: str  # "HTTP/1.0" or "HTTP/1.1"
    fields: tuple[tuple[str, str], ...]  # (name as sent, value), in order

    def get_all(self, name: str) -> list[str]:
        lower = name.lower()
        return [v for n, v in self.fields if n.lower() == lower]

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self.get_all(name)
        return found[0] if found else default

    def message(self) -> HTTPMessage:
        """The fields as http.server's `headers` object."""
        msg = HTTPMessage()
        for name, value in self.fields:
            msg[name] = value
        return msg

    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1 unless the client asked to close; HTTP/1.0 connections serve one request."""
        if self.version == "HTTP/1.0":
            return False
        return "close" not in {
            t.strip(_OWS).lower() for v in self.get_all("Connection") for t in v.split(",")
        }


@dataclass(frozen=True)
class Framing:
    """How the body is delimited: `content_length` None means no Content-Length was sent (a
    request without one has no body, RFC 9112 §6.3 rule 7, but a route that needs a body
    answers 411)."""

    content_length: int | None
    expect_continue: bool = False


def skip_leading_empty_lines(buf: bytearray) -> None:
    """RFC 9112 §2.2: ignore empty lines received before the request line."""
    i = 0
    while True:
        if buf.startswith(b"\r\n", i):
            i += 2
        elif buf.startswith(b"\n", i):
            i += 1
        else:
            break
    if i:
        del buf[:i]


def head_end(buf: bytes | bytearray) -> int | None:
    """Where the head ends (just past its empty line), None while incomplete.

    Raises 414/431 as soon as the bytes received already exceed a limit, so a client cannot
    make the server buffer more than MAX_HEAD bytes.
    """
    first = buf.find(b"\n", 0, MAX_REQUEST_LINE + 2)
    line_len = (first if first >= 0 else len(buf)) - (1 if first > 0 and buf[first - 1] == 0x0D else 0)
    if line_len > MAX_REQUEST_LINE:
        raise _bad(f"request line over {MAX_REQUEST_LINE} bytes", "request-line", 414, "uri_too_long")
    if first < 0:
        return None
    m = _HEAD_END.search(buf, first)
    end = m.end() if m else None
    if (end or len(buf)) > MAX_HEAD:
        raise _bad(f"request head over {MAX_HEAD} bytes", "headers", 431, "headers_too_large")
    return end


def parse_head(raw: bytes) -> Head:
    """Parse a request line and header fields (the bytes up to and including the empty line)."""
    if _BARE_CR.search(raw):
        raise _bad("bare CR in the request head", "headers")
    lines = [line.removesuffix(b"\r") for line in raw.split(b"\n")]
    while lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        raise _bad("empty request", "request-line")
    method, target, version = _request_line(lines[0])
    if len(lines) - 1 > MAX_FIELDS:
        raise _bad(f"over {MAX_FIELDS} header fields", "headers", 431, "headers_too_large")
    fields = tuple(_field(line) for line in lines[1:])
    head = Head(method, target, _path(method, target), version, fields)
    hosts = head.get_all("Host")
    if len(hosts) > 1 or (version == "HTTP/1.1" and not hosts):
        raise _bad("an HTTP/1.1 request needs exactly one Host header", "Host")
    if hosts and not _HOST.fullmatch(hosts[0]):
        raise _bad("invalid Host header", "Host")
    return head


def _request_line(line: bytes) -> tuple[str, str, str]:
    if len(line) > MAX_REQUEST_LINE:
        raise _bad(f"request line over {MAX_REQUEST_LINE} bytes", "request-line", 414, "uri_too_long")
    parts = line.split(b" ")
    if len(parts) != 3:
        raise _bad("request line must be 'METHOD target HTTP/1.1'", "request-line")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise _bad("invalid method", "method")
    if not _TARGET.fullmatch(target):
        raise _bad("invalid request target", "request-target")
    m = _VERSION.fullmatch(version)
    if not m:
        raise _bad("invalid HTTP version", "request-line")
    if (m.group(1), m.group(2)) not in ((b"1", b"0"), (b"1", b"1")):
        raise _bad("only HTTP/1.0 and HTTP/1.1 are served", "request-line", 505, "version_not_supported")
    return method.decode("ascii"), target.decode("ascii"), version.decode("ascii")


def _path(method: str, target: str) -> str:
    if target.startswith("/"):
        form = "origin"
    elif target.lower().startswith(("http://", "https://")):
        form = "absolute"
    elif target == "*" and method == "OPTIONS":
        return "*"
    else:
        raise _bad("request target must be a path", "request-target")
    try:
        path = urlsplit(target).path
    except ValueError:  # e.g. an unbalanced IPv6 bracket in an absolute-form target
        raise _bad("invalid request target", "request-target") from None
    return path if form == "origin" or path.startswith("/") else "/" + path


def _field(line: bytes) -> tuple[str, str]:
    if len(line) > MAX_FIELD_LINE:
        raise _bad(f"header field line over {MAX_FIELD_LINE} bytes", "headers", 431, "headers_too_large")
    if line[:1] in (b" ", b"\t"):
        raise _bad("obsolete line folding in headers", "headers")
    name, colon, value = line.partition(b":")
    if not colon:
        raise _bad("header line without a colon", "headers")
    if not _TOKEN.fullmatch(name):
        raise _bad("invalid header field name (no whitespace before the colon)", "headers")
    value = value.strip(b" \t")
    if _BAD_VALUE.search(value):
        raise _bad(f"control character in header {name.decode('ascii')}", name.decode("ascii"))
    return name.decode("ascii"), value.decode("latin-1")


def framing(head: Head) -> Framing:
    """The body length of a request, or the reason its framing is refused."""
    te = head.get_all("Transfer-Encoding")
    cl = head.get_all("Content-Length")
    if te:
        if cl:
            raise _bad("Transfer-Encoding together with Content-Length", "Transfer-Encoding")
        if head.version == "HTTP/1.0":
            raise _bad("Transfer-Encoding in an HTTP/1.0 request", "Transfer-Encoding")
        codings = [c.strip(_OWS).lower() for v in te for c in v.split(",")]
        codings = [c for c in codings if c]
        if not codings or codings[-1] != "chunked":
            raise _bad("Transfer-Encoding must end with chunked", "Transfer-Encoding")
        raise _bad(
            "chunked request bodies are not supported: send Content-Length",
            "Content-Length",
            411,
            "length_required",
        )
    length = content_length(cl) if cl else None
    expect = head.get("Expect")
    expect_continue = False
    if expect is not None and head.version == "HTTP/1.1":  # 1.0 servers ignore Expect (RFC 9110 §10.1.1)
        if expect.strip(_OWS).lower() != "100-continue" or len(head.get_all("Expect")) > 1:
            raise _bad("only 'Expect: 100-continue' is supported", "Expect", 417, "expectation_failed")
        expect_continue = True
    return Framing(length, expect_continue)


def content_length(values: list[str]) -> int:
    """One length from the Content-Length field values (RFC 9110 §8.6, RFC 9112 §6.3)."""
    found: set[str] = set()
    for value in values:
        for member in value.split(","):
            digits = member.strip(_OWS)
            if not _DIGITS.fullmatch(digits):
                raise _bad("Content-Length must be a non-negative decimal integer", "Content-Length")
            found.add(digits.lstrip("0") or "0")
    if len(found) != 1:
        raise _bad("conflicting Content-Length values", "Content-Length")
    digits = found.pop()  # a longer value is valid and simply over any body limit
    return int(digits) if len(digits) <= MAX_LENGTH_DIGITS else 10**MAX_LENGTH_DIGITS
