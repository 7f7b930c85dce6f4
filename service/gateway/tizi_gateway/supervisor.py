"""Runs Envoy and keeps it on the current settings and keys, without a restart.

Every second the supervisor fingerprints its two inputs (the settings file and the key
directory; on the edge both sit behind a ``current`` link the publisher swaps). When they
change it rewrites Envoy's cluster and listener files, each by an atomic move into the
watched directory, in the order that never routes to a missing cluster:

1. clusters = the new ones plus the old ones a route still names; wait until Envoy reports them active;
2. the listener (keys, routes, limits); wait;
3. clusters = new only; wait; then record the revision as applied.

Envoy drains what it replaces (requests in flight on an old cluster or listener finish).
On SIGTERM, the listeners drain gracefully for ``drain_seconds``, then Envoy stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tizi_gateway import admin, envoy
from tizi_gateway.keyfiles import read_keys, signature
from tizi_gateway.settings import GatewaySettings, SettingsError, read_settings
from tizi_gateway.site_tls import ensure_site_certificate


def log(event: str, **fields: Any) -> None:
    """One JSON line on stderr (Envoy's access log has stdout)."""
    print(
        json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}),
        file=sys.stderr,
        flush=True,
    )


@dataclass(frozen=True)
class Inputs:
    """Where the settings and keys are read: fixed paths, or behind the edge's ``current`` link."""

    settings: Path
    keys: Path
    link: Path | None = None

    def fingerprint(self) -> tuple:
        target = os.readlink(self.link) if self.link and self.link.is_symlink() else ""
        try:
            st = self.settings.stat()
            settings_sig: tuple = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            settings_sig = ()
        return (target, settings_sig, signature(self.keys))

    def ready(self) -> bool:
        return self.settings.is_file()


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write next to the target, then rename: Envoy's directory watch sees one move."""
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_text(json.dumps(document, indent=1))
    os.replace(tmp, path)


