"""How the service container is configured on a Docker edge host, as plain data.

One pure function, `plan_edge_container`, decides every setting; the Pulumi edge component
(pulumi-docker 4.0.0 `Container`) and the edge tests (docker CLI) both render this plan, so
what the tests prove is what `pulumi up` deploys. No Pulumi import here: the plan is
testable without an engine.

Choices, and why:
- user 10001:10001 and a read-only root filesystem, /tmp as a small tmpfs: the image is
  built for it, and a compromised process cannot persist anything.
- API keys reach the container as FILES, never environment variables (env ends up in
  `docker inspect`, crash dumps and child processes), in a named volume the service mounts
  read-only. The image creates that directory 0700 owned by 10001; Docker copies the
  directory's owner and mode into a new, empty named volume, so other uids cannot list or
  read the keys.
- Who writes the key files: pulumi-docker's `uploads` pack each file under its full path and
  copy the tar to `/` of the container, which Docker refuses when the root filesystem is
  read-only, even for a path inside a volume. So the files are uploaded into a *key writer*:
  a container of the same image with a writable root, the key volume mounted, no network,
  no capabilities, never started (`start: false`, `must_run: false`). It only gives the
  upload a place to land; `docker inspect` of it shows no key (uploads are not config).
- The secrets volume outlives a container: a key removed from the stack would stay valid in
  an old volume. `secrets_volume` should therefore change whenever the key set changes (the
  component derives it from a hash of the keys); `docker_run_args` and the tests use a fresh
  volume each time.
- CPU: pulumi-docker 4.0.0 has no `--cpus` (NanoCPUs), only cpu shares and a cpuset, so the
  plan expresses a CPU limit as both: a cpuset of the first ceil(cpus) cores (hard) and
  1024*cpus shares (relative weight under contention).
- restart "always", json-file logs with rotation, a healthcheck on /readyz run by the image's
  own python (no curl in the image), capabilities dropped, no-new-privileges.
- Host networking, the service listening on the site port itself with SO_REUSEPORT: a new
  container (new image, rotated keys) binds the same port while the old one still serves,
  becomes healthy, and only then is the old one stopped and drained. One box, one port,
  no request lost during a roll (with net.ipv4.tcp_migrate_req=1 even the connections
  queued on the old listener move over). Published ports (docker-proxy) cannot overlap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.spec.labels import COMPONENT_LABEL
from components.spec.runtime import MODEL_DIR, MODEL_IMAGE_DIR
from components.spec.secrets import looks_like_secret

SERVICE_UID = 10001
SECRETS_DIR = "/run/secrets/tizi"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Healthcheck:
    """Docker healthcheck; `test` is in Docker's list form (["CMD-SHELL", command])."""

    test: tuple[str, ...]
    # Docker 20.10 runs the first probe only after one interval, and a deployment waits for
    # "healthy": 5 s keeps `pulumi up` quick while a probe (one python start) stays cheap.
    interval_s: int = 5
    timeout_s: int = 3
    retries: int = 3
    start_period_s: int = 10


