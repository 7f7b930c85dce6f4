"""API keys from files: several valid at once, rotation without restart, junk ignored."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"
sys.path.insert(0, str(SERVICE))

from tizi_service.keys import KeyStore  # noqa: E402


def test_every_non_empty_file_is_a_key(tmp_path: Path) -> None:
    (tmp_path / "k1").write_text("alpha\n")
    (tmp_path / "k2").write_text("  beta  ")
    (tmp_path / "empty").write_text("\n")
    (tmp_path / ".hidden").write_text("gamma")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "k").write_text("delta")
    store = KeyStore(tmp_path, recheck=0)
    assert store.count() == 2
    assert store.check("alpha") == "k1"
    assert store.check("beta") == "k2"
    for bad in ("", "gamma", "delta", "alpha ", "ALPHA"):
        assert store.check(bad) is None


def test_rotation_without_restart(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("old-key")
    store = KeyStore(tmp_path, recheck=0)
    assert store.check("old-key") == "old"
    (tmp_path / "new").write_text("new-key")
    assert store.check("new-key") == "new"
    assert store.check("old-key") == "old"  # both valid during the switch
    (tmp_path / "old").unlink()
    assert store.check("old-key") is None
    assert store.check("new-key") == "new"


def test_content_change_in_place_is_seen(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text("first")
    store = KeyStore(tmp_path, recheck=0)
    assert store.check("first")
    key.write_text("second-longer")
    st = key.stat()
    os.utime(key, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert store.check("second-longer") == "k"
    assert store.check("first") is None


def test_kubernetes_style_symlinks(tmp_path: Path) -> None:
    data = tmp_path / "..2026_11_25"
    data.mkdir()
    (data / "apiKey").write_text("k8s-key")
    (tmp_path / "..data").symlink_to(data.name)
    (tmp_path / "apiKey").symlink_to("..data/apiKey")
    assert KeyStore(tmp_path, recheck=0).check("k8s-key") == "apiKey"


def test_missing_directory_means_no_key_is_valid(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "absent", recheck=0)
    assert store.count() == 0
    assert store.check("anything") is None


def test_rescans_are_throttled(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, recheck=60)
    assert store.check("late") is None
    (tmp_path / "k").write_text("late")
    assert store.check("late") is None  # not rescanned yet
    store.refresh(force=True)
    assert store.check("late") == "k"


def test_keys_from_the_platform_environment_are_valid_too(tmp_path):
    from tizi_service.keys import KeyStore

    store = KeyStore(
        tmp_path, recheck=0, environ={"TIZI_API_KEYS": "koyeb-key-aaaaaaaaaaaa, koyeb-key-bbbbbbbbbbbb"}
    )
    assert store.check("koyeb-key-aaaaaaaaaaaa") == "env-0"
    assert store.check("koyeb-key-bbbbbbbbbbbb") == "env-1"
    assert store.check("koyeb-key-cccccccccccc") is None
    assert store.count() == 2


def test_a_changed_key_set_is_reported_by_id_never_by_value(tmp_path: Path) -> None:
    seen: list[list[str]] = []
    (tmp_path / "key-0").write_text("first-key-value")
    store = KeyStore(tmp_path, recheck=0, on_reload=seen.append)
    assert store.ids() == ["key-0"]
    assert seen == [], "the first load is not a change"
    (tmp_path / "key-1").write_text("second-key-value")
    assert store.check("second-key-value") == "key-1"
    assert seen == [["key-0", "key-1"]]
    store.refresh()
    assert seen == [["key-0", "key-1"]], "an unchanged directory reports nothing"
