"""Hostile input against a real server in-process on 127.0.0.1: every bad request gets one
JSON error naming what is wrong, one log line and no traceback, and the server keeps serving.

Requests are written on raw sockets (http.client would normalise the framing being tested);
every socket operation has a deadline, so a regression fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_service_server import KEYS, Running, _serve

SERVICE = Path(__file__).resolve().parents[2] / "service"
sys.path.insert(0, str(SERVICE))

from tizi_service.model import LoadedModel, export_model, load_identifier  # noqa: E402
from tizi_service.server import MODEL_ID  # noqa: E402

KEY = KEYS["key-a"]
MARKER = "hostile-user-text-7f3a"  # in request bodies: must never reach the logs
MAX_BODY = 256 * 1024  # room for 100 000 levels of [[...]]
READ_TIMEOUT = 1.0  # the server's per-request read deadline in these tests
IO_TIMEOUT = 8.0  # every client socket operation


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    model_dir = tmp_path_factory.mktemp("hostile-model")
    export_model(model_dir)
    model: LoadedModel = load_identifier(str(model_dir))
    it = _serve(
        tmp_path_factory.mktemp("hostile"),
        lambda _d: model,
        max_body_bytes=MAX_BODY,
        read_timeout_seconds=READ_TIMEOUT,
        idle_timeout_seconds=5.0,
    )
    running = next(it)
    assert running.app.ready.wait(10)
    yield running
    next(it, None)


# --- a raw HTTP client -------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    rest: bytes  # bytes received after this response (pipelining)


def _recv(sock: socket.socket, deadline: float) -> bytes:
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def read_reply(
    sock: socket.socket, buf: bytes = b"", timeout: float = IO_TIMEOUT, no_body: bool = False
) -> Reply | None:
    """The next final response on the socket (1xx skipped); None if the server closed first.
    `no_body`: the request was HEAD, so the response has no body whatever its Content-Length."""
    deadline = time.monotonic() + timeout
    while True:
        while b"\r\n\r\n" not in buf:
            chunk = _recv(sock, deadline)
            if not chunk:
                assert not buf, f"connection closed inside a response head: {buf[:200]!r}"
                return None
            buf += chunk
        head_bytes, _, buf = buf.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        if 100 <= status < 200:
            continue
        length = 0 if no_body else int(headers.get("content-length", "0"))
        while len(buf) < length:
            chunk = _recv(sock, deadline)
            assert chunk, "connection closed inside a response body"
            buf += chunk
        return Reply(status, headers, buf[:length], buf[length:])


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)


def exchange(port: int, payload: bytes) -> Reply | None:
    with connect(port) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)  # the server may answer (and stop reading) before all is sent
        return read_reply(sock)


def request(
    *fields: bytes,
    line: bytes = b"POST /v1/chat/completions HTTP/1.1",
    body: bytes = b"",
    host: bool = True,
    auth: bool = True,
) -> bytes:
    """A request with exactly the header lines given (plus Host and Authorization)."""
    lines = [line]
    if host:
        lines.append(b"Host: 127.0.0.1")
    if auth:
        lines.append(b"Authorization: Bearer " + KEY.encode())
    lines += fields
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def post(body: bytes | Any, *fields: bytes) -> bytes:
    """POST /v1/chat/completions with a correct Content-Length; non-bytes bodies are JSON."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request(b"Content-Type: application/json", b"Content-Length: %d" % len(raw), *fields, body=raw)


def msgs(content: Any = MARKER, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL_ID, "messages": [{"role": "user", "content": content}], **extra}


def healthz(port: int, request_id: str = "") -> int:
    rid = [b"X-Request-Id: " + request_id.encode()] if request_id else []
    reply = exchange(port, request(*rid, line=b"GET /healthz HTTP/1.1", auth=False))
    return reply.status if reply else 0


