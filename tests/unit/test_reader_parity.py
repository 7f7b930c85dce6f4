"""One stack reader: ``tizi check`` and the program see the same settings and the same problems.

Every committed stack file, and broken variants of them, go through both entry points:
the offline file check (``sources.stack_file`` → ``validate_stack``) and the Pulumi
program under mocks, fed the config map the engine would pass for the file.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
import yaml

from components.cli.check import check_file
from components.sources.pulumi_config import read_stack_config
from components.sources.stack_file import read_stack_file

from .pulumi_harness import Evaluation, RecordingMocks, evaluate, stack_config
from .settings import API_KEYS

REPO = Path(__file__).resolve().parents[2]
STACK_FILES = sorted((REPO / "stacks").glob("Pulumi.*.yaml"))


def _program_input(path: Path):
    """The StackInput the program's own reader builds from the engine's config for ``path``."""
    config, secret_keys = stack_config(path, API_KEYS)
    pulumi.runtime.set_mocks(RecordingMocks(Evaluation()), project="tizi", stack="parity", preview=False)
    pulumi.runtime.set_all_config(config, secret_keys)
    return read_stack_config().input


def _program_problems(path: Path) -> list[str]:
    """The problem lines the program stops with at preview, or none when it deploys."""
    config, secret_keys = stack_config(path, API_KEYS)
    try:
        evaluate(config, secret_keys, stack="parity")
    except Exception as error:  # the program raises pulumi.RunError; mocks may wrap it
        text = str(error)
        assert "invalid stack setting" in text, text
        return [line.removeprefix("  - ") for line in text.splitlines() if line.startswith("  - ")]
    return []


def _variant(tmp_path: Path, source: str, change: dict) -> Path:
    document = yaml.safe_load((REPO / "stacks" / f"Pulumi.{source}.yaml").read_text())
    for key, value in change.items():
        if value is None:
            document["config"].pop(key, None)
        else:
            document["config"][key] = value
    path = tmp_path / f"Pulumi.{source}-variant.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


#: broken variants: (source stack, config changes); None removes a key
VARIANTS = {
    "sensitive-abroad": ("health-prod", {"tizi:region": "eu-paris"}),
    "unknown-key": ("local", {"tizi:replicas": 3}),
    "bare-key-typo": ("local", {"regoin": "ma-benguerir"}),
    "negative-min": ("kind", {"tizi:scaling": {"min": -1, "max": 3}}),
    "plaintext-keys": ("local", {"tizi:apiKeys": "k1-aaaaaaaaaaaaaaaaaaaaaaaa"}),
    "missing-keys": ("local", {"tizi:apiKeys": None}),
    "secret-setting": ("local", {"tizi:region": {"secure": "v1:c2FsdHNhbHQ=:Y2lwaGVydGV4dGNpcGhlcg=="}}),
    "number-as-ministry": ("local", {"tizi:ministry": 123}),
    "quoted-bool": ("local", {"tizi:environment": "true"}),
    "edge-scale-to-zero": ("local", {"tizi:scaling": {"min": 0, "max": 2}}),
}


@pytest.mark.parametrize("path", STACK_FILES, ids=[p.name for p in STACK_FILES])
def test_both_readers_see_the_same_settings(path: Path) -> None:
    from_file = read_stack_file(path)
    from_program = _program_input(path)
    assert from_file == from_program
    assert from_file.settings["targets"], "a stack without targets proves nothing"


@pytest.mark.parametrize("path", STACK_FILES, ids=[p.name for p in STACK_FILES])
def test_committed_stacks_pass_both(path: Path) -> None:
    assert check_file(path) == []
    assert _program_problems(path) == []


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_broken_stack_fails_both_with_the_same_lines(tmp_path: Path, name: str) -> None:
    path = _variant(tmp_path, *VARIANTS[name])
    from_check = check_file(path)
    assert from_check, f"{name} should be refused"
    assert from_check == _program_problems(path)
    assert read_stack_file(path) == _program_input(path)
