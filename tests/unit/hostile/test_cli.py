"""Hostile use of the command line: every error path is short lines and a meaningful exit code.

Exit codes: 1 for refused input or a failing world (file system, engine, missing program),
2 for usage errors.  Nothing is written where a command refused to write.
"""

from __future__ import annotations

import errno
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from components.ops.recovery import Orphan, remove_orphans

from .conftest import REPO, assert_clean_output

NEW = ["stack", "new", "--env", "prod", "--data-class", "sensitive", "--region", "ma-benguerir",
       "--target", "kubernetes"]  # fmt: skip


def new_stack(run: Callable[..., Any], stacks_dir: Path, ministry: str, *extra: str) -> Any:
    return run(*NEW, "--ministry", ministry, "--stacks-dir", str(stacks_dir), *extra)


@pytest.mark.parametrize(
    ("ministry", "expected"),
    [
        ("x" * 300, "tizi:ministry"),
        ("health\nconfig:\n  evil: 1", "tizi:ministry"),
        ("\x1b[31mhealth", "tizi:ministry"),
        ("../../etc", "tizi:ministry"),
        ("Health", "tizi:ministry"),
        ("-rf", "tizi:ministry"),
    ],
    ids=["too-long", "newline-injection", "ansi", "path-traversal", "uppercase", "leading-dash"],
)
def test_stack_new_refuses_bad_names_before_touching_the_disk(
    tmp_path: Path, run_tizi: Callable[..., Any], ministry: str, expected: str
) -> None:
    stacks = tmp_path / "stacks"
    result = new_stack(run_tizi, stacks, ministry)
    assert result.returncode == 1
    assert expected in result.stderr
    assert_clean_output(result.stdout + result.stderr, None)
    assert not stacks.exists(), "nothing is written for a refused stack"


