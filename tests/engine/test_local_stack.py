"""`pulumi up` of the local stack with the real engine on the real default Docker engine."""

from __future__ import annotations

import json

from components.ops.engine import up_or_clean
from tests.engine_support import http_status, raw_state, wait_for

from .conftest import ENGINE_PORT, IMAGE, containers, docker, volumes

URL = f"http://127.0.0.1:{ENGINE_PORT}"
LABEL = "tizi.ma/ministry=enginetest"


def test_preview_plans_the_edge_resources(local_project):
    preview = local_project.stack("local").preview()
    assert preview.change_summary.get("create", 0) >= 5  # stack, provider, component, 2 volumes, container


def test_up_serves_through_the_exported_url_with_each_key(local_project):
    result = local_project.stack("local").up()
    assert result.outputs["endpoints"].value == {"edge-local": URL}
    keys = local_project.api_keys("local")
    assert len(keys) == 2
    assert wait_for(lambda: http_status(f"{URL}/readyz") == 200, timeout=30)
    assert http_status(f"{URL}/v1/models") == 401
    for key in keys:
        assert http_status(f"{URL}/v1/models", key) == 200


def test_container_is_labelled_hardened_and_holds_no_key(local_project):
    [container] = containers(LABEL)
    labels = container["Config"]["Labels"]
    assert labels["tizi.ma/region"] == "ma-edge-local" and labels["tizi.ma/data-class"] == "public"
    assert container["Config"]["User"] == "10001:10001"
    assert container["HostConfig"]["ReadonlyRootfs"] is True
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "always"
    inspected = json.dumps(container)
    assert not [k for k in local_project.api_keys("local") if k in inspected]


def test_keys_went_through_a_writer_that_never_ran(local_project):
    [writer] = containers(LABEL, component="key-writer")
    assert writer["State"]["Status"] == "created"
    assert writer["HostConfig"]["NetworkMode"] == "none"
    inspected = json.dumps(writer)
    assert not [k for k in local_project.api_keys("local") if k in inspected]
    [container] = containers(LABEL)
    keys_mount = next(m for m in container["Mounts"] if m["Destination"] == "/run/secrets/tizi")
    assert keys_mount["Name"] == writer["Mounts"][0]["Name"] and keys_mount["RW"] is False


def test_container_runs_the_image_by_id(local_project):
    [container] = containers(LABEL)
    image_id = docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
    assert container["Config"]["Image"] == image_id == container["Image"]


def test_second_up_changes_nothing_and_reports_what_the_cli_does_without_a_key(local_project):
    """`tizi up` answers from the engine's events (components/ops/reported_stack.py): the same
    outputs and changes as the three CLI runs it saves, and no key anywhere in the result."""
    stack = local_project.stack("local")
    result = up_or_clean(stack, on_output=lambda _: None)  # as `tizi up` runs it
    assert set(result.summary.resource_changes) == {"same"}, result.summary.resource_changes
    assert result.summary.version is None, "answered by `stack history` (a CLI run), not by the events"
    cli_summary = stack.info(show_secrets=False)
    assert cli_summary is not None
    assert (result.summary.result, result.summary.resource_changes) == (
        cli_summary.result,
        cli_summary.resource_changes,
    )
    outputs = {name: value.value for name, value in result.outputs.items()}
    assert outputs == {name: value.value for name, value in stack.outputs().items()}
    assert outputs["endpoints"] == {"edge-local": URL}
    cli_config = {name: value.value for name, value in cli_summary.config.items()}
    assert "tizi:apiKeys" in cli_config, "the CLI's summary lists the stack's config"
    reported = json.dumps([vars(result.summary), outputs, result.stdout, cli_config], default=str)
    assert [k[:6] + "…" for k in local_project.api_keys("local") if k in reported] == []


def test_refresh_after_the_container_was_removed_by_hand_then_up_restores_it(local_project):
    stack = local_project.stack("local")
    [container] = containers(LABEL)
    docker("rm", "-f", container["Id"])
    refreshed = stack.refresh()
    assert refreshed.summary.resource_changes.get("delete", 0) == 1, refreshed.summary.resource_changes
    result = stack.up()
    assert result.summary.resource_changes.get("create", 0) == 1, result.summary.resource_changes
    key = local_project.api_keys("local")[0]
    assert wait_for(lambda: http_status(f"{URL}/v1/models", key) == 200, timeout=30)
    assert set(stack.up().summary.resource_changes) == {"same"}


def test_no_plaintext_key_in_stack_file_state_or_output(local_project):
    stack = local_project.stack("local")
    lines: list[str] = []
    stack.preview(on_output=lines.append)
    keys = local_project.api_keys("local")
    texts = {
        "stack file": (local_project.work_dir / "stacks" / "Pulumi.local.yaml").read_text(),
        "state": raw_state(local_project.state_dir, "local"),
        "preview output": "".join(lines),
        "outputs": json.dumps({k: v.value for k, v in stack.outputs().items()}),
    }
    leaks = {where: [k[:6] + "…" for k in keys if k in text] for where, text in texts.items()}
    assert leaks == {where: [] for where in texts}
    assert '"ciphertext"' in texts["state"], "the keys are in the state, encrypted"


def test_destroy_leaves_no_container_volume_or_network(local_project):
    stack = local_project.stack("local")
    networks_before = set(docker("network", "ls", "-q").stdout.split())
    stack.destroy()
    assert containers(LABEL, component=None) == []
    assert volumes("tizi-enginetest-") == []
    assert set(docker("network", "ls", "-q").stdout.split()) <= networks_before
    assert http_status(f"{URL}/healthz") == 0
