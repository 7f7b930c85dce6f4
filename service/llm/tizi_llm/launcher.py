"""Start llama-cpp-python's OpenAI-compatible server the tizi way.

Order of events (each a JSON line on stdout):
1. configuration from the environment; an invalid value: one `config_invalid` line, exit 2;
2. the model file `TIZI_MODEL_DIR/TIZI_MODEL_FILE` is opened and hashed; missing, not a
   regular file, or a sha256 other than `TIZI_MODEL_SHA256`: ONE `model_rejected` line, exit
   3, nothing else printed (the expected digest is part of the deployment, not of the image);
3. the listening socket (SO_REUSEPORT, so a new container can bind the port while the old
   one drains) and uvicorn serving the gate: `/healthz` answers at once, `/readyz` 503;
4. the model loads in a background thread through `llama_cpp.server.app.create_app`, from
   the very file descriptor that was hashed (`/proc/self/fd/N`: the file checked is the file
   loaded); then `/readyz` 200 and requests go through. A load failure: `model_load_failed`,
   exit 4. SIGTERM: uvicorn stops accepting and drains for up to TIZI_DRAIN_SECONDS.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import signal
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tizi_llm import __version__
from tizi_llm.jsonlog import log

DEFAULT_MODEL_DIR = "/var/cache/tizi/models"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_KEYS_DIR = "/run/secrets/tizi"
SHA256 = re.compile(r"^[0-9a-f]{64}$")

EXIT_CONFIG, EXIT_MODEL_REJECTED, EXIT_MODEL_LOAD, EXIT_BIND = 2, 3, 4, 5


class ConfigError(ValueError):
    pass


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} outside {low}..{high}")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean")


@dataclass(frozen=True)
class Config:
    model_dir: Path
    model_file: str
    model_sha256: str
    model_name: str
    threads: int
    threads_batch: int
    context_size: int
    host: str
    port: int
    keys_dir: Path
    drain_seconds: int
    max_body_bytes: int
    interrupt_requests: bool
    logprobs: bool
    chat_format: str | None

    @property
    def model_path(self) -> Path:
        return self.model_dir / self.model_file

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        # TIZI_MODEL_CACHE_DIR is what the edge plan (components/targets/edge_plan.py) sets
        model_dir = env.get("TIZI_MODEL_DIR") or env.get("TIZI_MODEL_CACHE_DIR") or DEFAULT_MODEL_DIR
        model_file = env.get("TIZI_MODEL_FILE") or DEFAULT_MODEL_FILE
        if "/" in model_file or model_file in (".", ".."):
            raise ConfigError(f"TIZI_MODEL_FILE={model_file!r} must be a file name inside TIZI_MODEL_DIR")
        name = env.get("TIZI_MODEL_NAME") or model_file.removesuffix(".gguf")
        threads = _int(env, "TIZI_THREADS", 1, 1, 256)
        return cls(
            model_dir=Path(model_dir),
            model_file=model_file,
            model_sha256=env.get("TIZI_MODEL_SHA256", "").strip().lower(),
            model_name=name,
            threads=threads,
            threads_batch=_int(env, "TIZI_THREADS_BATCH", threads, 1, 256),
            context_size=_int(env, "TIZI_CONTEXT_SIZE", 2048, 64, 1 << 20),
            host=env.get("TIZI_HOST") or "0.0.0.0",
            port=_int(env, "PORT", 8080, 1, 65535),
            keys_dir=Path(env.get("TIZI_API_KEYS_DIR") or DEFAULT_KEYS_DIR),
            drain_seconds=_int(env, "TIZI_DRAIN_SECONDS", 20, 0, 3600),
            max_body_bytes=_int(env, "TIZI_MAX_BODY_BYTES", 1 << 20, 1024, 1 << 30),
            # llama_cpp.server's default (True) ends a running stream when another request
            # waits: wrong for a service shared by several clients
            interrupt_requests=_bool(env, "TIZI_INTERRUPT_REQUESTS", False),
            # llama_cpp.server's default logits_all=True keeps n_ctx x n_vocab float32 logits
            # (2048 x 49152 x 4 B = 403 MB for SmolLM2) filled as the context grows; only
            # `logprobs` needs them
            logprobs=_bool(env, "TIZI_LOGPROBS", False),
            chat_format=env.get("TIZI_CHAT_FORMAT") or None,  # None: the GGUF's own template
        )


class ModelRejected(Exception):
    def __init__(self, reason: str, **fields: Any) -> None:
        super().__init__(reason)
        self.reason, self.fields = reason, fields


def open_verified_model(cfg: Config) -> tuple[int, int, float]:
    """Open the model file and check its sha256; (fd, size, seconds) or ModelRejected.

    The descriptor stays open: the server loads the model through it, so the file that was
    checked is the file that is loaded, even if the path is swapped afterwards.
    """
    path = cfg.model_path
    expected = cfg.model_sha256
    if not expected:
        raise ModelRejected("no_expected_sha256", path=str(path), hint="set TIZI_MODEL_SHA256")
    if not SHA256.fullmatch(expected):
        raise ModelRejected("bad_expected_sha256", path=str(path), hint="64 hex digits")
    start = time.monotonic()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ModelRejected("missing", path=str(path), expected=expected) from None
    except OSError as e:
        raise ModelRejected("unreadable", path=str(path), expected=expected, error=e.strerror) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ModelRejected("not_a_file", path=str(path), expected=expected)
        with os.fdopen(os.dup(fd), "rb") as f:
            actual = hashlib.file_digest(f, "sha256").hexdigest()
        os.lseek(fd, 0, os.SEEK_SET)
    except ModelRejected:
        os.close(fd)
        raise
    except OSError as e:
        os.close(fd)
        raise ModelRejected("unreadable", path=str(path), expected=expected, error=e.strerror) from None
    if not hmac.compare_digest(actual, expected):
        os.close(fd)
        raise ModelRejected(
            "sha256_mismatch", path=str(path), expected=expected, actual=actual, bytes=st.st_size
        )
    return fd, st.st_size, time.monotonic() - start


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the listener
    # says TCP; without it a response sent in two parts waited 40 ms for the delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def load_model(cfg: Config, fd: int, gate: Any, server: Any, started: float) -> None:
    """Background thread: build llama_cpp.server's app (loads the model), hand it to the gate."""
    try:
        t0 = time.monotonic()
        import llama_cpp
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings

        server_settings = ServerSettings(
            host=cfg.host, port=cfg.port, api_key=None,  # keys: the gate's job
            interrupt_requests=cfg.interrupt_requests,
        )  # fmt: skip
        model_settings = ModelSettings(
            model=f"/proc/self/fd/{fd}",
            model_alias=cfg.model_name,
            n_ctx=cfg.context_size,
            n_threads=cfg.threads,
            n_threads_batch=cfg.threads_batch,
            use_mmap=True,
            use_mlock=False,  # containers rarely have the memlock limit for it
            logits_all=cfg.logprobs,
            chat_format=cfg.chat_format,
            verbose=False,
        )
        app = create_app(server_settings=server_settings, model_settings=[model_settings])
        gate.set_app(app)
        log(
            "model_loaded",
            model=cfg.model_name,
            llama_cpp_python=llama_cpp.__version__,
            load_ms=round((time.monotonic() - t0) * 1000),
            ready_ms=round((time.monotonic() - started) * 1000),
            n_ctx=cfg.context_size,
            threads=cfg.threads,
            threads_batch=cfg.threads_batch,
        )
    except BaseException as e:
        gate.failed = True
        log(
            "model_load_failed",
            level="error",
            model=cfg.model_name,
            error=type(e).__name__,
            detail=str(e)[:500],
        )
        server.exit_code = EXIT_MODEL_LOAD
        server.should_exit = True


