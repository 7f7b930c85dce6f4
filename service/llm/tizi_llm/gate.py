"""The ASGI gate in front of llama_cpp.server's FastAPI app.

What llama_cpp.server 0.3.36 does by itself, and what the gate adds:
- Keys: llama_cpp.server knows one `api_key` compared in plain text, answers 401 as
  `{"detail": "Invalid API key"}`, and needs a restart to change it. The gate checks
  `Authorization: Bearer` against the key files of `KeyStore` (several at once, rotation
  without restart) and answers in OpenAI's shape (code `invalid_api_key`), so the official
  `openai` client raises `AuthenticationError`. `/healthz` and `/readyz` need no key.
- Model names: llama_cpp.server's `LlamaProxy` silently falls back to the default model for
  any unknown `model`. The gate reads the JSON body of POST requests and answers 404
  `model_not_found` (OpenAI's shape; `openai.NotFoundError`) for a name it does not serve.
  A request without `model` gets the served model. `GET /v1/models/{id}` is answered here
  (llama_cpp.server has only the list, `GET /v1/models`).
- Request shape: llama_cpp.server parses chat and completion bodies inside its route, so a
  malformed one (``messages`` not a list, a number for ``max_tokens``…) ends as a 500. The
  gate validates those bodies against llama_cpp.server's own request models first and
  answers 400 in OpenAI's shape, naming the field (``openai.BadRequestError``).
- Readiness: llama_cpp.server loads the model inside `create_app`, before it can answer
  anything. The launcher serves the gate at once (`/healthz` 200, `/readyz` 503) and the
  gate forwards to the app once the model is loaded; until then it answers 503
  (`model_not_ready`, with Retry-After, which the openai client retries).
- Access log: one JSON line per request (method, path without query, status, durations,
  bytes, key id = key file name, model name, stream flag, request id); never a header, a key,
  a query string or a prompt. Uvicorn's own access log is off.
Everything else (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/models`,
SSE streaming with `stream=true`, `/extras/*`, `/docs`) is llama_cpp.server's, unchanged.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from tizi_service.keys import KeyStore

from tizi_llm.jsonlog import log

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
#: POST bodies under these prefixes are JSON requests that may name a model
MODEL_PREFIXES = ("/v1/", "/extras/")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def openai_error(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error body: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


async def respond(send: Send, status: int, body: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    raw = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            *headers,
        ],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": raw})


def bearer_token(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


def header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value.decode("latin-1")
    return None


class Gate:
    """Wraps the llama_cpp.server app (set in `app` once the model is loaded)."""

    def __init__(self, keys: KeyStore, model_names: Iterable[str], max_body_bytes: int = 1 << 20) -> None:
        self.keys = keys
        self.model_names = frozenset(model_names)
        self.max_body_bytes = max_body_bytes
        self.app: ASGIApp | None = None
        self.loaded_at: int = 0
        self.failed = False

    @property
    def ready(self) -> bool:
        return self.app is not None

    def set_app(self, app: ASGIApp) -> None:
        self.loaded_at = int(time.time())
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            return
        start = time.monotonic()
        rid = header(scope, b"x-request-id") or ""
        rid = rid if REQUEST_ID.fullmatch(rid) else uuid.uuid4().hex
        seen: dict[str, Any] = {"status": 0, "first_byte": None, "bytes": 0}
        fields: dict[str, Any] = {}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (b"x-request-id", rid.encode())],
                }
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body and seen["first_byte"] is None:
                    seen["first_byte"] = time.monotonic()
                seen["bytes"] += len(body)
            await send(message)

        try:
            await self._handle(scope, receive, send_logged, fields)
        finally:
            path = scope.get("path", "")
            if path not in PUBLIC_PATHS:  # probes every few seconds would drown the log
                first = seen["first_byte"]
                log(
                    "request",
                    method=scope.get("method"),
                    path=path[:200],
                    status=seen["status"] or 499,
                    duration_ms=round((time.monotonic() - start) * 1000, 1),
                    first_byte_ms=None if first is None else round((first - start) * 1000, 1),
                    bytes_out=seen["bytes"],
                    request_id=rid,
                    **fields,
                )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: Scope, receive: Receive, send: Send, fields: dict[str, Any]) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            await respond(send, 200, {"status": "ok"})
            return
        if path == "/readyz":
            if self.ready:
                await respond(send, 200, {"status": "ready", "model": sorted(self.model_names)})
            else:
                await respond(send, 503, {"status": "failed" if self.failed else "loading"})
            return

        token = bearer_token(scope)
        key_id = self.keys.check(token) if token else None
        if key_id is None:
            message = (
                "Incorrect API key provided."
                if token
                else "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'."
            )
            fields["auth"] = "invalid" if token else "missing"
            await respond(
                send, 401, openai_error(message, "invalid_request_error", "invalid_api_key"),
                [(b"www-authenticate", b'Bearer realm="tizi"')],
            )  # fmt: skip
            return
        fields["key"] = key_id

        if self.app is None:
            await respond(
                send, 503,
                openai_error("The model is loading; retry shortly.", "server_error", "model_not_ready"),
                [(b"retry-after", b"1")],
            )  # fmt: skip
            return

        if method == "GET" and path.startswith("/v1/models/"):
            model = path[len("/v1/models/") :]
            if model in self.model_names:
                fields["model"] = model
                await respond(
                    send, 200, {"id": model, "object": "model", "created": self.loaded_at, "owned_by": "tizi"}
                )
            else:
                await self._model_not_found(send, model, fields)
            return

        if method == "POST" and path.startswith(MODEL_PREFIXES):
            body = await self._read_body(scope, receive, send, fields)
            if body is None:
                return
            request = _json_object(body)
            problem = _request_problem(path, request, body)
            if problem is not None:
                fields["invalid"] = problem[1]
                error = openai_error(problem[0], "invalid_request_error", "invalid_request", problem[1])
                await respond(send, 400, error)
                return
            if request is not None:
                model = request.get("model")
                if model is not None:
                    if not isinstance(model, str) or model not in self.model_names:
                        await self._model_not_found(send, str(model), fields)
                        return
                    fields["model"] = model
                fields["stream"] = request.get("stream") is True
            receive = _replay(body, receive)

        await self.app(scope, receive, send)

    async def _model_not_found(self, send: Send, model: str, fields: dict[str, Any]) -> None:
        fields["model_unknown"] = True  # the name itself is caller text: not logged
        shown = model if len(model) <= 100 else model[:100] + "..."
        await respond(
            send, 404,
            openai_error(
                f"The model `{shown}` does not exist or you do not have access to it.",
                "invalid_request_error", "model_not_found",
            ),
        )  # fmt: skip

    async def _read_body(
        self, scope: Scope, receive: Receive, send: Send, fields: dict[str, Any]
    ) -> bytes | None:
        """The whole request body, or None after answering 413 (or on disconnect)."""
        too_large = openai_error(
            f"Request body larger than {self.max_body_bytes} bytes.",
            "invalid_request_error",
            "request_too_large",
        )
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await respond(send, 413, too_large)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                fields["disconnected"] = True
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await respond(send, 413, too_large)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


#: llama_cpp.server's request models, by route (imported lazily: the gate's own tests run without it)
_REQUEST_MODELS = {
    "/v1/chat/completions": "CreateChatCompletionRequest",
    "/v1/completions": "CreateCompletionRequest",
    "/v1/embeddings": "CreateEmbeddingRequest",
}


def _request_problem(path: str, request: dict[str, Any] | None, body: bytes) -> tuple[str, str] | None:
    """(message, param) when the body does not fit the route's request model, else None."""
    name = _REQUEST_MODELS.get(path)
    if name is None:
        return None
    if request is None:
        return "The request body must be a JSON object.", "body"
    try:
        from llama_cpp.server import types
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover - the image always has them
        return None
    try:
        getattr(types, name).model_validate(request)
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first.get("loc", ())) or "body"
        return f"Invalid value for '{param}': {first.get('msg', 'invalid')}", param
    return None


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None  # FastAPI answers 422 itself
    return value if isinstance(value, dict) else None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that returns the buffered body once, then the real channel (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
