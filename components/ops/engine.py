"""Drive the real Pulumi engine from Python (Automation API), offline.

``tizi up/preview/destroy`` and the engine tests use this (its settings: ``engine_env``):
the program runs inline in this process (``components.program.run``) while the ``pulumi`` CLI runs the real
engine, state lives in a local file backend and secrets use the passphrase provider.
Inline programs need no ``pulumi-language-python`` plugin, which cannot be built on
machines without internet (see README, "Toolchain"); on a normal machine plain
``pulumi up`` in the repository does the same thing.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from components.ops.engine_env import REPO, engine_settings
from components.ops.recovery import (
    partial_creates,
    pending_orphans,
    remove_orphans,
    roll_back_partial_creates,
)
from components.ops.reported_stack import ReportedStack
from components.program import run


def use_toolchain() -> None:
    """Put the offline toolchain (scripts/toolchain.sh) in this process's environment when no
    ``pulumi`` is on PATH, so ``tizi up`` and ``tizi key`` work from a plain shell."""
    script = REPO / "scripts" / "toolchain.sh"
    if shutil.which("pulumi") or not script.exists():
        return
    exports = subprocess.run(["bash", str(script), "env"], capture_output=True, text=True, check=False).stdout
    for line in exports.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name == "PATH":
            os.environ["PATH"] = os.path.expandvars(shlex.split(value)[0])
        elif name:
            os.environ.setdefault(name, shlex.split(value)[0])


def _pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (killed, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def clear_stale_locks(backend_url: str, project: str, stack: str) -> list[Path]:
    """Remove the file backend's locks left by an update that was killed on this host.

    A killed ``pulumi up`` leaves its lock behind and every later run refuses to start;
    a lock whose process is gone from this very host cannot protect anything.  Locks of
    live processes or of other hosts are left alone.
    """
    if not backend_url.startswith("file://"):
        return []
    folder = (
        Path(backend_url.removeprefix("file://")) / ".pulumi" / "locks" / "organization" / project / stack
    )
    removed = []
    for lock in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            holder = json.loads(lock.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if holder.get("hostname") == socket.gethostname() and not _pid_alive(int(holder.get("pid", 0))):
            lock.unlink(missing_ok=True)
            removed.append(lock)
            print(
                f"tizi: removed the lock of an interrupted update (pid {holder.get('pid')} is gone)",
                file=sys.stderr,
            )
    return removed


def select_stack(stack: str, work_dir: Path = REPO, state_dir: Path | None = None) -> auto.Stack:
    """Create or select ``stack`` of the project in ``work_dir`` with the inline program.

    Its ``up`` returns the outputs and the summary the engine's events reported
    (:class:`ReportedStack`): three CLI runs fewer after each update, 0.5-0.6 s.

    An update killed half-way leaves a stale lock (cleared here) and pending operations,
    which the next update reports and converges from.
    """
    use_toolchain()
    settings = engine_settings(stack, state_dir, work_dir)
    interrupted = clear_stale_locks(settings.backend_url, "tizi", stack)
    selected = auto.create_or_select_stack(
        stack_name=stack,
        project_name="tizi",
        program=run,
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(work_dir),
            env_vars=settings.env(),
            secrets_provider="passphrase",
        ),
    )
    if interrupted:
        remove_orphans(pending_orphans(dict(selected.export_stack().deployment or {})))
    return ReportedStack.of(selected)


def up_or_clean(
    stack: auto.Stack, on_output: Callable[[str], Any], on_event: Callable[[Any], Any] | None = None
) -> auto.UpResult:
    """``stack.up``; when it fails, a roll that never became healthy is rolled back.

    The docker provider keeps a container that never became healthy (upstream's behaviour),
    and the engine keeps the healthy one it was replacing, marked for deletion.  With host
    networking the broken one would share the site's port.  So the broken containers are
    removed from their hosts and from the state, and the replaced ones are made current
    again: the site serves what it served before, and the next ``up`` starts from there
    (the same settings change nothing; fixed ones roll again).  The failure is raised as it was.

    ``show_secrets=False``: should the CLI be asked for the update's summary (a stack from
    :func:`select_stack` answers from the engine's events), it reads it without decrypting the
    stack's config (tizi reads only the resource counts), so the keys never pass through this
    process in plaintext.
    """
    try:
        return stack.up(on_output=on_output, on_event=on_event, show_secrets=False)
    except auto.CommandError:
        exported = stack.export_stack()
        deployment = dict(exported.deployment or {})
        failed = partial_creates(deployment)
        if remove_orphans(failed):
            exported.deployment = roll_back_partial_creates(deployment)
            stack.import_stack(exported)
        raise
