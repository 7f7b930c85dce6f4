"""The policy pack through the real engine: tizi's own stack passes, a fork that bypasses it is stopped."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pytest
from pulumi import automation as auto

from components.ops.engine_env import engine_settings
from tests.conftest import REPO


@pytest.fixture(scope="module")
def pack(engine_tools) -> str:
    """The pack as an executable analyzer: needs no Python language host."""
    return str(REPO / "policies" / "analyzer")


def test_the_local_stack_passes_the_pack(local_project, pack):
    result = local_project.stack("local").preview(policy_packs=[pack])
    assert result.change_summary


def rogue_fork() -> None:
    """A fork that skips tizi's components: root, privileged, sensitive data labelled for Paris."""
    provider = docker.Provider("engine", host="unix:///var/run/docker.sock")
    docker.Container(
        "rogue",
        name="tizi-rogue-fork",
        image="tizi/inference-service:0.1.0",
        user="0:0",
        privileged=True,
        labels=[
            {"label": "tizi.ma/region", "value": "eu-paris"},
            {"label": "tizi.ma/data-class", "value": "sensitive"},
        ],
        opts=pulumi.ResourceOptions(provider=provider),
    )


def test_a_fork_that_bypasses_the_components_is_stopped(pack, tmp_path):
    settings = engine_settings("rogue", state_dir=tmp_path / "state")
    workspace = auto.LocalWorkspaceOptions(
        work_dir=str(tmp_path),
        env_vars=settings.env(),
        secrets_provider="passphrase",
        project_settings=auto.ProjectSettings(name="tizi-fork", runtime="python"),
    )
    stack = auto.create_or_select_stack(
        stack_name="rogue", project_name="tizi-fork", program=rogue_fork, opts=workspace
    )
    try:
        lines: list[str] = []
        with pytest.raises(auto.errors.CommandError):
            stack.preview(policy_packs=[pack], on_output=lines.append)
        message = "".join(lines)
        assert "tizi-residency" in message and "region eu-paris refused for data class 'sensitive'" in message
        assert "tizi-no-root-or-privileged" in message and "privileged containers are forbidden" in message
    finally:
        stack.workspace.remove_stack("rogue", force=True)


def test_the_pack_imports_the_components_rules():
    text = (REPO / "policies" / "checks.py").read_text()
    assert "from components.rules.residency import" in text and "RULES = " not in text
