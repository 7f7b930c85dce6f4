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
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tizi_service import __version__
from tizi_service.jsonlog import log
from tizi_service.keys import DEFAULT_KEYS_DIR, KeyStore
from tizi_service.metrics import Metrics
from tizi_service.model import LoadedModel, load_identifier
from tizi_service.moroccan import DEFAULT_LANGUAGES, MoroccanDetector

MODEL_ID = "tizi-langid-ma"
OPEN_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Config:
    """Everything the server reads from its environment, read once at start."""

    host: str = "0.0.0.0"
    port: int = 8080
    keys_dir: str = DEFAULT_KEYS_DIR
    keys_recheck_seconds: float = 1.0
    max_body_bytes: int = 64 * 1024
    drain_seconds: float = 20.0
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
            model_dir=e.get("TIZI_MODEL_DIR"),
            languages=tuple(x.strip() for x in langs.split(",") if x.strip()) if langs else DEFAULT_LANGUAGES,
        )


class HttpError(Exception):
    """An OpenAI-shaped error response."""

    def __init__(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


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


def _message_text(messages: Any) -> str:
    """Text of the last user message; content may be a string or OpenAI content parts."""
    if not isinstance(messages, list) or not messages:
        raise HttpError(400, "'messages' must be a non-empty list", "invalid_request_error")
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
                )
            raise HttpError(400, "unsupported message content", "invalid_request_error")
    raise HttpError(400, "no message with role 'user'", "invalid_request_error")


class Handler(BaseHTTPRequestHandler):
    """One instance per connection; `app` is set on the server object."""

    protocol_version = "HTTP/1.1"
    server_version = f"tizi/{__version__}"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this many seconds

    # --- plumbing -------------------------------------------------------------------------
    @property
    def app(self) -> App:
        return self.server.app  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's access log: it prints the raw request line to stderr."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", self._request_id)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="tizi"')
        if self.app.draining or status == 413:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"))

    def _error(self, err: HttpError) -> None:
        self._json(
            err.status,
            {"error": {"message": err.message, "type": err.kind, "param": None, "code": err.code}},
        )

    def _route(self, path: str) -> tuple[str, Callable[[], None] | None, tuple[str, ...]]:
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

    def _authorize(self) -> str:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        key_id = self.app.keys.check(token.strip()) if scheme.lower() == "bearer" else None
        if key_id is None:
            raise HttpError(401, "a valid API key is required", "invalid_request_error", "invalid_api_key")
        return key_id

    def _dispatch(self) -> None:
        start = time.perf_counter()
        app = self.app
        app.enter()
        self._status = 500
        rid = self.headers.get("X-Request-Id", "")
        self._request_id = rid if REQUEST_ID.match(rid) else uuid.uuid4().hex
        path = urlsplit(self.path).path
        route, fn, methods = self._route(path)
        self._key_id: str | None = None
        self._bytes_in = 0
        try:
            if route not in OPEN_ROUTES:
                self._key_id = self._authorize()
            if fn is None:
                raise HttpError(404, f"no route {path}", "invalid_request_error", "not_found")
            if self.command not in methods:
                raise HttpError(405, f"{self.command} not allowed", "invalid_request_error")
            fn()
        except HttpError as err:
            self._discard_body_or_close()
            self._error(err)
        except Exception as exc:  # a bug: answer 500, log the type, never the input
            log("handler_error", level="error", route=route, error=type(exc).__name__)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._error(HttpError(500, "internal error", "server_error"))
        finally:
            elapsed = time.perf_counter() - start
            app.metrics.observe(route, self.command, self._status, elapsed)
            app.leave()
            log(
                "request",
                method=self.command,
                route=route,
                status=self._status,
                duration_ms=round(elapsed * 1000, 3),
                bytes_in=self._bytes_in,
                key_id=self._key_id,
                request_id=self._request_id,
            )

    def _discard_body_or_close(self) -> None:
        """An unread request body would be parsed as the next request: drop the connection."""
        if self.headers.get("Content-Length", "0") not in ("0", "") and self._bytes_in == 0:
            self.close_connection = True

    def _read_json(self) -> Any:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise HttpError(411, "Content-Length required", "invalid_request_error")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise HttpError(411, "Content-Length required", "invalid_request_error") from None
        if length < 0:
            raise HttpError(400, "bad Content-Length", "invalid_request_error")
        if length > self.app.config.max_body_bytes:
            self.close_connection = True
            raise HttpError(
                413,
                f"request body over {self.app.config.max_body_bytes} bytes",
                "invalid_request_error",
                "request_too_large",
            )
        raw = self.rfile.read(length)
        self._bytes_in = len(raw)
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "body is not valid JSON", "invalid_request_error") from None

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
        model_id = urlsplit(self.path).path.removeprefix("/v1/models/")
        if model_id != MODEL_ID:
            raise HttpError(404, f"model {model_id!r} not found", "invalid_request_error", "model_not_found")
        self._json(200, _model_card(self.app))

    def _chat(self) -> None:
        body = self._read_json()
        if not isinstance(body, dict):
            raise HttpError(400, "body must be a JSON object", "invalid_request_error")
        model = body.get("model", MODEL_ID)
        if model != MODEL_ID:
            raise HttpError(404, f"model {model!r} not found", "invalid_request_error", "model_not_found")
        if body.get("stream"):
            raise HttpError(400, "stream is not supported", "invalid_request_error")
        text = _message_text(body.get("messages"))
        detector = self._require_ready()
        d = detector.detect(text)
        self.app.metrics.detection(d.language, d.method)
        prompt_tokens = len(text.split())
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
