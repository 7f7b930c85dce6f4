"""scripts/runc-bounded: which files it edits, and that it drops only ungrantable capabilities."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "runc-bounded"


@pytest.fixture(scope="module")
def runc_bounded() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("runc_bounded", str(SCRIPT))
    spec = importlib.util.spec_from_loader("runc_bounded", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_capability_table_follows_the_kernel_numbering(runc_bounded):
    names = runc_bounded.CAPABILITY_NAMES
    # capability.h: CAP_NET_ADMIN 12, CAP_SYS_ADMIN 21, CAP_SYS_RESOURCE 24, CAP_CHECKPOINT_RESTORE 40
    assert (names[12], names[21], names[24], names[40]) == (
        "NET_ADMIN",
        "SYS_ADMIN",
        "SYS_RESOURCE",
        "CHECKPOINT_RESTORE",
    )
    assert len(set(names)) == len(names) == 41


def test_bounding_set_reads_this_process(runc_bounded):
    mask = next(
        int(line.split()[1], 16)
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("CapBnd:")
    )
    expected = {f"CAP_{n}" for bit, n in enumerate(runc_bounded.CAPABILITY_NAMES) if mask >> bit & 1}
    assert runc_bounded.bounding_set() == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--root", "/r", "create", "--bundle", "/b", "id"],
            [("/b/config.json", ("process", "capabilities"))],
        ),
        (["run", "--bundle=/b2", "id"], [("/b2/config.json", ("process", "capabilities"))]),
        (["exec", "--process", "/p.json", "id"], [("/p.json", ("capabilities",))]),
        (["exec", "-p=/q.json", "id"], [("/q.json", ("capabilities",))]),
        (["delete", "--force", "id"], []),
        (["state", "id"], []),
    ],
)
def test_spec_files_per_runc_command(runc_bounded, args, expected):
    assert runc_bounded.spec_files(args) == expected


def test_restrict_drops_only_capabilities_outside_the_allowed_set(runc_bounded, tmp_path):
    config = tmp_path / "config.json"
    sets = {
        k: ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"] for k in ("bounding", "effective", "permitted")
    }
    config.write_text(json.dumps({"ociVersion": "1.0.2", "process": {"args": ["sh"], "capabilities": sets}}))
    runc_bounded.restrict(str(config), ("process", "capabilities"), {"CAP_CHOWN", "CAP_NET_ADMIN"})
    spec = json.loads(config.read_text())
    assert spec["process"]["capabilities"] == {
        k: ["CAP_CHOWN", "CAP_NET_ADMIN"] for k in ("bounding", "effective", "permitted")
    }
    assert spec["process"]["args"] == ["sh"] and spec["ociVersion"] == "1.0.2"


def test_restrict_leaves_a_grantable_spec_byte_for_byte(runc_bounded, tmp_path):
    process = tmp_path / "process.json"
    original = '{"capabilities": {"bounding": ["CAP_KILL"]},   "cwd": "/"}'
    process.write_text(original)
    runc_bounded.restrict(str(process), ("capabilities",), {"CAP_KILL", "CAP_CHOWN"})
    assert process.read_text() == original
