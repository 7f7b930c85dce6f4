"""Running ``tizi`` on hostile input and checking that what it prints is safe.

In-process (click's runner) by default, so the suite stays fast; in a subprocess with a
timeout where a regression could hang the reader (FIFOs, devices) or where the test needs
another user.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from components.cli import main

REPO = Path(__file__).resolve().parents[3]
#: longest line a problem report may print (key, value prefix, what is allowed)
MAX_LINE = 600
_RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def assert_clean_output(text: str, never: str | None) -> None:
    """No traceback, no raw control or bidi characters, short lines, and never ``never``."""
    assert "Traceback" not in text, text[-3000:]
    assert not _RAW_CONTROL.search(text), repr(text[:500])
    assert all(len(line) <= MAX_LINE for line in text.splitlines()), max(text.splitlines(), key=len)[:300]
    if never is not None:
        assert never not in text, "a value that must never be printed was printed"


@pytest.fixture
def run_tizi() -> Callable[..., Outcome]:
    def run(*args: str, timeout: float | None = None, as_user: int | None = None) -> Outcome:
        if timeout is None and as_user is None:
            result = CliRunner().invoke(main, list(args), catch_exceptions=True)
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise AssertionError(f"tizi {' '.join(args)[:200]} raised {result.exception!r}")
            return Outcome(result.exit_code, result.stdout, result.stderr)
        proc = subprocess.run(
            [sys.executable, "-m", "components", *args], capture_output=True, text=True,
            timeout=timeout or 60, cwd=REPO, user=as_user, errors="backslashreplace",
        )  # fmt: skip
        return Outcome(proc.returncode, proc.stdout, proc.stderr)

    return run
