"""The service container on both engines: testinfra host checks and the HTTP contract."""

from __future__ import annotations

import json

import pytest
import testinfra

from tests.edge.conftest import EdgeService, docker, docker_env, upload_tar


@pytest.fixture
def host(service: EdgeService, monkeypatch: pytest.MonkeyPatch) -> testinfra.host.Host:
    """testinfra over `docker exec`, through DOCKER_HOST=ssh://tizi-edge for the edge engine."""
    for k, v in docker_env(service.engine).items():
        monkeypatch.setenv(k, v)
    if "DOCKER_HOST" not in docker_env(service.engine):
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    return testinfra.get_host(f"docker://{service.plan.name}")


def test_server_process_runs_as_non_root(host: testinfra.host.Host) -> None:
    procs = host.process.filter(comm="python3")
    assert procs, "no python3 process"
    server = [p for p in procs if "tizi_service" in p.args]
    assert server, [p.args for p in procs]
    assert all(p.euid == 10001 and p.user == "tizi" for p in server)
    assert host.check_output("id -u") == "10001"
    assert host.user().name == "tizi"


def test_listening_socket(host: testinfra.host.Host, service: EdgeService) -> None:
    # host networking: the service listens on the site's port and address itself
    assert host.socket(f"tcp://{service.plan.host_ip}:{service.plan.host_port}").is_listening


def test_root_filesystem_is_read_only(host: testinfra.host.Host) -> None:
    for path in ("/should-fail", "/opt/tizi/x", "/run/secrets/tizi/../x"):
        result = host.run(f"touch {path}")
        assert result.rc != 0, path
    assert "Read-only file system" in host.run("touch /should-fail").stderr
    assert host.run("touch /tmp/ok && rm /tmp/ok").rc == 0  # the tmpfs is writable
    assert host.mount_point("/tmp").filesystem == "tmpfs"


def test_secret_files_are_not_readable_by_others(host: testinfra.host.Host, service: EdgeService) -> None:
    d = host.file(service.plan.secrets_dir)
    assert d.is_directory
    assert d.mode == 0o700
    assert d.uid == 10001
    for path in service.plan.secret_files.values():
        assert host.file(path).exists
        assert host.file(path).content_string.strip() in service.keys.values()
        other = docker(service.engine, "exec", "-u", "10002:10002", service.plan.name,
                       "cat", path, check=False)  # fmt: skip
        assert other.returncode != 0
        assert b"Permission denied" in other.stderr
        assert not any(v.encode() in other.stdout for v in service.keys.values())


def test_no_secret_in_docker_inspect(service: EdgeService) -> None:
    raw = docker(service.engine, "inspect", service.plan.name).stdout.decode()
    for value in service.keys.values():
        assert value not in raw
    env = json.loads(raw)[0]["Config"]["Env"]
    assert all("tizi-" not in e.split("=", 1)[1] for e in env)
    assert "TIZI_API_KEYS_DIR=/run/secrets/tizi" in env


def test_container_configured_as_planned(service: EdgeService) -> None:
    info = service.inspect()
    hc, plan = info["HostConfig"], service.plan
    assert info["Config"]["User"] == plan.user
    assert hc["ReadonlyRootfs"] is True
    assert hc["RestartPolicy"]["Name"] == "always"
    assert hc["LogConfig"] == {"Type": "json-file", "Config": dict(plan.log_opts)}
    assert hc["Memory"] == plan.memory_mb * 1024 * 1024
    assert hc["CpusetCpus"] == plan.cpuset
    assert hc["CapDrop"] == ["ALL"]
    assert "/tmp" in hc["Tmpfs"]
    assert hc["NetworkMode"] == "host" and not hc.get("PortBindings")
    env = dict(item.split("=", 1) for item in info["Config"]["Env"])
    assert (env["PORT"], env["TIZI_HOST"]) == (str(plan.host_port), plan.host_ip)
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts[plan.secrets_dir]["Type"] == "volume"
    assert mounts[plan.secrets_dir]["Name"] == plan.secrets_volume
    assert mounts[plan.secrets_dir]["RW"] is False, "the service mounts its keys read-only"
    assert info["Config"]["Healthcheck"]["Test"] == list(plan.healthcheck.test)


def test_http_contract(service: EdgeService) -> None:
    assert service.get("/healthz")[0] == 200
    assert service.get("/readyz")[0] == 200
    assert service.get("/v1/models")[0] == 401
    assert service.get("/v1/models", "not-a-key")[0] == 401
    for key in service.keys.values():
        assert service.get("/v1/models", key)[0] == 200
        status, data = service.chat("salam, bghit njdd la carte dyali", key)
        assert status == 200
        assert data["choices"][0]["message"]["content"] == "ary"
    expected = [
        'tizi_requests_total{route="/v1/models",method="GET",code="401"}',
        'route="/v1/chat/completions",method="POST",code="200"} 2',
        "tizi_model_loaded 1",
    ]
    text = service.metrics_showing(expected)
    assert [line for line in expected if line not in text] == []


def test_logs_are_json_and_hold_no_key(service: EdgeService) -> None:
    service.chat("ⴰⵣⵓⵍ private-user-text", service.keys["key-a"])
    logs = docker(service.engine, "logs", service.plan.name).stdout.decode()
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    assert any(r["event"] == "model_loaded" for r in lines)
    assert any(r.get("key_id") == "key-a" for r in lines)
    for value in (*service.keys.values(), "private-user-text"):
        assert value not in logs


def test_the_key_writer_never_ran_and_holds_no_key_in_its_config(service: EdgeService) -> None:
    raw = docker(service.engine, "inspect", service.plan.key_writer_name).stdout.decode()
    info = json.loads(raw)[0]
    assert info["State"]["Status"] == "created", "the writer only receives uploads; it never runs"
    assert info["HostConfig"]["NetworkMode"] == "none" and info["HostConfig"]["CapDrop"] == ["ALL"]
    assert info["Config"]["User"] == service.plan.user
    for value in service.keys.values():
        assert value not in raw


def test_the_service_cannot_write_its_key_volume(host: testinfra.host.Host, service: EdgeService) -> None:
    result = host.run(f"touch {service.plan.secrets_dir}/planted")
    assert result.rc != 0 and "Read-only file system" in result.stderr


def test_uploads_into_a_read_only_root_are_refused(service: EdgeService) -> None:
    """Why the writer exists: pulumi-docker copies uploads to /, and Docker refuses that on a
    read-only root even when the file's path lies in a mounted volume."""
    copy = docker(
        service.engine, "cp", "-", f"{service.plan.name}:/", check=False,
        data=upload_tar({f"{service.plan.secrets_dir}/extra": "x" * 20}),
    )  # fmt: skip
    assert copy.returncode != 0
    assert "read-only" in copy.stderr.decode().lower()
