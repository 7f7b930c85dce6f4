"""Engine settings: state backend and passphrase, the same for ``tizi up`` and ``tizi env``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from components.cli import main
from components.ops import engine_env
from components.ops.engine_env import EXAMPLE_PASSPHRASE, passphrase_env

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(engine_env, "CACHE", tmp_path / "cache")
    return tmp_path


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    for name, text in files.items():
        (project / "stacks" / f"Pulumi.{name}.yaml").write_text(text)
    return project


@pytest.mark.parametrize("stack", sorted(engine_env.EXAMPLE_SALTS))
def test_committed_examples_get_the_example_passphrase(clean_env: Path, stack: str) -> None:
    assert passphrase_env(stack, REPO) == {"PULUMI_CONFIG_PASSPHRASE": EXAMPLE_PASSPHRASE}


def test_a_new_stack_sharing_an_example_name_gets_the_machine_passphrase(clean_env: Path) -> None:
    project = _project(clean_env, {"local": "config:\n  tizi:ministry: x\nencryptionsalt: v1:other:v1:x:y\n"})
    chosen = passphrase_env("local", project)
    assert "PULUMI_CONFIG_PASSPHRASE" not in chosen
    machine = Path(chosen["PULUMI_CONFIG_PASSPHRASE_FILE"])
    assert machine.stat().st_mode & 0o077 == 0, "the machine passphrase is readable by its owner only"
    assert EXAMPLE_PASSPHRASE not in machine.read_text()


def test_a_copied_example_without_salt_is_not_an_example(clean_env: Path) -> None:
    text = (REPO / "stacks" / "Pulumi.local.yaml").read_text().split("encryptionsalt")[0]
    project = _project(clean_env, {"local": text})
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" in passphrase_env("local", project)


@pytest.mark.parametrize("name", ["PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"])
def test_the_users_passphrase_always_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "users-own")
    assert passphrase_env("local", REPO) == {name: "users-own"}


def test_tizi_env_prints_what_tizi_up_uses(clean_env: Path) -> None:
    result = CliRunner().invoke(main, ["env", "--stack", "kind"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "export PULUMI_CONFIG_PASSPHRASE=tizi-example-passphrase" in lines
    assert f"export PULUMI_BACKEND_URL=file://{clean_env / 'cache' / 'state'}" in lines
    assert "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true" in lines


def test_tizi_env_output_is_valid_shell(clean_env: Path) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    result = CliRunner().invoke(main, ["env", "--stack", "health-prod"])

    shown = subprocess.run(
        [bash, "-c", result.output + '\nprintf %s "$PULUMI_CONFIG_PASSPHRASE"'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shown.stdout == EXAMPLE_PASSPHRASE


@pytest.mark.parametrize(
    ("stack", "tools"),
    [("local", "pulumi docker"), ("kind", "pulumi kubernetes helm"),
     ("health-prod", "pulumi kubernetes helm docker"), ("tourism-dev", "pulumi kubernetes helm")],
)  # fmt: skip
def test_tizi_needs_lists_only_what_the_stack_targets_use(stack: str, tools: str) -> None:
    result = CliRunner().invoke(main, ["needs", "--stack", stack])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == tools
