"""Envoy's admin interface over its unix socket: what is loaded, and draining."""

from __future__ import annotations

import http.client
import json
import socket


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def request(socket_path: str, method: str, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """One admin request; OSError when Envoy is not (yet) listening."""
    conn = _UnixConnection(socket_path, timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def active_versions(socket_path: str) -> tuple[str, str, int]:
    """(last cluster version, last listener version, resources still warming).

    The versions are the discovery files' ``version_info`` Envoy last accepted; a cluster
    or listener still warming is not serving yet, so callers wait for zero.
    """
    status, body = request(socket_path, "GET", "/config_dump")
    if status != 200:
        return "", "", 1
    cds = lds = ""
    warming = 0
    for config in json.loads(body).get("configs", []):
        kind = config.get("@type", "")
        if kind.endswith("ClustersConfigDump"):
            cds = config.get("version_info", "")
            warming += len(config.get("dynamic_warming_clusters", []))
        elif kind.endswith("ListenersConfigDump"):
            lds = config.get("version_info", "")
            warming += sum(
                1 for listener in config.get("dynamic_listeners", []) if "warming_state" in listener
            )
    return cds, lds, warming
