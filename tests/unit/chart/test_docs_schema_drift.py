"""values.yaml <=> values.schema.json <=> the README parameter table: every value
documented once (`## @param`), the schema covers exactly the values, and the README
shows each default as values.yaml has it."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from .render import CHART, CI_PROFILES, ci_values

pytestmark = pytest.mark.unit


PARAM_RE = re.compile(r"^\s*## @param (\S+) (.+)$")
README_ROW_RE = re.compile(r"^\| `([^`]+)` \| (.*) \| `(.*)` \|$")


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def _params() -> list[str]:
    lines = (CHART / "values.yaml").read_text().splitlines()
    return [m.group(1) for line in lines if (m := PARAM_RE.match(line))]


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{dotted}: not in values.yaml"
        node = node[part]
    return node


def _leaves(tree: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _leaves(value, f"{path}.")
        else:
            out.append(path)
    return out


def _schema_paths(node: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        out.append(path)
        out += _schema_paths(sub, f"{path}.")
    return out


def _readme_rows() -> dict[str, str]:
    rows = {}
    for line in (CHART / "README.md").read_text().splitlines():
        if m := README_ROW_RE.match(line):
            assert m.group(1) not in rows, f"{m.group(1)}: twice in the README table"
            rows[m.group(1)] = m.group(3)
    return rows


def readme_value(value: Any) -> str:
    """How the README table shows a default (Bitnami readme-generator style)."""
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, separators=(",", ":"))


def test_values_are_documented_once_each() -> None:
    params = _params()
    assert len(params) == len(set(params)), "a value is documented twice"
    for param in params:
        _lookup(_values(), param)


def test_every_value_has_a_param_line() -> None:
    params = set(_params())
    undocumented = [
        leaf for leaf in _leaves(_values()) if not any(leaf == p or leaf.startswith(f"{p}.") for p in params)
    ]
    assert not undocumented, f"values without `## @param`: {undocumented}"


def test_schema_and_values_have_the_same_keys() -> None:
    schema, values = _schema(), _values()
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(values)
    for path in _schema_paths(schema):
        _lookup(values, path)  # no stale schema property
    schema_paths = set(_schema_paths(schema))
    missing = [p for p in _params() if p not in schema_paths]
    assert not missing, f"documented values missing from values.schema.json: {missing}"


def test_values_yaml_validates_against_its_schema() -> None:
    schema = _schema()
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(_values())
    for profile in CI_PROFILES:
        merged = copy.deepcopy(_values())
        _deep_update(merged, ci_values(profile))
        jsonschema.Draft7Validator(schema).validate(merged)


def _deep_update(dst: dict, src: dict) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _deep_update(dst[key], value)
        else:
            dst[key] = value


def test_readme_table_matches_values() -> None:
    rows, values = _readme_rows(), _values()
    assert list(rows) == _params(), "README table and `## @param` lines differ (keys or order)"
    for key, shown in rows.items():
        assert shown == readme_value(_lookup(values, key)), f"{key}: README default drifted"