@dataclass(frozen=True)
class EdgeContainerPlan:
    """Every setting of the edge container. Render with docker_run_args() or pulumi_args()."""

    name: str
    image: str
    port: int
    host_port: int
    host_ip: str
    network_mode: str
    user: str
    read_only: bool
    tmpfs: Mapping[str, str]
    secrets_volume: str
    secrets_dir: str
    model_volume: str
    model_cache_dir: str
    #: the image carrying the weights (``oci:`` model sources); empty: the server image's own
    model_image: str
    secret_files: Mapping[str, str]  # secret name -> file path in the container
    env: Mapping[str, str]
    healthcheck: Healthcheck
    restart: str
    log_driver: str
    log_opts: Mapping[str, str]
    memory_mb: int
    cpu_shares: int
    cpuset: str
    stop_timeout_s: int
    #: Kubernetes' meaning, as the spec has it: ``command`` replaces the image's entrypoint,
    #: ``args`` its CMD (Docker calls them entrypoint and command)
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ("ALL",)
    security_opts: tuple[str, ...] = ("no-new-privileges",)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def model_loader_name(self) -> str:
        """The never-started container whose creation fills the model volume from the model image."""
        return f"{self.model_volume}-loader"

    def model_loader_run_args(self) -> list[str]:
        """Arguments for `docker create` of the model loader, image (the model image) last.

        Mounting an empty named volume where an image has files makes Docker copy them in
        when the container is created: the weights arrive without any process running.
        """
        args = ["--name", self.model_loader_name, "--user", self.user, "--network", "none"]
        args += ["--mount", f"type=volume,source={self.model_volume},target={MODEL_IMAGE_DIR}"]
        for cap in self.cap_drop:
            args += ["--cap-drop", cap]
        for k, v in {**self.labels, COMPONENT_LABEL: "model-loader"}.items():
            args += ["--label", f"{k}={v}"]
        return [*args, "--entrypoint", "true", self.model_image]

    def model_loader_pulumi_args(self) -> dict[str, Any]:
        """The model loader as pulumi-docker 4.0.0 `Container` arguments (never started)."""
        return {
            "name": self.model_loader_name,
            "image": self.model_image,
            "user": self.user,
            "network_mode": "none",
            "entrypoints": ["true"],
            "volumes": [{"volume_name": self.model_volume, "container_path": MODEL_IMAGE_DIR}],
            "capabilities": {"drops": list(self.cap_drop)},
            "security_opts": list(self.security_opts),
            "labels": [
                {"label": k, "value": v} for k, v in {**self.labels, COMPONENT_LABEL: "model-loader"}.items()
            ],
            "start": False,
            "must_run": False,
        }

    @property
    def key_writer_name(self) -> str:
        """The never-started container that receives the key uploads for this key volume."""
        return f"{self.secrets_volume}-writer"

    def key_writer_run_args(self) -> list[str]:
        """Arguments for `docker create` of the key writer (never started), image last."""
        args = ["--name", self.key_writer_name, "--user", self.user, "--network", "none"]
        args += ["--mount", f"type=volume,source={self.secrets_volume},target={self.secrets_dir}"]
        for cap in self.cap_drop:
            args += ["--cap-drop", cap]
        for opt in self.security_opts:
            args += ["--security-opt", opt]
        for k, v in {**self.labels, COMPONENT_LABEL: "key-writer"}.items():
            args += ["--label", f"{k}={v}"]
        return [*args, "--entrypoint", "true", self.image]

    def key_writer_pulumi_args(self) -> dict[str, Any]:
        """The key writer as pulumi-docker 4.0.0 `Container` arguments (`uploads` added by the caller)."""
        return {
            "name": self.key_writer_name,
            "image": self.image,
            "user": self.user,
            "read_only": False,
            "network_mode": "none",
            "entrypoints": ["true"],
            "volumes": [{"volume_name": self.secrets_volume, "container_path": self.secrets_dir}],
            "capabilities": {"drops": list(self.cap_drop)},
            "security_opts": list(self.security_opts),
            "labels": [
                {"label": k, "value": v} for k, v in {**self.labels, COMPONENT_LABEL: "key-writer"}.items()
            ],
            "start": False,
            "must_run": False,
        }

    def docker_run_args(self) -> list[str]:
        """Arguments for `docker create` (or `docker run`), image last.

        The key files are not in here: they are uploaded into the key writer
        (`key_writer_run_args`), whose volume this container mounts read-only.
        """
        args = ["--name", self.name, "--user", self.user]
        if self.read_only:
            args.append("--read-only")
        for path, opts in self.tmpfs.items():
            args += ["--tmpfs", f"{path}:{opts}"]
        args += ["--mount", f"type=volume,source={self.secrets_volume},target={self.secrets_dir},readonly"]
        model_mount = f"type=volume,source={self.model_volume},target={self.model_cache_dir}"
        args += ["--mount", f"{model_mount},readonly" if self.model_image else model_mount]
        for k, v in self.env.items():
            args += ["--env", f"{k}={v}"]
        hc = self.healthcheck
        if hc.test[0] != "CMD-SHELL":
            raise ValueError("the docker CLI can only express CMD-SHELL healthchecks")
        args += [
            "--health-cmd", hc.test[1],
            "--health-interval", f"{hc.interval_s}s",
            "--health-timeout", f"{hc.timeout_s}s",
            "--health-retries", str(hc.retries),
            "--health-start-period", f"{hc.start_period_s}s",
            "--restart", self.restart,
            "--log-driver", self.log_driver,
        ]  # fmt: skip
        for k, v in self.log_opts.items():
            args += ["--log-opt", f"{k}={v}"]
        args += [
            "--memory", f"{self.memory_mb}m",
            "--memory-swap", f"{self.memory_mb}m",
            "--cpu-shares", str(self.cpu_shares),
            "--cpuset-cpus", self.cpuset,
            "--stop-timeout", str(self.stop_timeout_s),
            "--stop-signal", "SIGTERM",
        ]  # fmt: skip
        for cap in self.cap_drop:
            args += ["--cap-drop", cap]
        for opt in self.security_opts:
            args += ["--security-opt", opt]
        for k, v in self.labels.items():
            args += ["--label", f"{k}={v}"]
        if self.command:
            args += ["--entrypoint", self.command[0]]
        args += ["--network", self.network_mode, self.image]
        return [*args, *self.command[1:], *self.args]

    def pulumi_args(self) -> dict[str, Any]:
        """Plain values named as pulumi-docker 4.0.0 `Container` arguments.

        No `uploads`: the key files are written through the key writer (see the module notes).
        """
        hc = self.healthcheck
        return {
            "name": self.name,
            "image": self.image,
            "user": self.user,
            "read_only": self.read_only,
            "tmpfs": dict(self.tmpfs),
            "volumes": [
                {"volume_name": self.secrets_volume, "container_path": self.secrets_dir, "read_only": True},
                {"volume_name": self.model_volume, "container_path": self.model_cache_dir,
                 "read_only": bool(self.model_image)},
            ],
            "envs": [f"{k}={v}" for k, v in self.env.items()],
            "healthcheck": {
                "tests": list(hc.test),
                "interval": go_duration(hc.interval_s),
                "timeout": go_duration(hc.timeout_s),
                "retries": hc.retries,
                "start_period": go_duration(hc.start_period_s),
            },
            "restart": self.restart,
            "log_driver": self.log_driver,
            "log_opts": dict(self.log_opts),
            "memory": self.memory_mb,
            "memory_swap": self.memory_mb,
            "cpu_shares": self.cpu_shares,
            "cpu_set": self.cpuset,
            "stop_timeout": self.stop_timeout_s,
            "stop_signal": "SIGTERM",
            "destroy_grace_seconds": self.stop_timeout_s,
            "capabilities": {"drops": list(self.cap_drop)},
            "security_opts": list(self.security_opts),
            "labels": [{"label": k, "value": v} for k, v in self.labels.items()],
            "network_mode": self.network_mode,
            "must_run": True,
            **({"entrypoints": list(self.command)} if self.command else {}),
            **({"command": list(self.args)} if self.args else {}),
        }  # fmt: skip


