"""The HTTP server: OpenAI-shaped language identification, health, readiness, metrics.

Standard library only (http.server with a thread per connection): the image stays small and
there is no framework to patch. The contract (documented in service/README.md):

- GET  /healthz             200 while the process runs (liveness), no key
- GET  /readyz              200 once the model is loaded and not draining, else 503; no key
- GET  /metrics             Prometheus text, no key
- GET  /v1/models           OpenAI model list (one model), bearer key
- GET  /v1/models/{id}      one model, bearer key
- POST /v1/chat/completions the assistant message content is the language code of the last
                            user message; a `tizi` field carries confidence, method, cues and
                            scores; bearer key

Everything else needs a key too (401 before 404, so scanners learn nothing).

Hostile input: the request head is read with deadlines and parsed strictly (`http1`, RFC 9112
choices listed there), the chat body is validated by `chat`; every refusal is one OpenAI-shaped
JSON error naming the offending `param` and one `request` log line. A client that goes away
mid-request is one `client_disconnected` line. No input reaches a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tizi_service import __version__
from tizi_service.chat import MODEL_ID, echo, parse_chat_request
from tizi_service.http1 import (
    KNOWN_METHODS,
    Framing,
    Head,
    HttpError,
    framing,
    head_end,
    parse_head,
    skip_leading_empty_lines,
)
from tizi_service.jsonlog import log
from tizi_service.keys import DEFAULT_KEYS_DIR, KeyStore
from tizi_service.metrics import Metrics
from tizi_service.model import LoadedModel, load_identifier
from tizi_service.moroccan import DEFAULT_LANGUAGES, MoroccanDetector

__all__ = ["MODEL_ID", "App", "Config", "HttpError", "Server", "drain_and_stop", "main", "start"]

OPEN_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
RECV_BYTES = 64 * 1024
LINGER_SECONDS = 2.0  # after an error response, how long unread input is drained before close
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Config:
    """Everything the server reads from its environment, read once at start."""

    host: str = "0.0.0.0"
    port: int = 8080
    keys_dir: str = DEFAULT_KEYS_DIR
    keys_recheck_seconds: float = 1.0
    max_body_bytes: int = 64 * 1024
    drain_seconds: float = 20.0
    read_timeout_seconds: float = 10.0  # a request's head, and then its body, must arrive in this
    idle_timeout_seconds: float = 30.0  # an idle keep-alive connection is closed after this
    model_dir: str | None = None
    languages: tuple[str, ...] = DEFAULT_LANGUAGES

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        e = os.environ if env is None else env
        langs = e.get("TIZI_LANGUAGES")
        return cls(
            host=e.get("TIZI_HOST", "0.0.0.0"),
            port=int(e.get("PORT", "8080")),
            keys_dir=e.get("TIZI_API_KEYS_DIR", DEFAULT_KEYS_DIR),
            keys_recheck_seconds=float(e.get("TIZI_KEYS_RECHECK_SECONDS", "1.0")),
            max_body_bytes=int(e.get("TIZI_MAX_BODY_BYTES", str(64 * 1024))),
            drain_seconds=float(e.get("TIZI_DRAIN_SECONDS", "20")),
            read_timeout_seconds=float(e.get("TIZI_READ_TIMEOUT_SECONDS", "10")),
            idle_timeout_seconds=float(e.get("TIZI_IDLE_TIMEOUT_SECONDS", "30")),
            model_dir=e.get("TIZI_MODEL_DIR"),
            languages=tuple(x.strip() for x in langs.split(",") if x.strip()) if langs else DEFAULT_LANGUAGES,
        )


@dataclass
class App:
    """State shared by all request threads."""

    config: Config
    loader: Callable[[str | None], LoadedModel] = load_identifier
    metrics: Metrics = field(default_factory=Metrics)
    detector: MoroccanDetector | None = None
    model: LoadedModel | None = None
    draining: bool = False
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.keys = KeyStore(self.config.keys_dir, self.config.keys_recheck_seconds)
        self.ready = threading.Event()
        self._inflight = 0
        self._idle = threading.Condition()

    def load_model(self) -> None:
        """Runs in a background thread so /healthz answers while the model loads."""
        try:
            model = self.loader(self.config.model_dir)
            self.detector = MoroccanDetector(model.identifier, self.config.languages)
            self.model = model
            self.metrics.model_load_seconds = model.load_seconds
            self.metrics.model_loaded = 1
            self.ready.set()
            log(
                "model_loaded",
                model=MODEL_ID,
                source=model.source,
                sha256=model.sha256,
                load_seconds=round(model.load_seconds, 4),
                languages=list(self.config.languages),
            )
        except Exception as exc:
            log("model_load_failed", level="error", error=f"{type(exc).__name__}: {exc}")

    def enter(self) -> None:
        with self._idle:
            self._inflight += 1
        self.metrics.add_inflight(1)

    def leave(self) -> None:
        with self._idle:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.notify_all()
        self.metrics.add_inflight(-1)

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout)


def _model_card(app: App) -> dict[str, Any]:
    return {
        "id": MODEL_ID,
        "object": "model",
        "created": int(app.started),
        "owned_by": "tizi",
        "tizi": {
            "task": "language-identification",
            "languages": list(app.config.languages),
            "base_model": "langid.py 1.1.6 (BSD-2-Clause)",
            "model_sha256": app.model.sha256 if app.model else None,
        },
    }


class ClientGone(Exception):
    """The client closed or reset the connection, or stopped reading, mid-exchange."""

    def __init__(self, phase: str, reason: str) -> None:
        super().__init__(f"{phase}: {reason}")
        self.phase, self.reason = phase, reason


class _RecvTimeout(Exception):
    """Nothing arrived before the deadline."""


_GONE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


def _method_label(method: str) -> str:
    """Methods in logs and metrics: a hostile method token must not create a series."""
    return method if method in KNOWN_METHODS else "other"


class Handler(BaseHTTPRequestHandler):
    """One instance per connection; `app` is set on the server object.

    http.server's request reader is replaced (handle_one_request): the handler reads the socket
    itself, with a deadline for each request's head and body, and parses with the strict
    `http1` module. BaseHTTPRequestHandler is kept for writing responses.
    """

    protocol_version = "HTTP/1.1"
    server_version = f"tizi/{__version__}"
    sys_version = ""

    # --- plumbing -------------------------------------------------------------------------
    @property
    def app(self) -> App:
        return self.server.app  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's access log: it prints the raw request line to stderr."""

    def version_string(self) -> str:
        return self.server_version  # without http.server's trailing " " + sys_version

    def setup(self) -> None:
        super().setup()
        self._buf = bytearray()  # bytes received and not yet consumed, across keep-alive requests
        self._linger = False

    def finish(self) -> None:
        super().finish()
        if self._linger:
            self._lingering_close()

    def _lingering_close(self) -> None:
        """Read and drop what the client still sends for a moment before closing: closing a
        socket with unread input makes the kernel send RST, which can destroy the error
        response before the client has read it."""
        deadline = time.monotonic() + LINGER_SECONDS
        dropped = 0
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            while dropped < LINGER_BYTES and (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                data = self.connection.recv(RECV_BYTES)
                if not data:
                    break
                dropped += len(data)

    def _reset(self) -> None:
        self.close_connection = True
        self.command, self.path, self.request_version, self.requestline = "", "", "HTTP/1.1", ""
        self.headers = HTTPMessage()
        self._head: Head | None = None
        self._framing: Framing | None = None
        self._body_read = False
        self._route, self._fn, self._methods = "other", None, ()
        self._status, self._param, self._sent = 500, None, False
        self._key_id: str | None = None
        self._bytes_in = 0
        self._request_id = uuid.uuid4().hex
        self._t0 = time.perf_counter()

    def handle_one_request(self) -> None:
        """Read one request head (or notice the connection ended), then answer it."""
        self._reset()
        try:
            raw = self._receive_head()
        except ClientGone as gone:
            self.app.metrics.disconnect(gone.phase)
            log(
                "client_disconnected",
                phase=gone.phase,
                reason=gone.reason,
                bytes_in=len(self._buf),
                request_id=self._request_id,
            )
            return
        except HttpError as err:  # 408, 414, 431 before the head was complete
            self._serve(None, err)
            return
        if raw is not None:
            self._serve(raw, None)

    # --- reading --------------------------------------------------------------------------
    def _recv(self, timeout: float, phase: str) -> None:
        self.connection.settimeout(max(timeout, 0.001))
        try:
            data = self.connection.recv(RECV_BYTES)
        except TimeoutError:
            raise _RecvTimeout from None
        except _GONE as exc:
            raise ClientGone(phase, type(exc).__name__) from None
        if not data:
            raise ClientGone(phase, "closed")
        self._buf += data

    def _receive_head(self) -> bytes | None:
        """The next request head; None when an idle connection is closed or times out.

        The idle timeout runs until the first byte of a request; from then on the whole head
        must arrive within the read timeout (a client trickling bytes cannot hold a thread).
        """
        cfg = self.app.config
        idle_until = time.monotonic() + cfg.idle_timeout_seconds
        deadline: float | None = None
        while True:
            skip_leading_empty_lines(self._buf)
            if self._buf:
                if deadline is None:
                    deadline = time.monotonic() + cfg.read_timeout_seconds
                    self._t0 = time.perf_counter()
                end = head_end(self._buf)
                if end is not None:
                    raw = bytes(self._buf[:end])
                    del self._buf[:end]
                    return raw
            remaining = (idle_until if deadline is None else deadline) - time.monotonic()
            if remaining <= 0:
                if deadline is None:
                    return None
                raise HttpError(
                    408,
                    f"request head not received within {cfg.read_timeout_seconds:g} s",
                    code="request_timeout",
                    param="headers",
                )
            try:
                self._recv(remaining, "head")
            except _RecvTimeout:
                continue
            except ClientGone:
                if deadline is None:  # nothing of a next request had arrived: a normal close
                    return None
                raise

    def _read_body(self) -> bytes:
        """The request body (Content-Length bytes), within the read timeout."""
        assert self._framing is not None
        length = self._framing.content_length
        if length is None:
            self.close_connection = True  # whatever follows cannot be delimited
            raise HttpError(411, "Content-Length required", code="length_required", param="Content-Length")
        limit = self.app.config.max_body_bytes
        if length > limit:
            raise HttpError(
                413, f"request body over {limit} bytes", code="request_too_large", param="Content-Length"
            )
        if self._framing.expect_continue and len(self._buf) < length:
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
        timeout = self.app.config.read_timeout_seconds
        deadline = time.monotonic() + timeout
        while len(self._buf) < length:
            self._bytes_in = len(self._buf)
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise _RecvTimeout
                self._recv(remaining, "body")
            except _RecvTimeout:
                raise HttpError(
                    408,
                    f"request body incomplete: {len(self._buf)} of {length} bytes (Content-Length) "
                    f"within {timeout:g} s",
                    code="request_timeout",
                    param="body",
                ) from None
        body = bytes(self._buf[:length])
        del self._buf[:length]
        self._bytes_in, self._body_read = length, True
        return body

    def _unread_body(self) -> bool:
        """True when input of this request may still be on the wire (then the connection must
        close: it would be read as the next request)."""
        if self._framing is None:
            return True
        return bool(self._framing.content_length) and not self._body_read

    # --- writing --------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        self.connection.settimeout(self.app.config.read_timeout_seconds)
        try:
            self.wfile.write(data)
        except (*_GONE, TimeoutError) as exc:
            self.close_connection = True
            raise ClientGone("response", type(exc).__name__) from None

    def _send(
        self, status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        self._status, self._sent = status, True
        if self.app.draining or self._unread_body():
            self.close_connection = True
        if self.close_connection and status >= 400:
            self._linger = True
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", self._request_id)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="tizi"')
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self._headers_buffer.append(b"\r\n")
        head, self._headers_buffer = b"".join(self._headers_buffer), []
        self._write(head if self.command == "HEAD" else head + body)

    def _json(self, status: int, obj: Any) -> None:
        # backslashreplace: a lone surrogate (possible in JSON input) becomes a JSON escape
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8", "backslashreplace"))

    def _error(self, err: HttpError) -> None:
        self._param = err.param
        self._send(
            err.status,
            json.dumps(err.body(), ensure_ascii=False).encode("utf-8", "backslashreplace"),
            headers=err.headers,
        )

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's HTML error page, replaced by the JSON error shape (not reached in
        normal operation: the reader above does not call it)."""
        self.close_connection = True
        with contextlib.suppress(ClientGone):
            self._error(HttpError(code, message or HTTPStatus(code).phrase))

    # --- one exchange ---------------------------------------------------------------------
    def _route_for(self, path: str) -> tuple[str, Callable[[], None] | None, tuple[str, ...]]:
        if path == "/healthz":
            return path, self._healthz, ("GET",)
        if path == "/readyz":
            return path, self._readyz, ("GET",)
        if path == "/metrics":
            return path, self._metrics, ("GET",)
        if path == "/v1/models":
            return path, self._models, ("GET",)
        if path.startswith("/v1/models/"):
            return "/v1/models/{id}", self._model, ("GET",)
        if path == "/v1/chat/completions":
            return path, self._chat, ("POST",)
        return "other", None, ()

    def _adopt(self, head: Head) -> None:
        self._head = head
        self.command, self.path, self.request_version = head.method, head.target, head.version
        self.requestline = f"{head.method} {head.target} {head.version}"
        self.headers = head.message()
        self.close_connection = not head.keep_alive
        rid = head.get("X-Request-Id", "") or ""
        if REQUEST_ID.match(rid):
            self._request_id = rid
        self._route, self._fn, self._methods = self._route_for(head.path)

    def _authorize(self) -> str:
        assert self._head is not None
        header = self._head.get("Authorization", "") or ""
        scheme, _, token = header.partition(" ")
        key_id = self.app.keys.check(token.strip()) if scheme.lower() == "bearer" else None
        if key_id is None:
            raise HttpError(401, "a valid API key is required", "invalid_request_error", "invalid_api_key")
        return key_id

    def _serve(self, raw: bytes | None, early: HttpError | None) -> None:
        """Answer one request: exactly one response, and exactly one log line (`request`, or
        `client_disconnected` when the client went away first)."""
        app = self.app
        app.enter()
        gone: ClientGone | None = None
        try:
            try:
                if early is not None:
                    raise early
                assert raw is not None
                self._adopt(parse_head(raw))
                assert self._head is not None
                self._framing = framing(self._head)
                if self.command not in KNOWN_METHODS:
                    raise HttpError(501, "method not implemented", code="not_implemented", param="method")
                if self._route not in OPEN_ROUTES:
                    self._key_id = self._authorize()
                if self._fn is None:
                    raise HttpError(404, f"no route {echo(self._head.path)}", code="not_found")
                if self.command not in self._methods:
                    allow = ", ".join(self._methods)
                    raise HttpError(405, f"{self.command} not allowed", headers={"Allow": allow})
                self._fn()
            except HttpError as err:
                self._error(err)
        except ClientGone as exc:
            gone = exc
            self.close_connection = True
        except Exception as exc:  # a bug: answer 500, log the type, never the input
            log("handler_error", level="error", route=self._route, error=type(exc).__name__)
            self.close_connection = True
            if not self._sent:
                with contextlib.suppress(OSError, ClientGone):
                    self._error(HttpError(500, "internal error", "server_error"))
            self._status = 500
        finally:
            elapsed = time.perf_counter() - self._t0
            method = _method_label(self.command) if self.command else None
            app.leave()
            expected = self._framing.content_length if self._framing else None
            if gone is not None:
                app.metrics.disconnect(gone.phase)
                log(
                    "client_disconnected",
                    phase=gone.phase,
                    reason=gone.reason,
                    method=method,
                    route=self._route,
                    bytes_in=len(self._buf) if gone.phase == "body" else self._bytes_in,
                    content_length=expected,
                    duration_ms=round(elapsed * 1000, 3),
                    key_id=self._key_id,
                    request_id=self._request_id,
                )
            else:
                app.metrics.observe(self._route, method or "other", self._status, elapsed)
                extra = {"param": self._param} if self._status >= 400 else {}
                log(
                    "request",
                    method=method,
                    route=self._route,
                    status=self._status,
                    duration_ms=round(elapsed * 1000, 3),
                    bytes_in=self._bytes_in,
                    key_id=self._key_id,
                    request_id=self._request_id,
                    **extra,
                )

    def _require_ready(self) -> MoroccanDetector:
        if not self.app.ready.is_set() or self.app.detector is None:
            raise HttpError(503, "model is loading", "server_error", "not_ready")
        return self.app.detector

    # --- routes ---------------------------------------------------------------------------
    def _healthz(self) -> None:
        self._json(200, {"status": "ok"})

    def _readyz(self) -> None:
        if self.app.draining:
            self._json(503, {"status": "draining"})
        elif self.app.ready.is_set():
            self._json(200, {"status": "ready", "model": MODEL_ID})
        else:
            self._json(503, {"status": "loading"})

    def _metrics(self) -> None:
        self._send(200, self.app.metrics.render().encode(), "text/plain; version=0.0.4")

    def _models(self) -> None:
        self._json(200, {"object": "list", "data": [_model_card(self.app)]})

    def _model(self) -> None:
        assert self._head is not None
        model_id = self._head.path.removeprefix("/v1/models/")
        if model_id != MODEL_ID:
            raise HttpError(
                404, f"model {echo(model_id)} not found", "invalid_request_error", "model_not_found"
            )
        self._json(200, _model_card(self.app))

    def _chat(self) -> None:
        request = parse_chat_request(self._read_body())
        detector = self._require_ready()
        d = detector.detect(request.text)
        self.app.metrics.detection(d.language, d.method)
        prompt_tokens = len(request.text.split())
        self._json(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL_ID,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": d.language},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": 1,
                    "total_tokens": prompt_tokens + 1,
                },
                "tizi": {
                    "language": d.language,
                    "confidence": d.confidence,
                    "method": d.method,
                    "script": d.script,
                    "cues": list(d.cues),
                    "scores": d.scores,
                },
            },
        )


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer without the reverse-DNS lookup of its bind address at start."""

    daemon_threads = True
    allow_reuse_address = True
    # A replacement container (host networking on edge sites) binds the same port while this
    # one still serves; the kernel spreads new connections until this listener closes.
    # Only for a fixed port: with port 0 the kernel could hand two servers the same port.
    allow_reuse_port = True
    request_queue_size = 128

    def __init__(self, app: App, address: tuple[str, int]) -> None:
        self.app = app
        self.allow_reuse_port = address[1] != 0
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection's handler raised: one JSON line with the exception type, instead of
        socketserver's traceback on stderr (which could quote request data). The server goes on."""
        exc = sys.exc_info()[1]
        log("connection_error", level="error", error=type(exc).__name__ if exc else None)


def start(app: App) -> tuple[Server, threading.Thread]:
    """Bind, start loading the model, serve in a thread. Used by main() and the unit tests."""
    server = Server(app, (app.config.host, app.config.port))
    threading.Thread(target=app.load_model, name="model-loader", daemon=True).start()
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return server, thread


def drain_and_stop(app: App, server: Server) -> bool:
    """Stop accepting and close the listener at once, then let in-flight requests finish
    (bounded). True if all finished.

    Closing the listener first matters when a replacement shares the port (SO_REUSEPORT):
    new connections then go to it (and, with net.ipv4.tcp_migrate_req=1, so do those still
    queued here) instead of waiting in a queue nobody will accept from.
    """
    app.draining = True
    server.shutdown()
    server.server_close()
    return app.wait_idle(app.config.drain_seconds)


def main() -> int:
    config = Config.from_env()
    app = App(config)
    server, thread = start(app)
    log(
        "starting",
        version=__version__,
        host=config.host,
        port=server.server_port,
        keys_dir=config.keys_dir,
        keys=app.keys.count(),
        max_body_bytes=config.max_body_bytes,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log("draining", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(1.0):
        pass
    finished = drain_and_stop(app, server)
    thread.join(timeout=5)
    log("stopped", drained=finished)
    return 0
