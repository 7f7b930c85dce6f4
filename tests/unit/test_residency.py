"""Every residency rule allows what the law permits and refuses the rest, citing itself."""

from __future__ import annotations

import pytest

from components.rules.catalogue import TargetKind, load_catalogue
from components.rules.residency import RULES, DataClass, LegalBasis, LegalBasisKind, allowed_regions, decide

K8S = TargetKind.KUBERNETES
CNDP = LegalBasis(LegalBasisKind.CNDP_AUTHORISATION, "CNDP-A-2026-0042")
CONSENT = LegalBasis(LegalBasisKind.CONSENT, "consent-form-v3")

CASES = [
    # (region, data class, target, legal basis, allowed, rule)
    ("eu-paris", DataClass.PUBLIC, K8S, None, True, "RES-PUBLIC"),
    ("ma-benguerir", DataClass.PUBLIC, K8S, None, True, "RES-PUBLIC"),
    ("ma-dakhla", DataClass.PUBLIC, K8S, None, False, "RES-LIVE"),
    ("ma-tetouan-iozera", DataClass.PUBLIC, K8S, None, False, "RES-LIVE"),
    ("ma-benguerir", DataClass.PUBLIC, TargetKind.KOYEB, None, False, "RES-TARGET"),
    ("ma-edge-ifrane", DataClass.PUBLIC, K8S, None, False, "RES-TARGET"),
    ("nowhere-land", DataClass.PUBLIC, K8S, None, False, "RES-CATALOGUE"),
    ("ma-casablanca-oci", DataClass.PERSONAL, K8S, None, True, "RES-PERSONAL"),
    ("eu-paris", DataClass.PERSONAL, K8S, None, False, "RES-PERSONAL"),
    ("eu-paris", DataClass.PERSONAL, K8S, CONSENT, True, "RES-PERSONAL"),
    ("eu-madrid", DataClass.PERSONAL, K8S, CONSENT, True, "RES-PERSONAL"),
    ("ma-benguerir", DataClass.SENSITIVE, K8S, None, True, "RES-SENSITIVE"),
    ("ma-casablanca-oci", DataClass.SENSITIVE, K8S, None, True, "RES-SENSITIVE"),
    ("eu-paris", DataClass.SENSITIVE, K8S, None, False, "RES-SENSITIVE"),
    ("eu-paris", DataClass.SENSITIVE, K8S, CONSENT, False, "RES-SENSITIVE"),
    ("eu-paris", DataClass.SENSITIVE, K8S, CNDP, True, "RES-SENSITIVE"),
    ("eu-frankfurt", DataClass.SENSITIVE, TargetKind.KOYEB, None, False, "RES-SENSITIVE"),
    ("ma-edge-tata", DataClass.SENSITIVE, TargetKind.EDGE, None, True, "RES-SENSITIVE"),
    ("ma-benguerir", DataClass.VITAL_L2, K8S, None, True, "RES-VITAL-L2"),
    ("ma-onprem-interior", DataClass.VITAL_L2, K8S, None, True, "RES-VITAL-L2"),
    ("ma-casablanca-oci", DataClass.VITAL_L2, K8S, None, False, "RES-VITAL-L2"),
    ("eu-paris", DataClass.VITAL_L2, K8S, CNDP, False, "RES-VITAL-L2"),
    ("ma-temara-medasys", DataClass.VITAL_L1, K8S, None, True, "RES-VITAL-L1"),
    ("ma-casablanca-oci", DataClass.VITAL_L1, K8S, None, False, "RES-VITAL-L1"),
    ("eu-madrid", DataClass.VITAL_L1, K8S, CNDP, False, "RES-VITAL-L1"),
    ("ma-dakhla", DataClass.VITAL_L1, K8S, None, False, "RES-LIVE"),
]


@pytest.mark.parametrize(
    ("region", "data_class", "target", "basis", "allowed", "rule"),
    CASES,
    ids=[f"{c[1].value}-{c[0]}-{c[2].value}{'-' + c[3].kind.value if c[3] else ''}" for c in CASES],
)
def test_decision(region, data_class, target, basis, allowed, rule):
    decision = decide(load_catalogue(), region, data_class, target, basis)
    assert decision.allowed is allowed
    assert decision.rule_id == rule
    assert decision.source, "every decision names its source"
    assert region in decision.explain()


def test_every_data_class_has_a_rule_with_a_source():
    assert set(RULES) == set(DataClass)
    for rule in RULES.values():
        assert rule.source and rule.statement and rule.id.startswith("RES-")


def test_sensitive_allows_only_live_moroccan_regions():
    catalogue = load_catalogue()
    allowed = allowed_regions(catalogue, DataClass.SENSITIVE, K8S)
    assert allowed == [
        "ma-benguerir",
        "ma-casablanca-nplusone",
        "ma-temara-medasys",
        "ma-casablanca-oci",
        "ma-onprem-<name>",
    ]
    for region_id in allowed:
        region = catalogue.find(region_id.replace("<name>", "interior"))
        assert region is not None and region.in_morocco and region.status.value == "live"


def test_transfer_reason_records_the_legal_basis():
    decision = decide(load_catalogue(), "eu-paris", DataClass.SENSITIVE, K8S, CNDP)
    assert "CNDP-A-2026-0042" in decision.reason


def test_patterns_resolve_to_concrete_sites():
    catalogue = load_catalogue()
    site = catalogue.find("ma-edge-clinic-ifrane")
    assert site is not None and site.id == "ma-edge-clinic-ifrane" and site.targets == {TargetKind.EDGE}
    assert catalogue.find("ma-edge-") is None
    assert catalogue.find("ma-edge-UPPER") is None
