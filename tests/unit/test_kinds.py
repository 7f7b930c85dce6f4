"""The kinds table: every target kind has one profile, and every reader asks it."""

from __future__ import annotations

import importlib
import inspect

import pytest

from components.rules.catalogue import TargetKind
from components.targets.kinds import KINDS, kinds_with

from .settings import with_value
from .test_spec_validation import ENCRYPTED, validate_settings


def test_every_kind_has_exactly_one_profile() -> None:
    assert set(KINDS) == set(TargetKind)
    assert all(profile.kind is kind for kind, profile in KINDS.items())


@pytest.mark.parametrize("kind", list(TargetKind), ids=lambda k: k.value)
def test_profile_names_a_component_module_with_deploy(kind: TargetKind) -> None:
    module = importlib.import_module(KINDS[kind].component)
    parameters = list(inspect.signature(module.deploy).parameters)
    assert parameters == ["placement", "spec", "api_keys", "key_count"]


@pytest.mark.parametrize("kind", list(TargetKind), ids=lambda k: k.value)
def test_profile_keys_start_with_kind_and_name(kind: TargetKind) -> None:
    assert KINDS[kind].keys[:2] == ("kind", "name")
    if KINDS[kind].region_key:
        assert KINDS[kind].region_key in KINDS[kind].keys


def test_capabilities_come_from_the_table() -> None:
    assert set(kinds_with("scale_to_zero")) == {TargetKind.KNATIVE, TargetKind.KOYEB}
    assert TargetKind.EDGE not in kinds_with("gpu")
    assert set(kinds_with("chart")) == {TargetKind.KUBERNETES, TargetKind.KNATIVE}


def test_region_setting_names_the_key_a_refusal_cites() -> None:
    assert KINDS[TargetKind.KUBERNETES].region_setting(0) == "region"
    assert KINDS[TargetKind.EDGE].region_setting(2) == "targets[2].site"
    assert KINDS[TargetKind.KOYEB].region_setting(1) == "targets[1].region"


def test_a_key_of_another_kind_is_refused_with_the_kinds_own_keys() -> None:
    settings = with_value("targets[1].context", "kind-tizi")  # targets[1] is an edge site
    with pytest.raises(Exception) as raised:
        validate_settings(settings, ENCRYPTED)
    line = next(str(p) for p in raised.value.problems if p.key == "targets[1].context")
    assert "allowed keys: " + ", ".join(KINDS[TargetKind.EDGE].keys) in line
