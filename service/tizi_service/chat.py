"""Validation of a chat-completions request body, without I/O.

`parse_chat_request(raw)` returns a `ChatRequest` or raises `HttpError` (always 4xx) whose
`param` names what is wrong, in OpenAI's style: `model`, `messages`, `messages[2].content`,
`temperature`, or `body` for the document as a whole. Nothing else escapes it, whatever the
bytes: the unit tests fuzz it with arbitrary bytes and arbitrary JSON values.

Checks, in order (the first failure is reported):

- the body is UTF-8 (RFC 8259 §8.1), is JSON without NaN/Infinity, duplicate object keys or
  nesting deeper than Python's recursion limit, and is an object;
- `model`, if present, is a string (404 `model_not_found` when it is another model);
- `messages` is a non-empty list of objects, each with a known `role` (string) and a `content`
  that is a string or a list of content parts (objects with a string `type`; `text` parts with a
  string `text`); `content` may be null or absent only for assistant messages; one message at
  least has role `user`, and the text classified (the last user message) has no unpaired
  surrogate;
- the optional sampling parameters have their OpenAI types and ranges (null means absent);
  `stream: true` and `n` other than 1 are refused because this model cannot honour them.

Unknown top-level fields are ignored, as most OpenAI-compatible servers do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tizi_service.http1 import HttpError

MODEL_ID = "tizi-langid-ma"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# name: (integers only, minimum, maximum); None = unbounded
NUMBERS: dict[str, tuple[bool, float | None, float | None]] = {
    "max_tokens": (True, 1, None),
    "max_completion_tokens": (True, 1, None),
    "n": (True, 1, 1),
    "seed": (True, None, None),
    "temperature": (False, 0, 2),
    "top_p": (False, 0, 1),
    "presence_penalty": (False, -2, 2),
    "frequency_penalty": (False, -2, 2),
}
BOOLEANS = ("stream", "logprobs")
STRINGS = ("user",)
KNOWN_KEYS = frozenset(
    {"model", "messages", "stop", "role", "content", "type", "text", *NUMBERS, *BOOLEANS, *STRINGS}
)
ECHO_CHARS = 64  # at most this much of a client's value is echoed back in an error message


@dataclass(frozen=True)
class ChatRequest:
    """What the server needs from a valid request."""

    model: str
    text: str  # the last user message's text, valid for UTF-8 encoding


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _bad(message: str, param: str | None, code: str | None = None, status: int = 400) -> HttpError:
    return HttpError(status, message, "invalid_request_error", code, param)


def echo(value: Any) -> str:
    """A client's value, shortened, for an error message (repr escapes controls/surrogates)."""
    text = value if isinstance(value, str) else json.dumps(value)[:ECHO_CHARS]
    short = text[:ECHO_CHARS] + ("..." if len(text) > ECHO_CHARS else "")
    return repr(short)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def load_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no duplicate keys, bounded nesting."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(f"request body is not valid UTF-8 (byte {exc.start})", "body") from None
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except _DuplicateKey as dup:
        param = dup.key if dup.key in KNOWN_KEYS else None
        raise _bad(f"duplicate key {echo(dup.key)} in a JSON object", param or "body") from None
    except json.JSONDecodeError as exc:
        raise _bad(
            f"request body is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})", "body"
        ) from None
    except RecursionError:
        raise _bad("request body is nested too deeply", "body") from None
    except ValueError as exc:  # NaN/Infinity, or an integer over Python's digit limit
        raise _bad(f"request body is not valid JSON: {str(exc)[:80]}", "body") from None


def parse_chat_request(raw: bytes) -> ChatRequest:
    body = load_json(raw)
    if not isinstance(body, dict):
        raise _bad(f"request body must be a JSON object, not {_type_name(body)}", "body")
    model = body.get("model", MODEL_ID)
    if not isinstance(model, str):
        raise _bad(f"'model' must be a string, not {_type_name(model)}", "model", "invalid_type")
    if model != MODEL_ID:
        raise _bad(f"model {echo(model)} not found", "model", "model_not_found", 404)
    text = _message_text(body.get("messages"))
    _check_parameters(body)
    return ChatRequest(model, text)


def _message_text(messages: Any) -> str:
    """Validate every message; return the text of the last user message."""
    if messages is None:
        raise _bad("'messages' is required", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _bad(f"'messages' must be an array, not {_type_name(messages)}", "messages", "invalid_type")
    if not messages:
        raise _bad("'messages' must not be empty", "messages")
    text: str | None = None
    where = ""
    for i, msg in enumerate(messages):
        p = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise _bad(f"'{p}' must be an object, not {_type_name(msg)}", p, "invalid_type")
        role = msg.get("role")
        if not isinstance(role, str):
            what = "is required" if role is None else f"must be a string, not {_type_name(role)}"
            raise _bad(f"'{p}.role' {what}", f"{p}.role", "invalid_type")
        if role not in ROLES:
            raise _bad(f"'{p}.role' {echo(role)} is not one of {sorted(ROLES)}", f"{p}.role")
        content = _content_text(msg.get("content"), role, f"{p}.content")
        if role == "user":
            text, where = content, f"{p}.content"
    if text is None:
        raise _bad("'messages' has no message with role 'user'", "messages")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(f"'{where}' contains an unpaired surrogate", where) from None
    return text


def _content_text(content: Any, role: str, p: str) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        if role == "assistant":
            return ""
        raise _bad(f"'{p}' is required for role {role!r} (a string or an array of parts)", p, "invalid_type")
    if not isinstance(content, list):
        raise _bad(
            f"'{p}' must be a string or an array of parts, not {_type_name(content)}", p, "invalid_type"
        )
    texts = []
    for j, part in enumerate(content):
        pp = f"{p}[{j}]"
        if not isinstance(part, dict):
            raise _bad(f"'{pp}' must be an object, not {_type_name(part)}", pp, "invalid_type")
        kind = part.get("type")
        if not isinstance(kind, str):
            what = "is required" if kind is None else f"must be a string, not {_type_name(kind)}"
            raise _bad(f"'{pp}.type' {what}", f"{pp}.type", "invalid_type")
        if kind == "text":
            value = part.get("text")
            if not isinstance(value, str):
                raise _bad(
                    f"'{pp}.text' must be a string, not {_type_name(value)}", f"{pp}.text", "invalid_type"
                )
            texts.append(value)
    return " ".join(texts)


def _check_parameters(body: dict[str, Any]) -> None:
    for name in BOOLEANS:
        value = body.get(name)
        if value is not None and not isinstance(value, bool):
            raise _bad(f"'{name}' must be a boolean, not {_type_name(value)}", name, "invalid_type")
    if body.get("stream"):
        raise _bad("'stream' is not supported", "stream", "unsupported_parameter")
    for name, (integer, low, high) in NUMBERS.items():
        value = body.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (integer and not isinstance(value, int))
        ):
            kind = "an integer" if integer else "a number"
            raise _bad(f"'{name}' must be {kind}, not {_type_name(value)}", name, "invalid_type")
        if (
            (isinstance(value, float) and not math.isfinite(value))
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            if low == high:
                bounds = f"{low} (this model returns one choice)"
            elif high is None:
                bounds = f">= {low}"
            else:
                bounds = f"between {low} and {high}"
            raise _bad(f"'{name}' must be {bounds}", name, "invalid_value")
    for name in STRINGS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise _bad(f"'{name}' must be a string, not {_type_name(value)}", name, "invalid_type")
    stop = body.get("stop")
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) for s in stop):
        raise _bad("'stop' must be a string or an array of at most 4 strings", "stop", "invalid_type")
