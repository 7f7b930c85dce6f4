"""How the edge container is configured, decided once, as data.

The Pulumi edge component (``components.edge``) and the edge tests that run the same
container with the ``docker`` CLI both read this plan, so what the tests prove on a
real engine is what ``pulumi up`` deploys.  No Pulumi import here: it is pure data.

Hardening, and why:
- non-root user 10001 and a read-only root filesystem, writable ``/tmp`` on tmpfs:
  a compromised service cannot persist anything or touch the image;
- no capabilities, ``no-new-privileges``;
- API keys as files in a dedicated volume (Docker only copies files into a read-only
  container through a mounted volume); the image creates that folder 0700 for uid
  10001 and the volume copies it up, so no other user can read a key, and nothing
  about the keys is in the container's environment (``docker inspect`` shows none);
- restart ``always`` plus a healthcheck on ``/readyz``: a clinic box recovers alone;
- json-file logs capped at 3 x 10 MB: a box that runs for months never fills its disk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

SERVICE_USER = "10001:10001"
KEYS_DIR = "/run/secrets/tizi"
MODEL_CACHE_DIR = "/var/cache/tizi/models"
LOG_OPTS = {"max-size": "10m", "max-file": "3"}
TMPFS = {"/tmp": "rw,noexec,nosuid,size=64m"}
STOP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Healthcheck:
    """Docker's healthcheck: the image's Python probes readiness, no curl needed."""

    test: tuple[str, ...]
    interval_s: int = 10
    timeout_s: int = 3
    retries: int = 3
    start_period_s: int = 10


@dataclass(frozen=True)
class Mount:
    """A named volume mounted into the container."""

    volume: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class EdgeContainerPlan:
    """Everything that decides how the edge container runs."""

    name: str
    image: str
    port: int
    host_port: int
    host_ip: str
    memory_mb: int
    cpus: float
    env: Mapping[str, str]
    keys_volume: str
    model_volume: str
    healthcheck: Healthcheck
    command: tuple[str, ...] = ()
    user: str = SERVICE_USER
    read_only: bool = True
    restart: str = "always"
    tmpfs: Mapping[str, str] = field(default_factory=lambda: dict(TMPFS))
    log_opts: Mapping[str, str] = field(default_factory=lambda: dict(LOG_OPTS))
    security_opts: tuple[str, ...] = ("no-new-privileges:true",)
    cap_drop: tuple[str, ...] = ("ALL",)
    stop_timeout_s: int = STOP_TIMEOUT_SECONDS

    @property
    def mounts(self) -> tuple[Mount, ...]:
        return (Mount(self.keys_volume, KEYS_DIR), Mount(self.model_volume, MODEL_CACHE_DIR))

    @property
    def cpu_shares(self) -> int:
        """Relative weight under contention, proportional to the CPUs the spec asks for."""
        return max(2, int(self.cpus * 1024))

    @property
    def cpuset(self) -> str:
        """A hard cap: the container may use only this many cores (rounded up)."""
        cores = max(1, math.ceil(self.cpus))
        return "0" if cores == 1 else f"0-{cores - 1}"

    def key_path(self, file_name: str) -> str:
        return f"{KEYS_DIR}/{file_name}"

    def docker_create_args(self) -> list[str]:
        """``docker create`` arguments equivalent to the Pulumi Container (keys are copied in after)."""
        args = ["create", "--name", self.name, "--user", self.user, "--read-only"]
        args += ["--restart", self.restart, "--stop-timeout", str(self.stop_timeout_s)]
        args += [
            "--memory",
            f"{self.memory_mb}m",
            "--cpu-shares",
            str(self.cpu_shares),
            "--cpuset-cpus",
            self.cpuset,
        ]
        for cap in self.cap_drop:
            args += ["--cap-drop", cap]
        for opt in self.security_opts:
            args += ["--security-opt", opt]
        for path, options in self.tmpfs.items():
            args += ["--tmpfs", f"{path}:{options}"]
        for mount in self.mounts:
            args += ["--mount", f"type=volume,source={mount.volume},target={mount.target}"]
        args += ["--publish", f"{self.host_ip}:{self.host_port}:{self.port}"]
        for key, value in sorted(self.env.items()):
            args += ["--env", f"{key}={value}"]
        hc = self.healthcheck
        args += [
            "--health-cmd",
            hc.test[-1] if hc.test[0] == "CMD-SHELL" else " ".join(hc.test[1:]),
            "--health-interval",
            f"{hc.interval_s}s",
            "--health-timeout",
            f"{hc.timeout_s}s",
            "--health-retries",
            str(hc.retries),
            "--health-start-period",
            f"{hc.start_period_s}s",
        ]
        args += ["--log-driver", "json-file"]
        for key, value in self.log_opts.items():
            args += ["--log-opt", f"{key}={value}"]
        args.append(self.image)
        args += list(self.command)
        return args


def readiness_probe(port: int, path: str) -> tuple[str, ...]:
    """A shell-form probe using the image's Python (the image has no curl or wget)."""
    code = f"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}{path}', timeout=2)"
    return ("CMD-SHELL", f'python3 -c "{code}"')


def plan_edge_container(
    name: str,
    image: str,
    port: int,
    host_port: int,
    memory_mb: int,
    cpus: float,
    env: Mapping[str, str],
    readiness_path: str = "/readyz",
    host_ip: str = "0.0.0.0",
    command: Sequence[str] = (),
) -> EdgeContainerPlan:
    """The plan for one site's container; names derive from ``name`` so sites never collide."""
    service_env = {
        **env,
        "PORT": str(port),
        "TIZI_API_KEYS_DIR": KEYS_DIR,
        "TIZI_MODEL_CACHE_DIR": MODEL_CACHE_DIR,
    }
    return EdgeContainerPlan(
        name=name,
        image=image,
        port=port,
        host_port=host_port,
        host_ip=host_ip,
        memory_mb=memory_mb,
        cpus=cpus,
        env=service_env,
        keys_volume=f"{name}-keys",
        model_volume=f"{name}-models",
        healthcheck=Healthcheck(test=readiness_probe(port, readiness_path)),
        command=tuple(command),
    )
