"""The offline engine settings: where state lives and which passphrase unlocks a stack.

``tizi up`` applies them to the engine it drives; ``tizi env`` prints them as shell
exports for plain ``pulumi`` commands, so there is one copy of the rules:

- state: ``PULUMI_BACKEND_URL`` if the user set one, else a file backend in the cache;
- passphrase: the user's ``PULUMI_CONFIG_PASSPHRASE`` or ``PULUMI_CONFIG_PASSPHRASE_FILE``
  always wins; the published example passphrase applies only to a committed example
  stack file (recognised by its encryption salt, so a new stack that reuses an example's
  name does not get it); anything else uses the machine's own random passphrase file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TIZI_CACHE", Path.home() / ".cache" / "tizi"))

#: Stacks committed in this repository hold demo keys encrypted with this published
#: passphrase, so a fresh clone can deploy them.  Never use it for anything real.
EXAMPLE_PASSPHRASE = "tizi-example-passphrase"
#: The encryption salt of each committed example stack file, written by ``pulumi stack init``
#: with the example passphrase.  A stack initialised anywhere else gets another salt.
EXAMPLE_SALTS = {
    "local": "v1:ICwL8oJLUCA=:v1:A0YhWJtSf8KArDF4:VBK4Wh9r74GUMwzkkJ3hS8QjY3bqdQ==",
    "kind": "v1:xE+6UttBqDI=:v1:Ya2/WnHNXaLddknX:ozFwgZAWEW2Buy62fpMaUB0YsGWd2Q==",
    "health-prod": "v1:2JEqPWYPPGw=:v1:eqL/6mmCumdG+WZ9:dnBnTE8ORbKB4TT4FKeGw9PrT1u6Ow==",
    "tourism-dev": "v1:Mrfn4HICBvo=:v1:SbKMJUhviCUkasZk:ppBwBCFwzMaOaledmmBlRRq1Mae97A==",
    "interior-prod": "v1:uO6wiWhSA7k=:v1:CzqfiYyWwK/QD4/D:s1IsNaJoWfgEfNsQQ03qdMomJTravA==",
    "llm-local": "v1:JUIfSB3egJU=:v1:d/3OCgK0Fr/VQJzO:xkUIahvZ/iHF1M1AsDFTjorspFmq/w==",
    "llm-kind": "v1:Al9F5W2kVVI=:v1:6peUZLC5IojJQesz:NlMDFNDTrf8wkhj8e7O/QZ06buqe3w==",
}
_SALT_LINE = re.compile(r"^encryptionsalt:\s*(\S+)\s*$", re.M)


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


def stack_file(stack: str, work_dir: Path = REPO) -> Path:
    """The stack's settings file (``Pulumi.yaml`` sets ``stackConfigDir: stacks``)."""
    return work_dir / "stacks" / f"Pulumi.{stack}.yaml"


def is_committed_example(stack: str, work_dir: Path = REPO) -> bool:
    """True when the stack's file is a committed example, judged by its encryption salt."""
    expected = EXAMPLE_SALTS.get(stack)
    try:
        text = stack_file(stack, work_dir).read_text("utf-8", errors="replace")
    except OSError:
        return False
    found = _SALT_LINE.search(text)
    return expected is not None and found is not None and found.group(1) == expected


def passphrase_env(stack: str, work_dir: Path = REPO) -> dict[str, str]:
    """The passphrase setting for ``stack``: the user's own first, then example, then machine."""
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        if os.environ.get(name):
            return {name: os.environ[name]}
    if is_committed_example(stack, work_dir):
        return {"PULUMI_CONFIG_PASSPHRASE": EXAMPLE_PASSPHRASE}
    return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(machine_passphrase_file())}


def engine_settings(stack: str, state_dir: Path | None = None, work_dir: Path = REPO) -> EngineSettings:
    """Offline settings for a stack: a file backend and the passphrase that fits the stack."""
    if state_dir is not None:  # an explicit folder (tests, benchmarks) wins over the environment
        backend = f"file://{state_dir}"
    else:
        backend = os.environ.get("PULUMI_BACKEND_URL") or f"file://{CACHE / 'state'}"
    if backend.startswith("file://"):
        Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    return EngineSettings(backend_url=backend, passphrase_env=passphrase_env(stack, work_dir))


def machine_passphrase_file() -> Path:
    """The machine's passphrase, created once at random, readable by its owner only."""
    path = CACHE / "passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(os.urandom(32).hex())
    return path