def test_stack_new_into_a_read_only_folder_is_one_line(
    tmp_path: Path, run_tizi: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = importlib.import_module("components.cli.stack")  # the module, not the click group

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(
            errno.EROFS, "Read-only file system", str(tmp_path / "stacks" / "Pulumi.justice-prod.yaml")
        )

    monkeypatch.setattr(stack, "open", read_only, raising=False)
    result = new_stack(run_tizi, tmp_path / "stacks", "justice")
    assert result.returncode == 1
    assert "Read-only file system" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert_clean_output(result.stdout + result.stderr, None)


def test_stack_new_with_a_folder_name_too_long_is_one_line(
    tmp_path: Path, run_tizi: Callable[..., Any]
) -> None:
    result = new_stack(run_tizi, tmp_path / ("d" * 300), "justice")
    assert result.returncode == 1
    assert "File name too long" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert_clean_output(result.stdout + result.stderr, None)


def test_stack_new_where_the_folder_is_a_file_is_one_line(
    tmp_path: Path, run_tizi: Callable[..., Any]
) -> None:
    blocker = tmp_path / "stacks"
    blocker.write_text("not a folder")
    result = new_stack(run_tizi, blocker, "justice")
    assert result.returncode == 2 and "is a file" in result.stderr  # click's own usage error
    assert_clean_output(result.stdout + result.stderr, None)
    assert blocker.read_text() == "not a folder"


def test_stack_new_never_overwrites(tmp_path: Path, run_tizi: Callable[..., Any]) -> None:
    stacks = tmp_path / "stacks"
    assert new_stack(run_tizi, stacks, "justice").returncode == 0
    written = (stacks / "Pulumi.justice-prod.yaml").read_text()
    again = new_stack(run_tizi, stacks, "justice", "--region", "ma-casablanca-nplusone")
    assert again.returncode == 1 and "never overwrites" in again.stderr
    assert (stacks / "Pulumi.justice-prod.yaml").read_text() == written


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a/b", "", ".", "..", "x" * 101, "\x1b[2J", "local;id", "-rf", "a b"],
    ids=["traversal", "slash", "empty", "dot", "dotdot", "too-long", "ansi", "semicolon", "dash-x", "space"],
)
@pytest.mark.parametrize("command", ["env", "needs", "preview", "up", "destroy", "key"])
def test_bad_stack_names_are_usage_errors(run_tizi: Callable[..., Any], command: str, name: str) -> None:
    result = run_tizi(command, f"--stack={name}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is not a stack name" in result.stderr
    assert_clean_output(result.stdout + result.stderr, None)


def test_needs_for_a_stack_without_a_file_is_one_line(run_tizi: Callable[..., Any]) -> None:
    result = run_tizi("needs", "--stack", "no-such-stack")
    assert result.returncode == 1 and "cannot read stack file" in result.stderr
    assert_clean_output(result.stdout + result.stderr, None)


def test_values_of_a_stack_without_a_cluster_target_is_one_line(run_tizi: Callable[..., Any]) -> None:
    result = run_tizi("values", str(REPO / "stacks" / "Pulumi.local.yaml"))
    assert result.returncode == 1 and "no kubernetes or knative target" in result.stderr
    assert_clean_output(result.stdout + result.stderr, None)


def test_values_of_a_hostile_file_is_clean(tmp_path: Path, run_tizi: Callable[..., Any]) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_bytes(b"config:\n  tizi:ministry: \x1b[31m" + b"a" * 5000 + b"\n")
    result = run_tizi("values", str(path))
    assert result.returncode == 1
    assert_clean_output(result.stdout + result.stderr, "a" * 100)


class _FailingStack:
    """What ``select_stack`` returns when the engine fails: every operation raises."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return fail


ENGINE_OUTPUT = (
    "Previewing update (local):\n"
    "error: program failed:\n    2 invalid stack setting(s):\n"
    '  - tizi:region: "eu-paris" is invalid: refused by RES-SENSITIVE\n'
    "  - tizi:scaling.min: -1 is invalid: must be an integer >= 0\n"
    '    Traceback (most recent call last):\n      File "x.py", line 1\n'
)


def _result(stdout: str, stderr: str) -> Any:
    return auto._cmd.CommandResult(stdout=stdout, stderr=stderr, code=255)


@pytest.mark.parametrize("command", ["preview", "up", "destroy"])
@pytest.mark.parametrize(
    "error",
    [
        auto.CommandError(_result(ENGINE_OUTPUT, "")),
        auto.errors.ConcurrentUpdateError(_result("", "error: [409] Conflict: another update is running")),
        auto.errors.StackNotFoundError(_result("", "error: no stack named 'x' found")),
    ],
    ids=["program-error", "concurrent-update", "no-stack"],
)  # fmt: skip
def test_engine_errors_are_short_lines(
    run_tizi: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, command: str, error: Exception
) -> None:
    for module in ("preview", "up", "destroy"):
        commands = importlib.import_module(f"components.cli.{module}")
        monkeypatch.setattr(commands, "selected_stack", lambda *a, **k: _FailingStack(error))
    result = run_tizi(command, "--stack", "local")
    assert result.returncode == 1
    assert "error:" in result.stderr
    assert_clean_output(result.stdout + result.stderr, None)
    if "invalid stack setting" in str(error):
        assert "tizi:region" in result.stderr and "tizi:scaling.min" in result.stderr


def test_a_missing_pulumi_cli_is_one_line(
    run_tizi: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_cli(*args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "pulumi")

    monkeypatch.setattr(importlib.import_module("components.cli.up"), "selected_stack", no_cli)
    result = run_tizi("up", "--stack", "local")
    assert result.returncode == 1 and "No such file or directory: pulumi" in result.stderr
    assert_clean_output(result.stdout + result.stderr, None)


def test_orphan_cleanup_without_a_docker_cli_warns_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    removed = remove_orphans([Orphan("unix:///var/run/docker.sock", "tizi-x-1234")])
    assert removed == []
    err = capsys.readouterr().err
    assert "docker CLI is not installed" in err and len(err.strip().splitlines()) == 1


def test_check_of_many_hostile_files_reports_each(tmp_path: Path, run_tizi: Callable[..., Any]) -> None:
    paths = []
    for index, content in enumerate([b"\xff\xfe", b"config: [", b"config:\n  tizi:x: 1\n"]):
        path = tmp_path / f"Pulumi.h{index}.yaml"
        path.write_bytes(content)
        paths.append(str(path))
    result = run_tizi("check", *paths)
    assert result.returncode == 1
    assert result.stdout.count("FAIL ") == 3
    assert_clean_output(result.stdout + result.stderr, None)
    assert sorted(os.listdir(tmp_path)) == sorted(Path(p).name for p in paths)
