"""The HTTP contract, run in-process on 127.0.0.1, port 0, with the real model."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"
sys.path.insert(0, str(SERVICE))

from tizi_service.model import LoadedModel, export_model, load_identifier  # noqa: E402
from tizi_service.server import MODEL_ID, App, Config, drain_and_stop, start  # noqa: E402

KEYS = {"key-a": "tizi-test-key-aaaaaaaaaaaaaaaa", "key-b": "tizi-test-key-bbbbbbbbbbbbbbbb"}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    export_model(out)
    return out


@pytest.fixture(scope="session")
def model(model_dir: Path) -> LoadedModel:
    return load_identifier(str(model_dir))


@dataclass
class Running:
    app: App
    port: int
    keys_dir: Path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = dict(headers or {})
        if key:
            h["Authorization"] = f"Bearer {key}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        conn.close()
        return out

    def chat(self, text: str, key: str = KEYS["key-a"]) -> tuple[int, dict[str, Any]]:
        status, _, body = self.request(
            "POST",
            "/v1/chat/completions",
            {"model": MODEL_ID, "messages": [{"role": "user", "content": text}]},
            key=key,
        )
        return status, json.loads(body)


def _serve(tmp_path: Path, loader: Any, **config: Any) -> Iterator[Running]:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    for name, value in KEYS.items():
        (keys_dir / name).write_text(value + "\n")
    cfg = Config(host="127.0.0.1", port=0, keys_dir=str(keys_dir), keys_recheck_seconds=0, **config)
    app = App(cfg, loader=loader)
    server, thread = start(app)
    try:
        yield Running(app, server.server_port, keys_dir)
    finally:
        app.ready.set()
        drain_and_stop(app, server)
        thread.join(5)


@pytest.fixture
def running(tmp_path: Path, model: LoadedModel) -> Iterator[Running]:
    it = _serve(tmp_path, lambda _d: model, max_body_bytes=4096)
    r = next(it)
    assert r.app.ready.wait(10)
    yield r
    next(it, None)


class SlowIdentifier:
    """A stand-in model whose answers take `delay` seconds: for readiness and draining."""

    nb_classes = ("ar", "fr", "en", "es")

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def set_languages(self, langs: Any = None) -> None:
        pass

    def rank(self, text: str) -> list[tuple[str, float]]:
        time.sleep(self.delay)
        return [("fr", 1.0)]


def test_open_routes_need_no_key(running: Running) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        status, _, _ = running.request("GET", path)
        assert status == 200, path


@pytest.mark.parametrize("path", ["/v1/models", f"/v1/models/{MODEL_ID}", "/nope", "/v1/x"])
def test_everything_else_needs_a_key(running: Running, path: str) -> None:
    status, headers, body = running.request("GET", path)
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert json.loads(body)["error"]["code"] == "invalid_api_key"
    for bad in ("wrong", KEYS["key-a"] + "x", ""):
        assert running.request("GET", path, key=bad)[0] == 401
    assert running.request("GET", path, headers={"Authorization": KEYS["key-a"]})[0] == 401


def test_each_key_works(running: Running) -> None:
    for key in KEYS.values():
        status, _, body = running.request("GET", "/v1/models", key=key)
        assert status == 200
        data = json.loads(body)
        assert data["object"] == "list"
        assert data["data"][0]["id"] == MODEL_ID
        assert "zgh" in data["data"][0]["tizi"]["languages"]
    assert running.request("GET", "/nope", key=KEYS["key-b"])[0] == 404
    assert running.request("GET", "/v1/models/other", key=KEYS["key-b"])[0] == 404


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("salam, bghit njdd la carte dyali", "ary"),
        ("ⴰⵣⵓⵍ ⴼⵍⵍⴰⵡⵏ", "zgh"),
        ("تعلن وزارة الصحة عن فتح باب التسجيل في حملة التلقيح الوطنية.", "ar"),
        ("Bonjour, je voudrais renouveler ma carte nationale.", "fr"),
    ],
)
def test_chat_completion_answers_the_language(running: Running, text: str, language: str) -> None:
    status, data = running.chat(text)
    assert status == 200
    assert data["object"] == "chat.completion"
    assert data["model"] == MODEL_ID
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": language}
    assert choice["finish_reason"] == "stop"
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + 1
    assert data["tizi"]["language"] == language
    assert set(data["tizi"]) >= {"confidence", "method", "scores", "cues", "script"}


def test_chat_uses_last_user_message_and_content_parts(running: Running) -> None:
    status, _, body = running.request(
        "POST",
        "/v1/chat/completions",
        {
            "model": MODEL_ID,
            "messages": [
                {"role": "system", "content": "Where is the nearest health centre?"},
                {"role": "user", "content": "Where is the nearest health centre?"},
                {"role": "assistant", "content": "en"},
                {"role": "user", "content": [{"type": "text", "text": "ⴰⵣⵓⵍ ⴼⵍⵍⴰⵡⵏ"}]},
            ],
        },
        key=KEYS["key-a"],
    )
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == "zgh"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": MODEL_ID, "messages": []}, 400),
        ({"model": MODEL_ID, "messages": [{"role": "system", "content": "x"}]}, 400),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}, 404),
        ({"model": MODEL_ID, "stream": True, "messages": [{"role": "user", "content": "x"}]}, 400),
        (["not", "an", "object"], 400),
    ],
)
def test_chat_rejects_bad_requests(running: Running, body: Any, status: int) -> None:
    got, _, raw = running.request("POST", "/v1/chat/completions", body, key=KEYS["key-a"])
    assert got == status
    assert "message" in json.loads(raw)["error"]


def test_bad_json_and_wrong_method(running: Running) -> None:
    assert running.request("POST", "/v1/chat/completions", raw=b"{no", key=KEYS["key-a"])[0] == 400
    assert running.request("GET", "/v1/chat/completions", key=KEYS["key-a"])[0] == 405


def test_body_size_limit(running: Running) -> None:
    big = {"model": MODEL_ID, "messages": [{"role": "user", "content": "a" * 5000}]}
    status, headers, body = running.request("POST", "/v1/chat/completions", big, key=KEYS["key-a"])
    assert status == 413
    assert headers.get("connection") == "close"
    assert json.loads(body)["error"]["code"] == "request_too_large"
    # Unauthenticated big bodies get 401 first: no work for anonymous clients.
    assert running.request("POST", "/v1/chat/completions", big)[0] == 401


def test_key_rotation_without_restart(running: Running) -> None:
    (running.keys_dir / "key-c").write_text("rotated-in-key-cccccccccccccc")
    assert running.request("GET", "/v1/models", key="rotated-in-key-cccccccccccccc")[0] == 200
    (running.keys_dir / "key-a").unlink()
    assert running.request("GET", "/v1/models", key=KEYS["key-a"])[0] == 401
    assert running.request("GET", "/v1/models", key=KEYS["key-b"])[0] == 200


def test_metrics(running: Running) -> None:
    running.chat("salam, bghit njdd la carte dyali")
    running.request("GET", "/v1/models")
    expected = [
        'tizi_requests_total{route="/v1/chat/completions",method="POST",code="200"} 1',
        'tizi_request_errors_total{route="/v1/models",code="401"} 1',
        'tizi_request_duration_seconds_bucket{route="/v1/chat/completions",le="+Inf"} 1',
        'tizi_detections_total{language="ary",method="darija-cues"} 1',
        "tizi_model_load_seconds ",
        "tizi_model_loaded 1",
    ]
    # a request is counted just after its response is written: poll briefly, not sleep
    deadline = time.monotonic() + 2
    while True:
        status, headers, body = running.request("GET", "/metrics")
        text = body.decode()
        if all(line in text for line in expected) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    assert [line for line in expected if line not in text] == []


def test_logs_are_json_without_keys_or_bodies(running: Running, capsys: pytest.CaptureFixture[str]) -> None:
    secret_text = "ⴰⵣⵓⵍ unique-user-text-1234"
    running.chat(secret_text, key=KEYS["key-b"])
    running.request("GET", "/v1/models", key="a-wrong-key-value")
    # a request is logged just after its response is written: poll briefly, not sleep
    out, deadline = "", time.monotonic() + 2
    while True:
        out += capsys.readouterr().out
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        requests = [r for r in lines if r["event"] == "request"]
        if len(requests) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert any(r["key_id"] == "key-b" and r["status"] == 200 for r in requests)
    for forbidden in (*KEYS.values(), "a-wrong-key-value", "unique-user-text", "ⴰⵣⵓⵍ"):
        assert forbidden not in out


def test_not_ready_until_model_loaded(tmp_path: Path) -> None:
    release = threading.Event()

    def loader(_d: str | None) -> LoadedModel:
        release.wait(10)
        return LoadedModel(SlowIdentifier(0), "stub", "stub", 0.5)  # type: ignore[arg-type]

    it = _serve(tmp_path, loader)
    r = next(it)
    try:
        assert r.request("GET", "/healthz")[0] == 200
        assert r.request("GET", "/readyz")[0] == 503
        assert r.chat("bonjour")[0] == 503
        release.set()
        assert r.app.ready.wait(5)
        assert r.request("GET", "/readyz")[0] == 200
        assert r.chat("bonjour")[1]["choices"][0]["message"]["content"] == "fr"
        assert "tizi_model_load_seconds 0.5" in r.request("GET", "/metrics")[2].decode()
    finally:
        next(it, None)


def test_drain_finishes_in_flight_requests(tmp_path: Path) -> None:
    it = _serve(tmp_path, lambda _d: LoadedModel(SlowIdentifier(1.0), "stub", "stub", 0.0))
    r = next(it)
    server_stop: dict[str, Any] = {}
    try:
        assert r.app.ready.wait(5)
        results: list[int] = []
        t = threading.Thread(target=lambda: results.append(r.chat("bonjour")[0]))
        t.start()
        time.sleep(0.3)  # the request is now inside the slow model
        assert r.app._inflight == 1
        r.app.draining = True
        assert r.request("GET", "/readyz")[0] == 503  # load balancers stop sending
        server_stop["finished"] = r.app.wait_idle(5)
        t.join(5)
        assert results == [200]
        assert server_stop["finished"] is True
    finally:
        next(it, None)


def test_sigterm_exits_zero_after_draining(tmp_path: Path, model_dir: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "k").write_text("sigterm-key")
    env = {
        **os.environ,
        "PORT": "0",
        "TIZI_HOST": "127.0.0.1",
        "TIZI_API_KEYS_DIR": str(keys),
        "TIZI_MODEL_DIR": str(model_dir),
        "PYTHONPATH": str(SERVICE),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tizi_service"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "starting"
        assert first["keys"] == 1
        port = first["port"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        events = [json.loads(line)["event"] for line in proc.stdout.read().splitlines()]
        assert "draining" in events
        assert events[-1] == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_config_from_env() -> None:
    cfg = Config.from_env(
        {
            "PORT": "9000",
            "TIZI_API_KEYS_DIR": "/k",
            "TIZI_LANGUAGES": "ar, fr,zgh",
            "TIZI_MAX_BODY_BYTES": "10",
            "TIZI_READ_TIMEOUT_SECONDS": "2.5",
            "TIZI_IDLE_TIMEOUT_SECONDS": "7",
        }
    )
    assert (cfg.port, cfg.keys_dir, cfg.languages, cfg.max_body_bytes) == (
        9000,
        "/k",
        ("ar", "fr", "zgh"),
        10,
    )
    assert (cfg.read_timeout_seconds, cfg.idle_timeout_seconds) == (2.5, 7.0)
    assert Config.from_env({}).port == 8080
    assert Config.from_env({}).keys_dir == "/run/secrets/tizi"
    assert (Config.from_env({}).read_timeout_seconds, Config.from_env({}).idle_timeout_seconds) == (10, 30)
