"""The tizi command line: regions, check, stack new (never overwriting), values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from components.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_STACKS = sorted((REPO / "stacks").glob("Pulumi.*.yaml"))


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_regions_json_sensitive_allows_only_live_moroccan_regions():
    result = invoke("regions", "--data-class", "sensitive", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert {"id", "allowed", "reason"} <= set(rows[0])
    allowed = {r["id"] for r in rows if r["allowed"]}
    assert allowed == {
        "ma-benguerir",
        "ma-casablanca-nplusone",
        "ma-temara-medasys",
        "ma-casablanca-oci",
        "ma-onprem-*",
        "ma-edge-*",
    }
    for row in rows:
        if row["allowed"]:
            assert row["country"] == "MA" and row["status"] == "live"
        else:
            assert row["rule"] in {"RES-LIVE", "RES-SENSITIVE"} and row["source"]


def test_regions_table_for_koyeb_target():
    result = invoke("regions", "--data-class", "personal", "--target", "koyeb")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["REGION", "COUNTRY"]
    body = {line.split()[0]: line for line in lines[2:]}
    assert set(body) == {"eu-paris", "eu-frankfurt"}
    assert all(" no " in line and "RES-PERSONAL" in line for line in body.values())


def test_regions_without_data_class_marks_planned_regions():
    rows = json.loads(invoke("regions", "--json").output)
    planned = {r["id"] for r in rows if not r["allowed"]}
    assert planned == {"ma-tetouan-iozera", "ma-dakhla"}


@pytest.mark.parametrize("stack_file", EXAMPLE_STACKS, ids=[p.name for p in EXAMPLE_STACKS])
def test_check_passes_every_example_stack(stack_file):
    result = invoke("check", str(stack_file))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok ")


def test_check_reports_every_error_of_a_sensitive_stack_in_eu_paris(tmp_path):
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.health-prod.yaml").read_text())
    document["config"]["tizi:region"] = "eu-paris"
    document["config"]["tizi:scaling"] = {"min": -1}
    bad = tmp_path / "Pulumi.health-abroad.yaml"
    bad.write_text(yaml.safe_dump(document))
    result = invoke("check", "--json", str(bad))
    assert result.exit_code == 1
    [report] = json.loads(result.output)
    assert report["valid"] is False
    assert any(
        p.startswith('tizi:region: "eu-paris"') and "RES-SENSITIVE" in p and "Law 09-08" in p
        for p in report["problems"]
    )
    assert "tizi:scaling.min: -1 is invalid: must be an integer >= 0" in report["problems"]


def test_check_refuses_plaintext_api_keys_without_echoing_them(tmp_path):
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.kind.yaml").read_text())
    document["config"]["tizi:apiKeys"] = "plain-text-key-0123456789"
    bad = tmp_path / "Pulumi.leaky.yaml"
    bad.write_text(yaml.safe_dump(document))
    result = invoke("check", str(bad))
    assert result.exit_code == 1
    assert "must be encrypted" in result.output
    assert "plain-text-key-0123456789" not in result.output


def test_check_rejects_a_file_that_is_not_a_stack(tmp_path):
    bad = tmp_path / "Pulumi.broken.yaml"
    bad.write_text("config: [1, 2\n")
    result = invoke("check", str(bad))
    assert result.exit_code == 1 and "cannot read stack file" in result.output


STACK_NEW = [
    "stack",
    "new",
    "--ministry",
    "justice",
    "--env",
    "prod",
    "--data-class",
    "sensitive",
    "--region",
    "ma-benguerir",
    "--target",
    "kubernetes",
]


def test_stack_new_renders_a_valid_stack_and_prints_next_steps(tmp_path):
    result = invoke(*STACK_NEW, "--stacks-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    path = tmp_path / "Pulumi.justice-prod.yaml"
    config = yaml.safe_load(path.read_text())["config"]
    assert config["tizi:ministry"] == "justice"
    assert config["tizi:dataClass"] == "sensitive"
    assert config["tizi:targets"] == [{"kind": "kubernetes", "name": "kubernetes"}]
    assert "pulumi stack init justice-prod" in result.output
    assert "pulumi config set --secret tizi:apiKeys" in result.output
    assert "tizi:apiKeys" not in config, "no secret value is ever rendered"


def test_stack_new_refuses_to_overwrite(tmp_path):
    assert invoke(*STACK_NEW, "--stacks-dir", str(tmp_path)).exit_code == 0
    path = tmp_path / "Pulumi.justice-prod.yaml"
    path.write_text(path.read_text() + "# hand edit\n")
    result = CliRunner().invoke(main, [*STACK_NEW, "--stacks-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "never overwrites" in result.output
    assert path.read_text().endswith("# hand edit\n")


def test_stack_new_refuses_a_forbidden_region_and_writes_nothing(tmp_path):
    args = [a if a != "ma-benguerir" else "eu-paris" for a in STACK_NEW]
    result = CliRunner().invoke(main, [*args, "--stacks-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "RES-SENSITIVE" in result.output
    assert list(tmp_path.iterdir()) == []


def test_stack_new_with_edge_and_koyeb_targets(tmp_path):
    result = invoke(
        "stack",
        "new",
        "--ministry",
        "culture",
        "--env",
        "dev",
        "--data-class",
        "public",
        "--region",
        "eu-paris",
        "--target",
        "koyeb",
        "--target",
        "knative",
        "--stacks-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "koyeb:token" in result.output
    config = yaml.safe_load((tmp_path / "Pulumi.culture-dev.yaml").read_text())["config"]
    assert config["tizi:scaling"]["min"] == 0
    assert [t["kind"] for t in config["tizi:targets"]] == ["koyeb", "knative"]


def test_values_prints_the_chart_values_of_the_kind_stack():
    result = invoke("values", str(REPO / "stacks" / "Pulumi.kind.yaml"))
    assert result.exit_code == 0, result.output
    values = yaml.safe_load(result.output)
    assert values["placement"]["region"] == "ma-benguerir"
    assert values["apiKeys"]["existingSecret"] == "inference-api-keys"
    assert values["autoscaling"] == {"enabled": True, "minReplicas": 2, "maxReplicas": 3}


def test_python_dash_m_and_console_script_are_the_same_command():
    module = subprocess.run(
        [sys.executable, "-m", "components", "--help"], capture_output=True, text=True, check=True
    )
    script = subprocess.run(
        [str(Path(sys.executable).parent / "tizi"), "--help"], capture_output=True, text=True, check=True
    )
    assert module.stdout == script.stdout
    assert "regions" in module.stdout and "check" in module.stdout and "stack" in module.stdout
