"""Drive the real Pulumi engine from Python (Automation API), offline.

``tizi up/preview/destroy`` and the engine tests use this: the program runs inline in
this process (``components.program.run``) while the ``pulumi`` CLI runs the real
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
from dataclasses import dataclass
from pathlib import Path

from pulumi import automation as auto

from components.program import run
from components.recovery import pending_orphans, remove_orphans

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("TIZI_CACHE", Path.home() / ".cache" / "tizi"))

#: Stacks committed in this repository hold demo keys encrypted with this published
#: passphrase, so a fresh clone can deploy them.  Real stacks (``tizi stack new`` +
#: ``pulumi stack init``) use the machine's own passphrase file instead.
EXAMPLE_PASSPHRASE = "tizi-example-passphrase"
EXAMPLE_STACKS = frozenset({"local", "kind", "health-prod", "tourism-dev", "interior-prod"})


@dataclass(frozen=True)
class EngineSettings:
    """Where state lives and how secrets are unlocked, as environment variables for the CLI."""

    backend_url: str
    passphrase_env: dict[str, str]

    def env(self) -> dict[str, str]:
        return {
            "PULUMI_BACKEND_URL": self.backend_url,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            **self.passphrase_env,
        }


def engine_settings(stack: str, state_dir: Path | None = None) -> EngineSettings:
    """Offline settings for a stack: a file backend and the passphrase that fits the stack."""
    if state_dir is not None:  # an explicit folder (tests, benchmarks) wins over the environment
        backend = f"file://{state_dir}"
    else:
        backend = os.environ.get("PULUMI_BACKEND_URL") or f"file://{CACHE / 'state'}"
    if backend.startswith("file://"):
        Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    if stack in EXAMPLE_STACKS:
        passphrase = {"PULUMI_CONFIG_PASSPHRASE": EXAMPLE_PASSPHRASE}
    elif os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
        passphrase = {"PULUMI_CONFIG_PASSPHRASE": os.environ["PULUMI_CONFIG_PASSPHRASE"]}
    else:
        passphrase = {"PULUMI_CONFIG_PASSPHRASE_FILE": str(_machine_passphrase_file())}
    return EngineSettings(backend_url=backend, passphrase_env=passphrase)


def _machine_passphrase_file() -> Path:
    """The machine's passphrase, created once at random, readable by its owner only."""
    path = Path(os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE") or CACHE / "passphrase")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(os.urandom(32).hex())
    return path


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

    An update killed half-way leaves a stale lock (cleared here) and pending operations,
    which the next update reports and converges from.
    """
    use_toolchain()
    settings = engine_settings(stack, state_dir)
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
        remove_orphans(pending_orphans(selected.export_stack().deployment))
    return selected
