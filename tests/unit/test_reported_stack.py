"""The update record behind ``tizi up``'s outputs and summary (components/ops/reported_stack.py).

The events are the JSON the engine streams (``pulumi up --event-log``), parsed by the
Automation API's own ``EngineEvent.from_json``.  The engine tier checks the record against the
CLI's answers on a real update (tests/engine/test_local_stack.py).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pulumi import automation as auto

from components.ops.reported_stack import ReportedStack, UpdateRecord

pytestmark = pytest.mark.unit

STACK_URN = "urn:pulumi:local::tizi::pulumi:pulumi:Stack::tizi-local"


def outputs_event(type_: str, urn: str, outputs: dict[str, Any], sequence: int = 5) -> auto.EngineEvent:
    state = {"type": type_, "urn": urn, "outputs": outputs, "custom": False}
    metadata = {"op": "same", "urn": urn, "type": type_, "provider": "", "old": state, "new": state}
    return auto.EngineEvent.from_json(
        {"sequence": sequence, "timestamp": 1, "resOutputsEvent": {"metadata": metadata}}
    )


def summary_event(changes: dict[str, int]) -> auto.EngineEvent:
    summary = {"maybeCorrupt": False, "durationSeconds": 5, "resourceChanges": changes, "PolicyPacks": {}}
    return auto.EngineEvent.from_json({"sequence": 9, "timestamp": 2, "summaryEvent": summary})


STACK_OUTPUTS = {
    "endpoints": {"edge": "http://127.0.0.1:8080"},
    "region": "ma-benguerir",
    "token": "[secret]",
}


def test_the_stack_outputs_and_the_summary_are_what_the_events_said():
    record = UpdateRecord()
    record(outputs_event("pulumi:pulumi:Stack", STACK_URN, STACK_OUTPUTS))
    record(summary_event({"same": 3, "update": 1}))
    outputs = record.output_map()
    assert outputs is not None
    assert {name: value.value for name, value in outputs.items()} == STACK_OUTPUTS
    assert {name for name, value in outputs.items() if value.secret} == {"token"}, (
        "a masked output is marked secret"
    )
    summary = record.summary()
    assert summary is not None
    assert (summary.kind, summary.result, summary.resource_changes) == (
        "update",
        "succeeded",
        {"same": 3, "update": 1},
    )
    assert summary.end_time is not None and summary.start_time <= summary.end_time


def test_outputs_of_other_resources_are_not_the_stacks():
    record = UpdateRecord()
    record(outputs_event("pulumi:pulumi:Stack", STACK_URN, STACK_OUTPUTS, sequence=3))
    record(
        outputs_event(
            "docker:index/container:Container", STACK_URN + "$docker:Container::edge", {"name": "edge"}
        )
    )
    record(summary_event({"same": 2}))
    outputs = record.output_map()
    assert outputs is not None and set(outputs) == set(STACK_OUTPUTS)


def test_nothing_is_answered_before_the_summary_arrived():
    """Events come on another thread: without the summary, the record may be missing some."""
    record = UpdateRecord()
    record(outputs_event("pulumi:pulumi:Stack", STACK_URN, STACK_OUTPUTS))
    assert (record.output_map(), record.summary()) == (None, None)
    only_summary = UpdateRecord()
    only_summary(summary_event({"same": 1}))
    assert only_summary.output_map() is None, "no stack outputs recorded: the CLI answers"
    assert only_summary.summary() is not None


def test_every_event_is_handed_on_in_order():
    seen: list[int] = []
    record = UpdateRecord(forward=lambda event: seen.append(event.sequence))
    record(outputs_event("pulumi:pulumi:Stack", STACK_URN, {}, sequence=4))
    record(summary_event({}))
    assert seen == [4, 9]


def test_outside_up_the_cli_answers():
    """``outputs()`` and ``info()`` of a stack not updating are the Automation API's own."""
    asked: list[str] = []
    workspace = SimpleNamespace(
        stack_outputs=lambda name: asked.append(name) or {"from": auto.OutputValue("cli", False)}
    )
    stack = ReportedStack.__new__(ReportedStack)
    stack.__dict__.update({"name": "local", "workspace": workspace})
    assert stack.outputs()["from"].value == "cli"
    assert asked == ["local"]


def test_of_keeps_the_stacks_name_and_workspace_without_selecting_again():
    workspace = SimpleNamespace(name="workspace")
    original = auto.Stack.__new__(auto.Stack)
    original.__dict__.update({"name": "dev", "workspace": workspace, "_mode": "select"})
    reported = ReportedStack.of(original)
    assert isinstance(reported, auto.Stack)
    assert (reported.name, reported.workspace) == ("dev", workspace)