def go_duration(seconds: int) -> str:
    """Seconds as Go's time.Duration prints them ("66s" is "1m6s"): the provider reads the
    healthcheck back in that form, so any other spelling shows a diff on every up."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _health_command(port: int, path: str) -> str:
    return f"python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}{path}', timeout=2)\""


def plan_edge_container(
    name: str,
    image: str,
    port: int = 8080,
    host_port: int = 8080,
    memory_mb: int = 256,
    cpus: float = 1.0,
    env: Mapping[str, str] | None = None,
    secret_names: Sequence[str] = ("api-key",),
    health_paths: Mapping[str, str] | None = None,
    *,
    expose: bool = False,
    secrets_volume: str | None = None,
    drain_seconds: int = 20,
    labels: Mapping[str, str] | None = None,
    startup_seconds: int = 10,
    model_image: str = "",
    network: str = "",
    command: Sequence[str] = (),
    args: Sequence[str] = (),
) -> EdgeContainerPlan:
    """Plan the edge container.

    `secret_names` become files `<SECRETS_DIR>/<name>` (one API key each). `health_paths`
    uses the stack spec's keys (`readiness`, `liveness`, `startup`); Docker has a single
    healthcheck, which probes readiness so `docker ps` shows "healthy" only when requests
    are served. `expose=False` publishes on 127.0.0.1 only (a local reverse proxy or ssh
    tunnel in front); True binds 0.0.0.0 for sites whose LAN clients call the box directly.

    With ``network`` (the site's private Docker network, behind the gateway) the payload
    listens on ``port`` inside its own network namespace and publishes nothing: only the
    gateway reaches it, by container name. Without it, the payload stands alone on the host
    network (the edge tier's container tests).
    """
    if not NAME.fullmatch(name):
        raise ValueError(f"container name {name!r} must match {NAME.pattern}")
    if not image:
        raise ValueError("image is required")
    for p in (port, host_port):
        if not 1 <= p <= 65535:
            raise ValueError(f"port {p} out of range")
    if memory_mb < 64:
        raise ValueError("memory_mb below 64 MB cannot hold the model")
    if cpus <= 0:
        raise ValueError("cpus must be positive")
    if not secret_names:
        raise ValueError("at least one API key secret is required: the service refuses all")
    if len(set(secret_names)) != len(secret_names):
        raise ValueError("duplicate secret names")
    for s in secret_names:
        if not NAME.fullmatch(s) or s.startswith("."):
            raise ValueError(f"secret name {s!r} is not a safe file name")
    user_env = dict(env or {})
    secret_env_names = {s.upper().replace("-", "_").replace(".", "_") for s in secret_names}
    for k in user_env:
        if k.upper() in secret_env_names or looks_like_secret(k):
            raise ValueError(f"env {k!r} looks like a secret: secrets go in as files only")
    paths = dict(health_paths or {})
    ready_path = paths.get("readiness", "/readyz")
    if not ready_path.startswith("/"):
        raise ValueError(f"health path {ready_path!r} must start with /")
    listen_port = port if network else host_port
    service_env = {
        **user_env,
        # host networking: the service itself listens on the site's port and address;
        # behind the gateway: on its container port, in its own network namespace
        "PORT": str(listen_port),
        "TIZI_HOST": "0.0.0.0" if expose or network else "127.0.0.1",
        "TIZI_API_KEYS_DIR": SECRETS_DIR,
        "TIZI_MODEL_DIR": MODEL_DIR,
        "TIZI_DRAIN_SECONDS": str(drain_seconds),
    }
    n_cpus = max(1, math.ceil(cpus))
    return EdgeContainerPlan(
        name=name,
        image=image,
        port=port,
        host_port=host_port,
        host_ip="0.0.0.0" if expose else "127.0.0.1",
        network_mode=network or "host",
        user=f"{SERVICE_UID}:{SERVICE_UID}",
        read_only=True,
        tmpfs={"/tmp": "rw,noexec,nosuid,nodev,size=16m"},
        secrets_volume=secrets_volume or f"{name}-secrets",
        secrets_dir=SECRETS_DIR,
        model_volume=f"{name}-models",
        model_cache_dir=MODEL_DIR,
        model_image=model_image,
        secret_files={s: f"{SECRETS_DIR}/{s}" for s in secret_names},
        env=service_env,
        # failures while the model loads do not count (the runtime's load budget)
        healthcheck=Healthcheck(
            test=("CMD-SHELL", _health_command(listen_port, ready_path)), start_period_s=startup_seconds
        ),
        restart="always",
        log_driver="json-file",
        log_opts={"max-size": "10m", "max-file": "3"},
        memory_mb=memory_mb,
        cpu_shares=max(2, round(1024 * cpus)),
        cpuset="0" if n_cpus == 1 else f"0-{n_cpus - 1}",
        stop_timeout_s=drain_seconds + 5,
        command=tuple(command),
        args=tuple(args),
        labels={COMPONENT_LABEL: "edge", **dict(labels or {})},
    )