class Supervisor:
    """Envoy plus the loop that feeds it."""

    def __init__(
        self, inputs: Inputs, paths: envoy.Paths, state_dir: Path, envoy_bin: str, drain_seconds: int
    ) -> None:
        self.inputs = inputs
        self.paths = paths
        self.state_dir = state_dir
        self.envoy_bin = envoy_bin
        self.drain_seconds = drain_seconds
        self.process: subprocess.Popen[bytes] | None = None
        self.generation = 0
        self.settings: GatewaySettings | None = None
        self.routed: list[str] = []
        self.stopping = False
        #: the resources Envoy last accepted, per discovery file
        self.published: dict[str, list[dict[str, Any]]] = {}

    # -- configuration ---------------------------------------------------------------
    def _load(self) -> tuple[GatewaySettings, dict[str, str]]:
        settings = read_settings(self.inputs.settings)
        if settings.tls == "site-ca":
            ensure_site_certificate(
                Path(self.paths.cert_file).parent, settings.tls_names, settings.upstream_host
            )
        return settings, read_keys(self.inputs.keys)

    def _wait_active(self, clusters: str | None, listener: str | None, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                cds, lds, warming = admin.active_versions(self.paths.admin_socket)
            except (OSError, ValueError):
                cds, lds, warming = "", "", 1
            if warming == 0 and clusters in (None, cds) and listener in (None, lds):
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"envoy exited with code {self.process.returncode}")
            time.sleep(0.1)
        raise TimeoutError(
            f"envoy did not load clusters {clusters} / listener {listener} within {timeout:.0f} s"
        )

    def _publish(self, kind: str, version: str, resources: list[dict[str, Any]]) -> None:
        """Write one discovery file and wait until Envoy serves it; unchanged resources are skipped
        (Envoy ignores a file whose resources did not change, version and all)."""
        if self.published.get(kind) == resources:
            return
        path = Path(self.paths.cds_file if kind == "cds" else self.paths.lds_file)
        write_atomically(path, envoy.discovery_file(version, resources))
        self._wait_active(version if kind == "cds" else None, version if kind == "lds" else None)
        self.published[kind] = resources

    def apply(self) -> None:
        """Move Envoy to the current inputs (first start included)."""
        settings, keys = self._load()
        self.generation += 1
        version = f"{settings.revision or 'local'}-{self.generation}"
        new = envoy.clusters(settings, list(keys))
        xds = Path(self.paths.xds_dir)
        if self.process is None:
            xds.mkdir(parents=True, exist_ok=True)
            listeners = [envoy.listener(settings, keys, self.paths)]
            write_atomically(Path(self.paths.cds_file), envoy.discovery_file(version, new))
            write_atomically(Path(self.paths.lds_file), envoy.discovery_file(version, listeners))
            bootstrap = envoy.bootstrap(settings, self.paths)
            write_atomically(Path(self.paths.run_dir) / "bootstrap.json", bootstrap)
            self._start()
            self._wait_active(version, version)
            self.published = {"cds": new, "lds": listeners}
        else:
            if self.settings is not None and settings.metrics_port != self.settings.metrics_port:
                log("restart_needed", reason="metrics_port changed; it takes effect at the next start")
            # keys being removed keep their cluster (on the old upstream) until no route names it
            new_names = {cluster["name"] for cluster in new}
            previous = self.settings or settings
            kept = [c for c in envoy.clusters(previous, self.routed) if c["name"] not in new_names]
            self._publish("cds", f"{version}-a", new + kept)
            self._publish("lds", version, [envoy.listener(settings, keys, self.paths)])
            self._publish("cds", version, new)
        self.settings = settings
        self.routed = list(keys)
        self._record_applied(settings.revision)
        log(
            "applied",
            revision=settings.revision,
            version=version,
            key_ids=sorted(keys),
            upstream=f"{settings.upstream_host}:{settings.upstream_port}",
        )

    def _record_applied(self, revision: str) -> None:
        for directory in (Path(self.paths.run_dir), self.state_dir):
            try:
                directory.mkdir(parents=True, exist_ok=True)
                (directory / ".applied.tmp").write_text(revision)
                os.replace(directory / ".applied.tmp", directory / "applied")
            except OSError:
                pass  # the state volume is optional (Kubernetes has none)

    # -- process ---------------------------------------------------------------------
    def _start(self) -> None:
        command = [
            self.envoy_bin, "-c", f"{self.paths.run_dir}/bootstrap.json",
            "--log-level", os.environ.get("TIZI_GATEWAY_LOG_LEVEL", "warn"),
            "--disable-hot-restart", "--drain-time-s", str(self.drain_seconds),
            "--drain-strategy", "immediate",
            "--concurrency", os.environ.get("TIZI_GATEWAY_WORKERS", "1"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command)
        log("envoy_started", pid=self.process.pid)

    def _drain_and_stop(self, *_: Any) -> None:
        if self.stopping or self.process is None:
            sys.exit(0)
        self.stopping = True
        log("draining", seconds=self.drain_seconds)
        with contextlib.suppress(OSError):
            admin.request(self.paths.admin_socket, "POST", "/drain_listeners?graceful", timeout=2)
        deadline = time.monotonic() + self.drain_seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            time.sleep(0.2)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        sys.exit(0)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._drain_and_stop)
        signal.signal(signal.SIGINT, self._drain_and_stop)
        while not self.inputs.ready():
            log("waiting_for_settings", path=str(self.inputs.settings))
            time.sleep(1)
        seen = self.inputs.fingerprint()
        try:
            self.apply()
        except SettingsError as exc:
            log("settings_refused", error=str(exc))
            return 2
        while True:
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                log("envoy_exited", code=code)
                return code or 1
            now = self.inputs.fingerprint()
            if now != seen and self.inputs.ready():
                seen = now
                try:
                    self.apply()
                except (SettingsError, TimeoutError, OSError) as exc:
                    # keep serving the last good configuration; say why the new one is not live
                    log("update_refused", error=str(exc))
            time.sleep(1)
