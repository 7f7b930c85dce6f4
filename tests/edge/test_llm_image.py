"""tizi/llm-server on the real default Docker engine, with a real model (SmolLM2-135M Q4_1).

The container runs as an edge host would run it: user 10001, read-only root with /tmp as a
tmpfs, all capabilities dropped, the model bind-mounted read-only from the cache folder that
scripts/build-llm-image.sh fills, its sha256 passed in TIZI_MODEL_SHA256, and the API keys
as files in a named volume (written through a never-started key writer container, as the
edge plan does). Nothing is built here: without the image or the model the tests skip
(outside CI) or fail (CI=true) and say to run scripts/build-llm-image.sh.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import testinfra

from tests.conftest import require
from tests.edge.conftest import docker, free_port, http_request, upload_tar

IMAGE = "tizi/llm-server:0.1.0"
CACHE = Path(os.environ.get("TIZI_CACHE") or Path.home() / ".cache" / "tizi")
MODEL_DIR = CACHE / "models"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
KEYS_DIR = "/run/secrets/tizi"
READY_TIMEOUT_S = 60
PROMPT_MARKER = "zebra-umbrella-" + secrets.token_hex(4)  # must never reach the log


def model_sha256() -> str:
    return (MODEL_DIR / f"{MODEL_FILE}.sha256").read_text().split()[0]


@dataclass
class LlmContainer:
    name: str
    port: int
    volume: str
    keys: dict[str, str]
    ready_s: float = 0.0

    @property
    def writer(self) -> str:
        return f"{self.volume}-writer"

    def request(self, method: str, path: str, key: str | None = None, body: Any = None,
                timeout: float = 120) -> tuple[int, bytes]:  # fmt: skip
        return http_request(self.port, method, path, key, body, timeout=timeout)

    def write_keys(self, files: dict[str, str]) -> None:
        tar = upload_tar({f"{KEYS_DIR}/{name}": value for name, value in files.items()})
        docker("default", "cp", "-", f"{self.writer}:/", data=tar)
        self.keys.update(files)

    def delete_key(self, name: str) -> None:
        docker("default", "run", "--rm", "--user", "10001:10001", "--network", "none",
               "--mount", f"type=volume,source={self.volume},target={KEYS_DIR}",
               "--entrypoint", "rm", IMAGE, f"{KEYS_DIR}/{name}")  # fmt: skip
        del self.keys[name]

    def logs(self) -> str:
        proc = docker("default", "logs", self.name, check=False)
        return proc.stdout.decode() + proc.stderr.decode()

    def remove(self) -> None:
        docker("default", "rm", "-f", "-v", self.name, check=False)
        docker("default", "rm", "-f", self.writer, check=False)
        docker("default", "volume", "rm", "-f", self.volume, check=False)


def start_llm(label: str, sha256: str, keys: dict[str, str]) -> LlmContainer:
    """Key volume and writer, then the server container; not waited for."""
    name = f"tizi-test-llm-{label}-{uuid.uuid4().hex[:6]}"
    c = LlmContainer(name=name, port=free_port(), volume=f"{name}-secrets", keys={})
    try:
        docker("default", "create", "--name", c.writer, "--user", "10001:10001", "--network", "none",
               "--mount", f"type=volume,source={c.volume},target={KEYS_DIR}",
               "--label", "org.tizi.test=edge", "--entrypoint", "true", IMAGE)  # fmt: skip
        c.write_keys(keys)
        docker(
            "default", "run", "-d", "--name", name,
            "--user", "10001:10001", "--read-only",
            "--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=16m",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--memory", "512m", "--memory-swap", "512m",
            "--mount", f"type=bind,source={MODEL_DIR},target=/var/cache/tizi/models,readonly",
            "--mount", f"type=volume,source={c.volume},target={KEYS_DIR},readonly",
            "--env", f"TIZI_MODEL_SHA256={sha256}",
            "--env", f"TIZI_MODEL_NAME={MODEL_NAME}",
            "--env", "TIZI_THREADS=1",
            "--label", "org.tizi.test=edge",
            "--publish", f"127.0.0.1:{c.port}:8080",
            IMAGE,
        )  # fmt: skip
    except BaseException:
        c.remove()
        raise
    return c


def wait_ready(c: LlmContainer, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if c.request("GET", "/readyz", timeout=2)[0] == 200:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{c.name} not ready after {timeout}s: {c.logs()[-3000:]}")


@pytest.fixture(scope="module")
def llm_image(engines: dict[str, str | None]) -> str:
    found = docker("default", "image", "inspect", IMAGE, check=False).returncode == 0
    require(found, f"{IMAGE} is missing: run scripts/build-llm-image.sh (about 20 min the first time)")
    require(
        (MODEL_DIR / MODEL_FILE).is_file() and (MODEL_DIR / f"{MODEL_FILE}.sha256").is_file(),
        f"model {MODEL_DIR / MODEL_FILE} is missing: run scripts/build-llm-image.sh --model",
    )
    return IMAGE


@pytest.fixture(scope="module")
def llm(llm_image: str) -> Iterator[LlmContainer]:
    keys = {"key-a": "tizi-" + secrets.token_hex(16), "key-b": "tizi-" + secrets.token_hex(16)}
    c = start_llm("svc", model_sha256(), keys)
    try:
        c.ready_s = wait_ready(c, READY_TIMEOUT_S)
        yield c
    finally:
        c.remove()


@pytest.fixture
def host(llm: LlmContainer, monkeypatch: pytest.MonkeyPatch) -> testinfra.host.Host:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return testinfra.get_host(f"docker://{llm.name}")


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 24,
        "temperature": 0,
        **extra,
    }


def test_ready_within_60s(llm: LlmContainer) -> None:
    assert llm.ready_s < READY_TIMEOUT_S
    assert llm.request("GET", "/healthz")[0] == 200
    status, body = llm.request("GET", "/readyz")
    assert status == 200 and json.loads(body)["model"] == [MODEL_NAME]


def test_models_with_a_key_lists_the_model(llm: LlmContainer) -> None:
    status, body = llm.request("GET", "/v1/models", llm.keys["key-a"])
    assert status == 200, body
    assert [m["id"] for m in json.loads(body)["data"]] == [MODEL_NAME]
    status, body = llm.request("GET", f"/v1/models/{MODEL_NAME}", llm.keys["key-b"])
    assert status == 200 and json.loads(body)["id"] == MODEL_NAME


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer tizi-wrong", "Bearer ", "Basic dGl6aTp0aXpp"],
    ids=["none", "wrong", "empty", "basic"],
)
def test_without_a_valid_key_401_in_openai_shape(llm: LlmContainer, authorization: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    for method, path, body in (
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", chat_body("hi")),
    ):
        conn = http.client.HTTPConnection("127.0.0.1", llm.port, timeout=10)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
        finally:
            conn.close()
        assert status == 401, (path, raw)
        error = json.loads(raw)["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "invalid_api_key"
        assert error["param"] is None and error["message"]


def test_chat_completion_returns_text(llm: LlmContainer) -> None:
    status, body = llm.request(
        "POST", "/v1/chat/completions", llm.keys["key-a"],
        chat_body(f"What is the capital of France? ({PROMPT_MARKER})"),
    )  # fmt: skip
    assert status == 200, body
    answer = json.loads(body)
    text = answer["choices"][0]["message"]["content"]
    assert isinstance(text, str) and text.strip()
    assert answer["model"] == MODEL_NAME
    assert answer["usage"]["completion_tokens"] > 0


def test_stream_returns_sse_chunks(llm: LlmContainer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", llm.port, timeout=120)
    try:
        conn.request(
            "POST", "/v1/chat/completions",
            body=json.dumps(chat_body(f"Say hello. ({PROMPT_MARKER})", stream=True)),
            headers={"Authorization": f"Bearer {llm.keys['key-a']}", "Content-Type": "application/json"},
        )  # fmt: skip
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("content-type", "").startswith("text/event-stream")
        raw = resp.read().decode()
    finally:
        conn.close()
    events = [line[len("data: ") :] for line in raw.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]", events[-3:]
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) >= 2
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text.strip()


def test_unknown_model_404_in_openai_shape(llm: LlmContainer) -> None:
    body = {**chat_body("hi"), "model": "gpt-4o"}
    status, raw = llm.request("POST", "/v1/chat/completions", llm.keys["key-a"], body)
    assert status == 404
    assert json.loads(raw)["error"]["code"] == "model_not_found"
    status, raw = llm.request("GET", "/v1/models/gpt-4o", llm.keys["key-a"])
    assert status == 404 and json.loads(raw)["error"]["code"] == "model_not_found"


def test_openai_client(llm: LlmContainer) -> None:
    openai = pytest.importorskip("openai", reason="the openai package is not in the test extras")
    base = f"http://127.0.0.1:{llm.port}/v1"
    client = openai.OpenAI(base_url=base, api_key=llm.keys["key-a"], max_retries=0, timeout=120)
    assert [m.id for m in client.models.list()] == [MODEL_NAME]
    answer = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": "Hi"}], max_tokens=16, temperature=0
    )
    assert answer.choices[0].message.content
    stream = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": "Hi"}], max_tokens=16, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base, api_key="tizi-wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])


def test_testinfra_user_read_only_root_and_tools(host: testinfra.host.Host, llm: LlmContainer) -> None:
    assert host.check_output("id -u") == "10001"
    assert host.user().name == "tizi"
    server = [p for p in host.process.filter(comm="python3") if "tizi_llm" in p.args]
    assert server and all(p.euid == 10001 for p in server), [p.args for p in server]
    assert host.socket("tcp://0.0.0.0:8080").is_listening
    # read-only root, writable /tmp tmpfs, read-only model mount
    root = next(line.split() for line in host.file("/proc/mounts").content_string.splitlines()
                if line.split()[1] == "/")  # fmt: skip
    assert "ro" in root[3].split(",")
    result = host.run("touch /should-fail")
    assert result.rc != 0 and "Read-only file system" in result.stderr
    assert host.run("touch /tmp/ok && rm /tmp/ok").rc == 0
    assert host.mount_point("/tmp").filesystem == "tmpfs"
    assert host.run("touch /var/cache/tizi/models/x").rc != 0
    # the final stage carries no CA certificates, no pip, no apt cache
    assert not host.file("/etc/ssl/certs/ca-certificates.crt").exists
    assert host.run("ls /usr/local/share/ca-certificates/*.crt").rc != 0
    assert not host.file("/opt/venv/bin/pip").exists
    assert host.run("ls /var/cache/apt/archives/*.deb").rc != 0
    assert host.package("libgomp1").is_installed
    assert "OMP_WAIT_POLICY=PASSIVE" in host.file("/proc/1/environ").content_string.split("\0")


def test_key_rotation_without_restart(llm: LlmContainer) -> None:
    new_key = "tizi-" + secrets.token_hex(16)
    old_key = llm.keys["key-b"]
    llm.write_keys({"key-c": new_key})
    deadline = time.monotonic() + 10
    while llm.request("GET", "/v1/models", new_key)[0] != 200:
        assert time.monotonic() < deadline, "the new key file was not picked up"
        time.sleep(0.2)
    assert llm.request("GET", "/v1/models", old_key)[0] == 200  # both valid at once
    llm.delete_key("key-b")
    deadline = time.monotonic() + 10
    while llm.request("GET", "/v1/models", old_key)[0] != 401:
        assert time.monotonic() < deadline, "the removed key file still works"
        time.sleep(0.2)
    assert llm.request("GET", "/v1/models", new_key)[0] == 200
    assert llm.request("GET", "/v1/models", llm.keys["key-a"])[0] == 200
    info = json.loads(docker("default", "inspect", llm.name).stdout)[0]
    assert info["RestartCount"] == 0 and info["State"]["Running"]


def test_log_lines_are_json_without_keys_or_prompts(llm: LlmContainer) -> None:
    logs = llm.logs()
    lines = [line for line in logs.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    events = {r["event"] for r in records}
    assert {"starting", "model_loaded", "request"} <= events
    assert PROMPT_MARKER not in logs
    for value in llm.keys.values():
        assert value not in logs
    assert "tizi-wrong" not in logs
    requests = [r for r in records if r["event"] == "request"]
    assert any(r.get("key") == "key-a" and r["status"] == 200 for r in requests)
    assert any(r["status"] == 401 and "key" not in r for r in requests)


def test_wrong_sha256_exits_non_zero_with_one_json_line(llm_image: str) -> None:
    real = model_sha256()
    wrong = ("0" if real[0] != "0" else "1") + real[1:]
    c = start_llm("badsha", wrong, {"key-a": "tizi-" + secrets.token_hex(16)})
    try:
        code = int(docker("default", "wait", c.name, timeout=60).stdout.strip())
        assert code != 0
        lines = [line for line in c.logs().splitlines() if line.strip()]
        assert len(lines) == 1, lines
        record = json.loads(lines[0])
        assert record["event"] == "model_rejected"
        assert record["reason"] == "sha256_mismatch"
        assert record["expected"] == wrong and record["actual"] == real
    finally:
        c.remove()
