"""A stack that breaks residency fails at preview with the rule's message and creates nothing."""

from __future__ import annotations

import pytest
from pulumi import automation as auto

from tests.engine_support import edit_stack, project_copy


@pytest.fixture
def abroad(engine_tools, tmp_path):
    work_dir = project_copy(tmp_path / "project", ["health-prod"])
    edit_stack(work_dir, "health-prod", lambda c: c.update({"tizi:region": "eu-paris"}))
    from components.ops.engine import select_stack

    stack = select_stack("health-prod", work_dir, state_dir=tmp_path / "state")
    yield stack
    stack.workspace.remove_stack("health-prod", force=True)


def test_preview_fails_citing_the_rule(abroad):
    with pytest.raises(auto.errors.CommandError) as raised:
        abroad.preview()
    message = str(raised.value)
    assert 'tizi:region: "eu-paris" is invalid' in message
    assert "RES-SENSITIVE" in message and "Law 09-08" in message


def test_up_fails_and_leaves_zero_resources(abroad):
    with pytest.raises(auto.errors.CommandError):
        abroad.up()
    resources = abroad.export_stack().deployment.get("resources") or []
    assert [r["type"] for r in resources if r["type"] != "pulumi:pulumi:Stack"] == []
