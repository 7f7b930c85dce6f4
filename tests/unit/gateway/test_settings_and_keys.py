"""The gateway's two inputs: the settings file (refused whole, one line naming the field)
and the key directory (ids that survive renumbering, unusable files skipped)."""

from __future__ import annotations

import json

import pytest
from tizi_gateway.keyfiles import key_id, read_keys
from tizi_gateway.settings import SettingsError, parse_settings, read_settings

GOOD = {"upstream_host": "payload", "upstream_port": 8080}


def test_minimal_settings_take_the_defaults():
    settings = parse_settings(GOOD)
    assert (settings.listen_port, settings.metrics_port, settings.tls) == (8443, 9095, "off")
    assert settings.requests_per_minute == 600 and settings.burst == 60


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"upstream_port": 0}, "upstream_port"),
        ({"upstream_port": "8080"}, "upstream_port"),
        ({"upstream_port": True}, "upstream_port"),
        ({"upstream_host": "a b"}, "upstream_host"),
        ({"upstream_host": ""}, "upstream_host"),
        ({"listen_port": 80}, "listen_port"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"burst": -1}, "burst"),
        ({"tls": "on"}, "tls"),
        ({"tls": "site-ca"}, "tls_names"),
        ({"tls_names": "a"}, "tls_names"),
        ({"open_paths": ["healthz"]}, "open_paths"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_each_bad_field_is_named(change, field):
    with pytest.raises(SettingsError) as refused:
        parse_settings({**GOOD, **change})
    message = str(refused.value)
    assert field in message and "\n" not in message


def test_unreadable_or_broken_files_are_refused_with_the_path(tmp_path):
    broken = tmp_path / "gateway.json"
    broken.write_text("{not json")
    with pytest.raises(SettingsError, match=r"gateway\.json"):
        read_settings(broken)
    with pytest.raises(SettingsError, match=r"missing\.json"):
        read_settings(tmp_path / "missing.json")
    broken.write_text(json.dumps([1, 2]))
    with pytest.raises(SettingsError, match="JSON object"):
        read_settings(broken)


def test_key_ids_follow_the_key_not_the_file(tmp_path):
    (tmp_path / "key-0").write_text("sk-first-aaaaaaaa\n")
    (tmp_path / "key-1").write_text("sk-second-bbbbbbb")
    before = read_keys(tmp_path)
    (tmp_path / "key-0").rename(tmp_path / "key-7")
    after = read_keys(tmp_path)
    assert (
        before
        == after
        == {
            key_id("sk-first-aaaaaaaa"): "sk-first-aaaaaaaa",
            key_id("sk-second-bbbbbbb"): "sk-second-bbbbbbb",
        }
    )
    assert all(kid.startswith("key-") and len(kid) == 14 for kid in after)
    assert "sk-first" not in "".join(after), "an id says nothing about its key"


def test_unusable_key_files_are_skipped(tmp_path):
    (tmp_path / ".hidden").write_text("sk-hidden-cccccccc")
    (tmp_path / "empty").write_text("  \n")
    (tmp_path / "spaces").write_text("sk with spaces")
    (tmp_path / "control").write_text("sk-\x1b[31m-red")
    (tmp_path / "huge").write_text("k" * 600)
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "dir").mkdir()
    (tmp_path / "good").write_text("sk-good-dddddddd")
    assert list(read_keys(tmp_path).values()) == ["sk-good-dddddddd"]
    assert read_keys(tmp_path / "missing") == {}