def main() -> int:
    started = time.monotonic()
    # PID 1 in a container ignores SIGTERM without a handler; uvicorn installs its own later
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    # read by libgomp when llama.cpp loads: a spinning OpenMP pool starves a shared small CPU
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        cfg = Config.from_env()
    except ConfigError as e:
        log("config_invalid", level="error", detail=str(e))
        return EXIT_CONFIG
    try:
        fd, size, hash_s = open_verified_model(cfg)
    except ModelRejected as e:
        log("model_rejected", level="error", reason=e.reason, **e.fields)
        return EXIT_MODEL_REJECTED

    # only now the heavier imports (uvicorn, later numpy and llama_cpp): nothing they might
    # print can precede the single model_rejected line
    import uvicorn
    from tizi_service.keys import KeyStore

    from tizi_llm.gate import Gate
    from tizi_llm.jsonlog import configure_logging

    configure_logging()
    log(
        "starting",
        version=__version__,
        model=cfg.model_name,
        model_file=str(cfg.model_path),
        model_bytes=size,
        sha256=cfg.model_sha256,
        hash_ms=round(hash_s * 1000),
        host=cfg.host,
        port=cfg.port,
        threads=cfg.threads,
        n_ctx=cfg.context_size,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
    )
    keys = KeyStore(cfg.keys_dir, on_reload=lambda ids: log("api_keys_loaded", count=len(ids), ids=ids))
    ids = keys.ids()
    if ids:
        log("api_keys_loaded", count=len(ids), ids=ids)
    else:
        log(
            "api_keys_loaded",
            level="warning",
            count=0,
            ids=[],
            detail=f"no key file in {cfg.keys_dir}: every request is refused",
        )
    gate = Gate(keys, [cfg.model_name], max_body_bytes=cfg.max_body_bytes)
    try:
        sock = bind_socket(cfg.host, cfg.port)
    except OSError as e:
        log("bind_failed", level="error", host=cfg.host, port=cfg.port, error=e.strerror)
        return EXIT_BIND

    config = uvicorn.Config(
        gate,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="asyncio",
        http="h11",
        ws="none",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=cfg.drain_seconds,
    )
    server = uvicorn.Server(config)
    server.exit_code = 0  # type: ignore[attr-defined]
    threading.Thread(
        target=load_model, args=(cfg, fd, gate, server, started), name="model-load", daemon=True
    ).start()
    log("listening", host=cfg.host, port=cfg.port)
    signal_exit = None
    try:
        server.run(sockets=[sock])
    except SystemExit as e:
        # uvicorn (>= 0.29) re-raises the SIGTERM/SIGINT it drained on, which reaches the
        # handler installed above: a requested, graceful stop, not a failure
        signal_exit = e.code
    code = int(server.exit_code)  # type: ignore[attr-defined]
    log("stopped", exit_code=code, signal_exit=signal_exit)
    return code
