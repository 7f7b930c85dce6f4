"""Data-residency rules: which data class may be served from which region, and why.

The rules are data (``RULES``) plus small pure predicates, so they can be read as a
table, tested without Pulumi, and called before any resource exists.  Every decision
carries the rule id, a one-line statement and the legal source it encodes.

This is an engineering encoding of Moroccan law 09-08 (personal data, CNDP) and law
05-20 with decree 2-24-921 (vital-importance bodies); it must be reviewed by counsel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from components.rules.catalogue import Catalogue, Ownership, Region, Status, TargetKind


class DataClass(StrEnum):
    """How sensitive the data the service processes is; decides where it may run."""

    PUBLIC = "public"
    PERSONAL = "personal"
    SENSITIVE = "sensitive"
    VITAL_L2 = "vital-l2"
    VITAL_L1 = "vital-l1"


class LegalBasisKind(StrEnum):
    """Grounds law 09-08 art. 43 accepts for a transfer abroad."""

    CNDP_AUTHORISATION = "cndp-authorisation"
    CONSENT = "consent"
    MEDICAL_NECESSITY = "medical-necessity"
    INTERNATIONAL_AGREEMENT = "international-agreement"


@dataclass(frozen=True)
class LegalBasis:
    """A recorded legal basis for a transfer, e.g. a CNDP authorisation reference."""

    kind: LegalBasisKind
    reference: str


@dataclass(frozen=True)
class Rule:
    """One residency rule: what it requires and which text it encodes."""

    id: str
    data_class: DataClass
    statement: str
    source: str
    requirements: tuple[str, ...]
    transfer_bases: frozenset[LegalBasisKind] = frozenset()


@dataclass(frozen=True)
class Decision:
    """Whether a region may host a data class on a target, and the rule that says so."""

    region_id: str
    allowed: bool
    rule_id: str
    reason: str
    source: str

    def explain(self) -> str:
        verdict = "allowed" if self.allowed else "refused"
        return f"{self.region_id} {verdict} by {self.rule_id}: {self.reason} (source: {self.source})"


LIVE_RULE = Rule(
    id="RES-LIVE",
    data_class=DataClass.PUBLIC,
    statement="only live regions receive deployments; planned regions are refused",
    source="catalogue status field (shared/research/morocco.md, Regions and sites)",
    requirements=("live",),
)

TARGET_RULE = Rule(
    id="RES-TARGET",
    data_class=DataClass.PUBLIC,
    statement="the region must offer the target platform",
    source="catalogue targets field (shared/research/morocco.md, Regions and sites)",
    requirements=("hosts_target",),
)

RULES: dict[DataClass, Rule] = {
    DataClass.PUBLIC: Rule(
        id="RES-PUBLIC",
        data_class=DataClass.PUBLIC,
        statement="public data may be served from any live region",
        source="Law 09-08 covers personal data only; public data carries no residency duty",
        requirements=(),
    ),
    DataClass.PERSONAL: Rule(
        id="RES-PERSONAL",
        data_class=DataClass.PERSONAL,
        statement=(
            "personal data stays in Morocco, or goes to a CNDP-adequate country "
            "with a recorded art. 43 legal basis"
        ),
        source="Law 09-08 art. 43 and CNDP deliberation 465-2013",
        requirements=("in_morocco_or_adequate_with_basis",),
        transfer_bases=frozenset(LegalBasisKind),
    ),
    DataClass.SENSITIVE: Rule(
        id="RES-SENSITIVE",
        data_class=DataClass.SENSITIVE,
        statement=(
            "sensitive data (health, finance) stays in Morocco unless a CNDP "
            "authorisation reference is recorded"
        ),
        source="Law 09-08 (sensitive data needs prior authorisation) and art. 43, CNDP form F118",
        requirements=("in_morocco_or_adequate_with_basis",),
        transfer_bases=frozenset({LegalBasisKind.CNDP_AUTHORISATION}),
    ),
    DataClass.VITAL_L2: Rule(
        id="RES-VITAL-L2",
        data_class=DataClass.VITAL_L2,
        statement=(
            "level-2 vital data is processed and stored in Morocco by a majority Moroccan-owned provider"
        ),
        source="Law 05-20 and decree 2-24-921 (BO 7352, November 2024), level 2",
        requirements=("in_morocco", "moroccan_owned"),
    ),
    DataClass.VITAL_L1: Rule(
        id="RES-VITAL-L1",
        data_class=DataClass.VITAL_L1,
        statement=(
            "level-1 vital systems run in Morocco with a Moroccan provider, "
            "operated and administered from Morocco"
        ),
        source="Law 05-20 and decree 2-24-921 (BO 7352, November 2024), level 1",
        requirements=("in_morocco", "moroccan_owned", "operated_from_morocco"),
    ),
}


@dataclass(frozen=True)
class _Context:
    region: Region
    target: TargetKind
    rule: Rule
    legal_basis: LegalBasis | None
    catalogue: Catalogue


def _live(ctx: _Context) -> bool:
    return ctx.region.status is Status.LIVE


def _hosts_target(ctx: _Context) -> bool:
    return ctx.target in ctx.region.targets


def _in_morocco(ctx: _Context) -> bool:
    return ctx.region.in_morocco


def _moroccan_owned(ctx: _Context) -> bool:
    return ctx.region.ownership is Ownership.MOROCCAN


def _operated_from_morocco(ctx: _Context) -> bool:
    return ctx.region.operated_from == "MA"


def _in_morocco_or_adequate_with_basis(ctx: _Context) -> bool:
    if ctx.region.in_morocco:
        return True
    basis = ctx.legal_basis
    return (
        ctx.region.country in ctx.catalogue.adequate_countries
        and basis is not None
        and basis.kind in ctx.rule.transfer_bases
    )


PREDICATES: dict[str, Callable[[_Context], bool]] = {
    "live": _live,
    "hosts_target": _hosts_target,
    "in_morocco": _in_morocco,
    "moroccan_owned": _moroccan_owned,
    "operated_from_morocco": _operated_from_morocco,
    "in_morocco_or_adequate_with_basis": _in_morocco_or_adequate_with_basis,
}


def decide(
    catalogue: Catalogue,
    region_id: str,
    data_class: DataClass,
    target: TargetKind,
    legal_basis: LegalBasis | None = None,
) -> Decision:
    """Decide whether ``region_id`` may host ``data_class`` on ``target``.

    The generic rules (region live, target offered) are checked before the data-class
    rule so the message names the most basic obstacle first.
    """
    region = catalogue.find(region_id)
    if region is None:
        return Decision(
            region_id=region_id,
            allowed=False,
            rule_id="RES-CATALOGUE",
            reason=f"unknown region; the catalogue lists {', '.join(catalogue.ids())}",
            source="components/rules/regions.json",
        )
    rule = RULES[data_class]
    for generic in (LIVE_RULE, TARGET_RULE):
        ctx = _Context(region, target, generic, legal_basis, catalogue)
        if not all(PREDICATES[name](ctx) for name in generic.requirements):
            detail = (
                f"status is {region.status.value}"
                if generic is LIVE_RULE
                else f"it hosts {', '.join(sorted(t.value for t in region.targets))}, not {target.value}"
            )
            return Decision(region_id, False, generic.id, f"{generic.statement}; {detail}", generic.source)
    ctx = _Context(region, target, rule, legal_basis, catalogue)
    allowed = all(PREDICATES[name](ctx) for name in rule.requirements)
    reason = rule.statement
    if allowed and legal_basis is not None and not region.in_morocco:
        reason += f"; transfer recorded as {legal_basis.kind.value} {legal_basis.reference}"
    return Decision(region_id, allowed, rule.id, reason, rule.source)


def allowed_regions(
    catalogue: Catalogue,
    data_class: DataClass,
    target: TargetKind,
    legal_basis: LegalBasis | None = None,
) -> list[str]:
    """Catalogue ids where the data class may run on the target; patterns read ``ma-onprem-<name>``."""
    return [
        region.id.replace("*", "<name>")
        for region in catalogue.regions
        if decide(catalogue, region.id, data_class, target, legal_basis).allowed
    ]


def decide_any_target(
    catalogue: Catalogue,
    region_id: str,
    data_class: DataClass,
    legal_basis: LegalBasis | None = None,
) -> Decision:
    """Judge a region on the best of the targets it hosts: for the stack's own region when no
    target is placed there (an edge-only stack still declares where its data lives)."""
    region = catalogue.find(region_id)
    kinds = sorted(region.targets) if region is not None and region.targets else list(TargetKind)
    decisions = [decide(catalogue, region_id, data_class, kind, legal_basis) for kind in kinds]
    return next((d for d in decisions if d.allowed), decisions[0])
