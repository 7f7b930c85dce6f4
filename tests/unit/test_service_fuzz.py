"""Property-based fuzzing of the reference service's request parsing and validation.

Whatever the input, the parsers return a valid parsed request or a 4xx decision (an HttpError
whose body is one line of OpenAI-shaped JSON naming the param); they never raise anything else.
The request-head parser and framing (`http1`), the chat-body validator (`chat`) and the
detector are fuzzed directly, and the live server with arbitrary bytes on a socket.

Budget: the `tizi-service-fuzz` profile below, TIZI_FUZZ_EXAMPLES examples per property
(default 200; CI may raise it), no per-example deadline (the machine is shared), no example
database (nothing is written to the work tree); failures print a reproduction blob.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_service_hostile import KEY, connect, healthz, read_reply
from tests.unit.test_service_server import Running, _serve

SERVICE = Path(__file__).resolve().parents[2] / "service"
sys.path.insert(0, str(SERVICE))

from tizi_service.chat import MODEL_ID, NUMBERS, ROLES, ChatRequest, parse_chat_request  # noqa: E402
from tizi_service.http1 import (  # noqa: E402
    KNOWN_METHODS,
    Framing,
    Head,
    HttpError,
    content_length,
    framing,
    head_end,
    parse_head,
    skip_leading_empty_lines,
)
from tizi_service.model import LoadedModel, export_model, load_identifier  # noqa: E402
from tizi_service.moroccan import DEFAULT_LANGUAGES, MoroccanDetector  # noqa: E402

settings.register_profile(
    "tizi-service-fuzz",
    max_examples=int(os.environ.get("TIZI_FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings(settings.get_profile("tizi-service-fuzz"))
# the live-server property shares one capsys across examples: that is intended
FUZZ_LIVE = settings(
    FUZZ, suppress_health_check=[*FUZZ.suppress_health_check, HealthCheck.function_scoped_fixture]
)


# --- strategies --------------------------------------------------------------------------
SURROGATES = st.lists(st.integers(0xD800, 0xDFFF), min_size=1, max_size=3).map(
    lambda cs: "".join(map(chr, cs))
)
TEXT = st.text(max_size=40) | SURROGATES
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=16,
)
PART = st.fixed_dictionaries(
    {},
    optional={"type": st.sampled_from(["text", "image_url"]) | JSON, "text": TEXT | JSON, "image_url": JSON},
)
MESSAGE = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from([*sorted(ROLES), "wizard", ""]) | JSON,
        "content": TEXT | st.lists(PART, max_size=3) | JSON,
        "name": JSON,
    },
)
NEAR_VALID = st.fixed_dictionaries(
    {},
    optional={
        "model": st.just(MODEL_ID) | JSON,
        "messages": st.lists(MESSAGE, max_size=4) | JSON,
        "stream": st.booleans() | JSON,
        "stop": st.lists(TEXT, max_size=5) | JSON,
        "user": TEXT | JSON,
        **{name: st.integers(-3, 3) | st.floats(-3, 3) | JSON for name in NUMBERS},
    },
)
VALID_TEXT = st.text(max_size=200)  # no surrogates: what a UTF-8 client can send
VALID_MESSAGES = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(sorted(ROLES)), "content": VALID_TEXT}), max_size=4
).map(lambda ms: [*ms, {"role": "user", "content": "x"}])

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
FIELD_NAMES = st.sampled_from(
    ["Host", "Content-Length", "Transfer-Encoding", "Expect", "Connection", "Authorization", "X-A"]
) | st.text(TOKEN_CHARS, min_size=1, max_size=12)
FIELD_VALUES = st.sampled_from(
    ["0", "5", "5, 5", "1,2", "-1", "+5", "chunked", "gzip, chunked", "100-continue", ""]
) | (st.binary(max_size=30).map(lambda b: b.decode("latin-1")))
HEADS = st.builds(
    lambda method, target, version, fields, eol: (
        eol.join(
            [
                f"{method} {target} {version}".encode(),
                *(f"{n}: {v}".encode("latin-1") for n, v in fields),
            ]
        )
        + eol
        + eol
    ),
    st.sampled_from(sorted(KNOWN_METHODS)) | st.text(TOKEN_CHARS, min_size=1, max_size=8),
    st.sampled_from(["/healthz", "/v1/chat/completions", "*", "http://h/x", "x"]) | st.text(max_size=20),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "http/1.1"]),
    st.lists(st.tuples(FIELD_NAMES, FIELD_VALUES), max_size=6),
    st.sampled_from([b"\r\n", b"\n"]),
)


# --- oracles -----------------------------------------------------------------------------
def assert_error(err: HttpError, statuses: range | frozenset[int] = range(400, 500)) -> None:
    """A refusal: the right status class and one line of OpenAI-shaped JSON naming the param."""
    assert err.status in statuses, (err.status, err.message)
    line = json.dumps(err.body(), ensure_ascii=False)
    assert "\n" not in line
    body = json.loads(line)["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["param"], str) and body["param"]


def chat_decision(raw: bytes) -> ChatRequest | HttpError:
    try:
        request = parse_chat_request(raw)
    except HttpError as err:
        assert_error(err)
        return err
    assert request.model == MODEL_ID
    request.text.encode("utf-8")  # the detector and the response can use it
    return request


def last_user_text(body: Any) -> str:
    """Independent oracle: the text the service must classify in an accepted body."""
    user = [m for m in body["messages"] if m["role"] == "user"][-1]
    content = user["content"]
    if isinstance(content, str):
        return content
    return " ".join(p["text"] for p in content if p["type"] == "text")


HEAD_STATUSES = frozenset({400, 411, 414, 417, 431, 505})


def head_decision(raw: bytes) -> tuple[Head, Framing] | HttpError | None:
    """What the server decides from these bytes at the start of a connection (None: waits)."""
    buf = bytearray(raw)
    skip_leading_empty_lines(buf)
    try:
        end = head_end(buf)
        if end is None:
            return None
        head = parse_head(bytes(buf[:end]))
        return head, framing(head)
    except HttpError as err:
        assert_error(err, HEAD_STATUSES)
        return err


def assert_head(head: Head, frame: Framing) -> None:
    assert head.version in ("HTTP/1.0", "HTTP/1.1")
    assert head.method and " " not in head.method
    assert head.path.startswith("/") or head.path == "*"
    assert frame.content_length is None or frame.content_length >= 0
    if head.version == "HTTP/1.1":
        assert len(head.get_all("Host")) == 1
    for name, value in head.fields:
        assert name and ":" not in name
        assert not set(value) & {"\r", "\n", "\0"}
        assert value == value.strip(" \t")


# --- properties: the chat body -----------------------------------------------------------
@FUZZ
@given(st.binary(max_size=2048))
def test_chat_parser_on_arbitrary_bytes(raw: bytes) -> None:
    chat_decision(raw)


@FUZZ
@given(JSON)
def test_chat_parser_on_arbitrary_json(value: Any) -> None:
    chat_decision(json.dumps(value).encode())


@FUZZ
@given(NEAR_VALID)
def test_chat_parser_on_near_valid_bodies(body: dict[str, Any]) -> None:
    decision = chat_decision(json.dumps(body).encode())
    if isinstance(decision, ChatRequest):
        assert decision.text == last_user_text(body)


@FUZZ
@given(VALID_MESSAGES, st.sampled_from([{}, {"model": MODEL_ID}, {"temperature": 0.5, "max_tokens": 16}]))
def test_valid_bodies_are_accepted(messages: list[dict[str, str]], extra: dict[str, Any]) -> None:
    body = {**extra, "messages": messages}
    decision = chat_decision(json.dumps(body, ensure_ascii=False).encode())
    assert isinstance(decision, ChatRequest), decision
    assert decision.text == last_user_text(body)


@FUZZ
@given(st.integers(1, 5000), st.sampled_from(["[", '{"a":', '[{"a":']))
def test_any_nesting_depth_is_a_decision(depth: int, opener: str) -> None:
    closer = "".join({"[": "]", "{": "}"}[c] for c in opener if c in "[{")[::-1]
    chat_decision((opener * depth + "1" + closer * depth).encode())


# --- properties: the request head --------------------------------------------------------
@FUZZ
@given(st.binary(max_size=2048))
def test_head_parser_on_arbitrary_bytes(raw: bytes) -> None:
    decision = head_decision(raw)
    if isinstance(decision, tuple):
        assert_head(*decision)
    with contextlib.suppress(HttpError):  # the parser alone, on unterminated input too
        parse_head(raw)


@FUZZ
@given(HEADS)
def test_head_parser_on_near_valid_heads(raw: bytes) -> None:
    decision = head_decision(raw)
    assert decision is not None  # the head is complete and small: always a decision
    if isinstance(decision, tuple):
        assert_head(*decision)


@FUZZ
@given(st.lists(st.text(st.characters(codec="latin-1"), max_size=12), min_size=1, max_size=3))
def test_content_length_values(values: list[str]) -> None:
    members = [m.strip(" \t") for v in values for m in v.split(",")]
    valid = all(m and m.isascii() and m.isdigit() for m in members) and len({int(m) for m in members}) == 1
    try:
        length = content_length(values)
    except HttpError as err:
        assert_error(err, frozenset({400}))
        assert err.param == "Content-Length"
        assert not valid, values
    else:
        assert valid, values
        assert length == min(int(members[0]), 10**18)


# --- properties: the detector and the live server ----------------------------------------
@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    out = tmp_path_factory.mktemp("fuzz-model")
    export_model(out)
    return load_identifier(str(out))


@pytest.fixture(scope="module")
def detector(model: LoadedModel) -> MoroccanDetector:
    return MoroccanDetector(model.identifier)


@FUZZ
@given(text=VALID_TEXT | st.text(st.characters(codec="utf-8"), max_size=2000))
def test_detector_answers_any_text(detector: MoroccanDetector, text: str) -> None:
    d = detector.detect(text)
    assert d.language in (*DEFAULT_LANGUAGES, "und")
    json.dumps(d.scores, allow_nan=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: LoadedModel) -> Iterator[Running]:
    it = _serve(tmp_path_factory.mktemp("fuzz"), lambda _d: model, read_timeout_seconds=1.0)
    running = next(it)
    assert running.app.ready.wait(10)
    yield running
    next(it, None)


AUTH = b"Authorization: Bearer " + KEY.encode() + b"\r\n"


@FUZZ_LIVE
@given(
    st.one_of(
        st.binary(max_size=1024),
        HEADS,
        HEADS.map(lambda h: h.replace(b"\n", b"\n" + AUTH, 1)),
        st.binary(max_size=512).map(
            lambda b: (
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\n"
                + AUTH
                + b"Content-Length: %d\r\n\r\n" % len(b)
                + b
            )
        ),
    )
)
def test_server_answers_arbitrary_bytes(
    server: Running, capsys: pytest.CaptureFixture[str], raw: bytes
) -> None:
    """Arbitrary bytes, then the client stops sending: one answer (or none), never a hang."""
    raw += b"\r\n\r\n"
    decision = head_decision(raw)
    is_head = False  # a response to HEAD has no body, errors included, once the head parsed
    with contextlib.suppress(HttpError):
        buf = bytearray(raw)
        skip_leading_empty_lines(buf)
        end = head_end(buf)
        is_head = end is not None and parse_head(bytes(buf[:end])).method == "HEAD"
    with connect(server.port) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        reply = read_reply(sock, timeout=5, no_body=is_head)
    if isinstance(decision, HttpError):  # the server says what the parser says
        assert reply is not None and reply.status == decision.status
    if reply is not None and reply.status >= 400 and not is_head:
        error = json.loads(reply.body)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert reply.status < 500 or reply.status in (501, 503, 505)
    rid = uuid.uuid4().hex
    assert healthz(server.port, rid) == 200
    deadline, out = time.monotonic() + 5, ""
    while rid not in out and time.monotonic() < deadline:  # the exchange's log line came before
        captured = capsys.readouterr()
        assert captured.err == ""
        out += captured.out
        time.sleep(0.005)
    assert rid in out
    for line in out.splitlines():
        record = json.loads(line)
        assert record["event"] in ("request", "client_disconnected"), record
        assert KEY not in line