# --- log capture -------------------------------------------------------------------------
class Logs:
    """Everything the server printed during one test, polled until a line is there."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys, self.out, self.err = capsys, "", ""

    def lines(self) -> list[dict[str, Any]]:
        captured = self.capsys.readouterr()
        self.out, self.err = self.out + captured.out, self.err + captured.err
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.lines() if match(r)]
            if found or time.monotonic() > deadline:
                assert found, f"no matching log line in:\n{self.out}"
                return found[-1]
            time.sleep(0.02)

    def assert_alive(self, port: int) -> None:
        """The server still answers /healthz; waiting for that request's log line also makes
        sure every line of the exchanges before it has been captured."""
        rid = uuid.uuid4().hex
        assert healthz(port, rid) == 200
        self.wait_for(lambda r: r.get("request_id") == rid)

    def assert_clean(self) -> None:
        """One JSON object per line, nothing on stderr, no traceback, no bug events, no secrets."""
        records = self.lines()  # raises if a line is not JSON
        assert self.err == ""
        assert "Traceback" not in self.out
        assert not [r for r in records if r["event"] in ("handler_error", "connection_error")]
        for secret in (*KEYS.values(), MARKER):
            assert secret not in self.out


def assert_one_json_error(reply: Reply, param: str | None) -> dict[str, Any]:
    assert reply.headers["content-type"] == "application/json"
    assert b"\n" not in reply.body
    data = json.loads(reply.body)
    assert set(data) == {"error"}
    err = data["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    assert err["param"] == param, err
    return err


# --- the cases ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    payload: bytes
    status: int
    param: str | None
    keeps_alive: bool = False  # the body was consumed: the connection must stay usable


def body_case(id: str, body: bytes | Any, param: str | None, status: int = 400) -> Case:
    return Case(id, post(body), status, param, keeps_alive=True)


DEEP = 100_000
CL = b"Content-Length"
JSON_CASES = [
    # the document
    body_case("body-json-array", ["not", "an", "object"], "body"),
    body_case("body-json-string", "just a string", "body"),
    body_case("body-json-number", 42, "body"),
    body_case("body-json-null", None, "body"),
    body_case("body-empty", b"", "body"),
    body_case("body-not-json", b"{no", "body"),
    body_case("body-trailing-junk", json.dumps(msgs()).encode() + b" x", "body"),
    body_case("body-nan", b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}', "body"),
    body_case("body-infinity", b'{"messages": [], "temperature": -Infinity}', "body"),
    body_case("body-huge-integer", b'{"max_tokens": ' + b"9" * 5000 + b"}", "body"),
    body_case("nesting-100k-arrays", b"[" * DEEP + b"]" * DEEP, "body"),
    body_case("nesting-40k-objects", b'{"a":' * 40_000 + b"1" + b"}" * 40_000, "body"),
    body_case(
        "nesting-in-content",
        b'{"messages": [{"role": "user", "content": ' + b"[" * DEEP + b"]" * DEEP + b"}]}",
        "body",
    ),
    body_case("duplicate-key-model", b'{"model": "tizi-langid-ma", "model": "x", "messages": []}', "model"),
    body_case("duplicate-key-messages", b'{"messages": [], "messages": []}', "messages"),
    body_case(
        "duplicate-key-nested", b'{"messages": [{"role": "user", "role": "user", "content": "x"}]}', "role"
    ),
    # encodings
    body_case("utf8-invalid-byte", b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', "body"),
    body_case("utf8-truncated", b'{"messages": [{"role": "user", "content": "\xe2\x82"}]}', "body"),
    body_case(
        "utf8-encoded-surrogate", b'{"messages": [{"role": "user", "content": "\xed\xa0\x80"}]}', "body"
    ),
    body_case("utf16-body", json.dumps(msgs()).encode("utf-16"), "body"),
    body_case("utf8-bom", b"\xef\xbb\xbf" + json.dumps(msgs()).encode(), "body"),
    body_case(
        "lone-surrogate-escape",
        b'{"messages": [{"role": "user", "content": "a\\ud800b"}]}',
        "messages[0].content",
    ),
    # model
    body_case("model-number", {"model": 4, "messages": msgs()["messages"]}, "model"),
    body_case("model-list", {"model": [MODEL_ID], "messages": msgs()["messages"]}, "model"),
    body_case("model-null", {"model": None, "messages": msgs()["messages"]}, "model"),
    body_case("model-unknown", {"model": "gpt-4o", "messages": msgs()["messages"]}, "model", 404),
    # messages
    body_case("messages-missing", {"model": MODEL_ID}, "messages"),
    body_case("messages-string", {"messages": "hello"}, "messages"),
    body_case("messages-object", {"messages": {"role": "user", "content": "x"}}, "messages"),
    body_case("messages-number", {"messages": 1}, "messages"),
    body_case("messages-null", {"messages": None}, "messages"),
    body_case("messages-empty", {"messages": []}, "messages"),
    body_case("message-string", {"messages": ["hello"]}, "messages[0]"),
    body_case("message-number", {"messages": [7]}, "messages[0]"),
    body_case("message-list", {"messages": [["user", "x"]]}, "messages[0]"),
    body_case("role-missing", {"messages": [{"content": "x"}]}, "messages[0].role"),
    body_case("role-number", {"messages": [{"role": 1, "content": "x"}]}, "messages[0].role"),
    body_case("role-unknown", {"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    body_case("no-user-message", {"messages": [{"role": "system", "content": "x"}]}, "messages"),
    body_case("content-number", msgs(12), "messages[0].content"),
    body_case("content-object", msgs({"text": "x"}), "messages[0].content"),
    body_case("content-null", msgs(None), "messages[0].content"),
    body_case("content-boolean", msgs(True), "messages[0].content"),
    body_case("content-list-of-strings", msgs(["x"]), "messages[0].content[0]"),
    body_case("content-part-no-type", msgs([{"text": "x"}]), "messages[0].content[0].type"),
    body_case("content-part-text-number", msgs([{"type": "text", "text": 5}]), "messages[0].content[0].text"),
    body_case(
        "second-message-bad",
        {"messages": [{"role": "user", "content": "x"}, {"role": "user", "content": 3.5}]},
        "messages[1].content",
    ),
    # sampling parameters
    body_case("max-tokens-string", msgs(max_tokens="10"), "max_tokens"),
    body_case("max-tokens-float", msgs(max_tokens=1.5), "max_tokens"),
    body_case("max-tokens-zero", msgs(max_tokens=0), "max_tokens"),
    body_case("max-tokens-boolean", msgs(max_tokens=True), "max_tokens"),
    body_case("temperature-too-high", msgs(temperature=3), "temperature"),
    body_case("temperature-negative", msgs(temperature=-0.1), "temperature"),
    body_case("temperature-string", msgs(temperature="hot"), "temperature"),
    body_case(
        "temperature-overflow", json.dumps(msgs()).encode()[:-1] + b', "temperature": 1e999}', "temperature"
    ),
    body_case("top-p-too-high", msgs(top_p=1.5), "top_p"),
    body_case("n-two", msgs(n=2), "n"),
    body_case("stream-string", msgs(stream="yes"), "stream"),
    body_case("stream-true", msgs(stream=True), "stream"),
    body_case("stop-five-strings", msgs(stop=["a", "b", "c", "d", "e"]), "stop"),
    body_case("stop-number", msgs(stop=1), "stop"),
    body_case("user-number", msgs(user=1), "user"),
]

FRAMING_CASES = [
    # Content-Length (RFC 9112 §6.3 rule 5, RFC 9110 §8.6)
    Case(
        "cl-two-different",
        request(b"Content-Length: 10", b"Content-Length: 11", body=b"{}"),
        400,
        "Content-Length",
    ),
    Case("cl-list-different", request(b"Content-Length: 1,2", body=b"{}"), 400, "Content-Length"),
    Case("cl-abc", request(b"Content-Length: abc", body=b"{}"), 400, "Content-Length"),
    Case("cl-negative", request(b"Content-Length: -1", body=b"{}"), 400, "Content-Length"),
    Case("cl-plus-sign", request(b"Content-Length: +2", body=b"{}"), 400, "Content-Length"),
    Case("cl-trailing-junk", request(b"Content-Length: 2abc", body=b"{}"), 400, "Content-Length"),
    Case("cl-leading-junk", request(b"Content-Length: x2", body=b"{}"), 400, "Content-Length"),
    Case("cl-hex", request(b"Content-Length: 0x2", body=b"{}"), 400, "Content-Length"),
    Case("cl-exponent", request(b"Content-Length: 2e0", body=b"{}"), 400, "Content-Length"),
    Case("cl-inner-space", request(b"Content-Length: 1 2", body=b"{}"), 400, "Content-Length"),
    Case("cl-empty", request(b"Content-Length:", body=b"{}"), 400, "Content-Length"),
    Case("cl-empty-member", request(b"Content-Length: 2,", body=b"{}"), 400, "Content-Length"),
    Case("cl-arabic-digit", request(b"Content-Length: \xd9\xa2", body=b"{}"), 400, "Content-Length"),
    Case(
        "cl-huge", request(b"Content-Length: 99999999999999999999999999", body=b"{}"), 413, "Content-Length"
    ),
    Case("cl-over-cap-announced", request(b"Content-Length: %d" % (MAX_BODY + 1)), 413, "Content-Length"),
    Case("cl-over-cap-sent", post(b"[" + b" " * MAX_BODY + b"]"), 413, "Content-Length"),
    Case("cl-missing", request(b"Content-Type: application/json", body=b""), 411, "Content-Length"),
    # Transfer-Encoding (RFC 9112 §6.1, §6.3 rules 3 and 4)
    Case(
        "te-and-cl",
        request(b"Transfer-Encoding: chunked", b"Content-Length: 2", body=b"{}"),
        400,
        "Transfer-Encoding",
    ),
    Case(
        "te-chunked",
        request(b"Transfer-Encoding: chunked", body=b"2\r\n{}\r\n0\r\n\r\n"),
        411,
        "Content-Length",
    ),
    Case("te-gzip", request(b"Transfer-Encoding: gzip", body=b"{}"), 400, "Transfer-Encoding"),
    Case("te-chunked-then-gzip", request(b"Transfer-Encoding: chunked, gzip"), 400, "Transfer-Encoding"),
    Case(
        "te-http10",
        request(b"Transfer-Encoding: chunked", line=b"POST /v1/chat/completions HTTP/1.0"),
        400,
        "Transfer-Encoding",
    ),
    # a body or a head that never completes: a deadline, not a hang
    Case("body-shorter-than-announced", request(b"Content-Length: 100", body=b'{"messages": '), 408, "body"),
    Case("head-never-finished", b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n", 408, "headers"),
    # sizes (414, 431)
    Case("request-line-too-long", request(line=b"GET /" + b"a" * 9000 + b" HTTP/1.1"), 414, "request-line"),
    Case("header-line-too-long", request(b"X-Big: " + b"b" * 9000), 431, "headers"),
    Case("too-many-headers", request(*[b"X-H%d: v" % i for i in range(101)]), 431, "headers"),
    Case("head-too-large", request(*[b"X-H%d: " % i + b"v" * 7000 for i in range(5)]), 431, "headers"),
    # header syntax (RFC 9112 §5)
    Case("space-before-colon", request(b"Content-Length : 2", body=b"{}"), 400, "headers"),
    Case("obs-fold", request(b"X-A: 1", b" folded", b"Content-Length: 2", body=b"{}"), 400, "headers"),
    Case("header-without-colon", request(b"NoColonHere"), 400, "headers"),
    Case("nul-in-value", request(b"X-Test: a\x00b"), 400, "X-Test"),
    Case("bare-cr", request(b"X-Test: a\rb"), 400, "headers"),
    Case("host-missing", request(line=b"GET /healthz HTTP/1.1", host=False), 400, "Host"),
    Case("host-twice", request(b"Host: example.org", line=b"GET /healthz HTTP/1.1"), 400, "Host"),
    Case("host-invalid", b"GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "Host"),
    Case("expect-unknown", request(b"Expect: 200-ok", b"Content-Length: 2", body=b"{}"), 417, "Expect"),
    # request line (RFC 9112 §3)
    Case("request-line-two-parts", b"GET /healthz\r\nHost: x\r\n\r\n", 400, "request-line"),
    Case("request-line-double-space", b"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request-line"),
    Case("request-line-tabs", b"GET\t/healthz\tHTTP/1.1\r\nHost: x\r\n\r\n", 400, "request-line"),
    Case("version-http2", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505, "request-line"),
    Case("version-lowercase", b"GET /healthz http/1.1\r\nHost: x\r\n\r\n", 400, "request-line"),
    Case("version-junk", b"GET /healthz HTTP/1.1x\r\nHost: x\r\n\r\n", 400, "request-line"),
    Case("method-invalid-char", b"GE(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "method"),
    Case("method-unknown", b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501, "method", keeps_alive=True),
    Case("target-not-a-path", b"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request-target"),
    Case("target-non-ascii", b"GET /h\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request-target"),
    Case("target-bad-ipv6", b"GET http://[::1/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request-target"),
    Case("tls-client-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "request-line"),
]
CASES = JSON_CASES + FRAMING_CASES


def test_enough_cases() -> None:
    assert len(CASES) >= 50
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_error(
    server: Running, capsys: pytest.CaptureFixture[str], case: Case
) -> None:
    logs = Logs(capsys)
    started = time.monotonic()
    with connect(server.port) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(case.payload)
        reply = read_reply(sock)
        assert reply is not None, "the server closed without answering"
        assert reply.status == case.status, reply.body
        assert_one_json_error(reply, case.param)
        if case.keeps_alive:  # the body was read in full: the same connection serves on
            assert "connection" not in reply.headers
            sock.sendall(request(line=b"GET /healthz HTTP/1.1", auth=False))
            again = read_reply(sock, reply.rest)
            assert again is not None and again.status == 200
        else:  # framing could not be trusted, or input was left unread: the server closes
            assert reply.headers.get("connection") == "close"
            assert read_reply(sock, reply.rest) is None
    assert time.monotonic() - started < READ_TIMEOUT + 4
    line = logs.wait_for(lambda r: r["event"] == "request" and r["status"] == case.status)
    assert line.get("param") == case.param
    logs.assert_alive(server.port)
    logs.assert_clean()


# --- requests that must still work -------------------------------------------------------
OK_BODY = json.dumps(msgs("Bonjour, je voudrais renouveler ma carte nationale.")).encode()
ACCEPTED = {
    "plain": post(OK_BODY),
    "cl-twice-same-value": request(
        b"Content-Length: %d" % len(OK_BODY), b"Content-Length: %d" % len(OK_BODY), body=OK_BODY
    ),
    "cl-list-same-value": request(b"Content-Length: %d, %d" % (len(OK_BODY), len(OK_BODY)), body=OK_BODY),
    "cl-leading-zeros": request(b"Content-Length: 000%d" % len(OK_BODY), body=OK_BODY),
    "expect-100-continue": post(OK_BODY, b"Expect: 100-continue"),
    "leading-empty-lines": b"\r\n\r\n" + post(OK_BODY),
    "lf-line-endings": post(OK_BODY).replace(b"\r\n", b"\n"),
    "absolute-form": post(OK_BODY).replace(b"POST /v1/", b"POST http://127.0.0.1/v1/", 1),
    "header-case-and-ows": request(b"content-LENGTH:\t%d  " % len(OK_BODY), body=OK_BODY),
    "http10-without-host": request(
        b"Content-Length: %d" % len(OK_BODY),
        line=b"POST /v1/chat/completions HTTP/1.0",
        host=False,
        body=OK_BODY,
    ),
}


@pytest.mark.parametrize("payload", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_unusual_but_valid_framing_is_served(server: Running, payload: bytes) -> None:
    reply = exchange(server.port, payload)
    assert reply is not None and reply.status == 200, reply
    assert json.loads(reply.body)["choices"][0]["message"]["content"] == "fr"


def test_expect_100_continue_is_answered_before_the_body(server: Running) -> None:
    head, _, body = post(OK_BODY, b"Expect: 100-continue").partition(b"\r\n\r\n")
    with connect(server.port) as sock:
        sock.sendall(head + b"\r\n\r\n")
        interim, deadline = b"", time.monotonic() + IO_TIMEOUT
        while not interim.endswith(b"\r\n\r\n"):
            chunk = _recv(sock, deadline)
            assert chunk, interim
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        reply = read_reply(sock)
    assert reply is not None and reply.status == 200


def test_expect_100_continue_without_a_key_gets_401_and_no_100(server: Running) -> None:
    payload = post(OK_BODY, b"Expect: 100-continue").replace(b"Bearer " + KEY.encode(), b"Bearer nope")
    head = payload.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    with connect(server.port) as sock:
        sock.sendall(head)
        raw = _recv(sock, time.monotonic() + IO_TIMEOUT)
        assert raw.startswith(b"HTTP/1.1 401 ")
        reply = read_reply(sock, raw)
    assert reply is not None and reply.status == 401 and reply.headers["connection"] == "close"


def test_pipelined_requests_are_answered_in_order(server: Running) -> None:
    health = request(line=b"GET /healthz HTTP/1.1", auth=False)
    with connect(server.port) as sock:
        sock.sendall(post(OK_BODY) + health + post({"messages": 1}) + health)
        replies: list[int] = []
        rest = b""
        for _ in range(4):
            reply = read_reply(sock, rest)
            assert reply is not None
            replies.append(reply.status)
            rest = reply.rest
    assert replies == [200, 200, 400, 200]


def test_method_not_allowed_names_the_allowed_ones(server: Running) -> None:
    reply = exchange(server.port, request(line=b"DELETE /v1/chat/completions HTTP/1.1"))
    assert reply is not None and reply.status == 405
    assert reply.headers["allow"] == "POST"


# --- clients that go away ----------------------------------------------------------------
def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


SECRET_BODY = json.dumps(msgs()).encode()


def _partial_head(sock: socket.socket) -> None:
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY.encode()
    )


def _partial_body(sock: socket.socket) -> None:
    sock.sendall(post(SECRET_BODY)[:-10])


def _unread_responses(sock: socket.socket) -> None:
    """Pipeline requests for large responses and never read them: the server's writes block."""
    metrics = request(line=b"GET /metrics HTTP/1.1", auth=False)
    sock.sendall(metrics * 600)


