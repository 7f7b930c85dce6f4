"""Converging after a killed update: stale locks and orphaned containers are found precisely."""

from __future__ import annotations

import json
import os
import socket
import subprocess

from components.ops.engine import clear_stale_locks
from components.ops.recovery import Orphan, pending_orphans

PROVIDER_URN = "urn:pulumi:local::tizi::pulumi:providers:docker::edge-local-engine"


def deployment(name_value, operation_type="creating", resource_type="docker:index/container:Container"):
    return {
        "resources": [{"urn": PROVIDER_URN, "inputs": {"host": "ssh://tizi-edge"}}],
        "pending_operations": [{"type": operation_type, "resource": {
            "type": resource_type, "inputs": {"name": name_value}, "provider": f"{PROVIDER_URN}::abc-123"}}],
    }  # fmt: skip


def test_a_pending_container_create_is_an_orphan_on_its_provider_host():
    assert pending_orphans(deployment("tizi-x-1")) == [Orphan("ssh://tizi-edge", "tizi-x-1")]


def test_a_pending_network_create_is_an_orphan_removed_after_the_containers():
    both = deployment("tizi-x-net", resource_type="docker:index/network:Network")
    both["pending_operations"] += deployment("tizi-x-3")["pending_operations"]
    assert pending_orphans(both) == [
        Orphan("ssh://tizi-edge", "tizi-x-3"),
        Orphan("ssh://tizi-edge", "tizi-x-net", "docker:index/network:Network"),
    ]


def test_secret_names_from_a_decrypted_export_are_read():
    secret = {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
        "plaintext": '"tizi-x-2"',
    }
    assert pending_orphans(deployment(secret)) == [Orphan("ssh://tizi-edge", "tizi-x-2")]


def test_other_pending_operations_are_left_to_pulumi():
    assert pending_orphans(deployment("v", resource_type="docker:index/volume:Volume")) == []
    assert pending_orphans(deployment("c", operation_type="updating")) == []
    assert pending_orphans({"resources": []}) == []


def write_lock(folder, pid, hostname):
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / f"{pid}.json"
    lock.write_text(json.dumps({"pid": pid, "username": "root", "hostname": hostname}))
    return lock


def test_only_locks_of_dead_processes_on_this_host_are_cleared(tmp_path):
    folder = tmp_path / ".pulumi" / "locks" / "organization" / "tizi" / "local"
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = write_lock(folder, finished.pid, socket.gethostname())
    alive = write_lock(folder, os.getpid(), socket.gethostname())
    elsewhere = write_lock(folder, finished.pid + 100000, "another-host")
    assert clear_stale_locks(f"file://{tmp_path}", "tizi", "local") == [dead]
    assert not dead.exists() and alive.exists() and elsewhere.exists()
    assert clear_stale_locks("https://api.pulumi.com", "tizi", "local") == []


def test_containers_recorded_with_init_errors_are_partial_creates():
    from components.ops.recovery import partial_creates

    state = {"resources": [
        {"urn": PROVIDER_URN, "inputs": {"host": "ssh://tizi-edge"}},
        {"type": "docker:index/container:Container", "initErrors": ["container never became healthy"],
         "outputs": {"name": "tizi-x-9"}, "provider": f"{PROVIDER_URN}::abc-123"},
        {"type": "docker:index/container:Container", "outputs": {"name": "tizi-x-ok"},
         "provider": f"{PROVIDER_URN}::abc-123"},
        {"type": "docker:index/volume:Volume", "initErrors": ["x"], "outputs": {"name": "v"}},
    ]}  # fmt: skip
    assert partial_creates(state) == [Orphan("ssh://tizi-edge", "tizi-x-9")]