DISCONNECTS = [
    ("head-closed", _partial_head, False, "head"),
    ("head-reset", _partial_head, True, "head"),
    ("body-closed", _partial_body, False, "body"),
    ("body-reset", _partial_body, True, "body"),
    ("response-unread-then-reset", _unread_responses, True, "response"),
]


@pytest.mark.parametrize(
    ("send", "reset", "phase"), [d[1:] for d in DISCONNECTS], ids=[d[0] for d in DISCONNECTS]
)
def test_client_disconnect_is_one_log_line(
    server: Running,
    capsys: pytest.CaptureFixture[str],
    send: Callable[[socket.socket], None],
    reset: bool,
    phase: str,
) -> None:
    logs = Logs(capsys)
    sock = connect(server.port)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        send(sock)
        time.sleep(0.3)  # the server is now waiting for the rest (or blocked writing)
    finally:
        if reset:
            _reset(sock)
        else:
            sock.close()
    line = logs.wait_for(lambda r: r["event"] == "client_disconnected")
    assert line["phase"] == phase
    assert line["level"] == "info"
    gone = [r for r in logs.lines() if r["event"] == "client_disconnected"]
    assert len(gone) == 1
    logs.assert_alive(server.port)
    logs.assert_clean()


def test_client_that_stops_reading_times_out(server: Running, capsys: pytest.CaptureFixture[str]) -> None:
    """A client that keeps the connection open but never reads: the write deadline frees the thread."""
    logs = Logs(capsys)
    with connect(server.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        _unread_responses(sock)
        line = logs.wait_for(lambda r: r["event"] == "client_disconnected", timeout=READ_TIMEOUT + 8)
    assert (line["phase"], line["reason"]) == ("response", "TimeoutError")
    logs.assert_alive(server.port)
    logs.assert_clean()
