"""Placement: judge every region a spec would use against the residency rules.

Runs after ``read_spec`` and before any resource exists.  Each target is judged on
its own region (Kubernetes and Knative also on every fallback region, which must
satisfy the same rules), and the decisions are kept so the program can export the
rule that allowed the chosen region.  When no target runs in the stack's own region
(edge- or Koyeb-only stacks), that region and its fallbacks are judged all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.problems import Problem
from components.rules.catalogue import Catalogue, load_catalogue
from components.rules.residency import Decision, allowed_regions, decide, decide_any_target
from components.spec.service import ServiceSpec
from components.spec.target import Target
from components.targets.kinds import KINDS


@dataclass(frozen=True)
class TargetPlacement:
    """Where one target runs and the decisions that allowed it and its fallbacks."""

    target: Target
    decision: Decision
    fallbacks: tuple[Decision, ...] = ()


@dataclass(frozen=True)
class Placement:
    """The placement of every target of a spec, in the spec's order."""

    targets: tuple[TargetPlacement, ...]


def _refusal(
    spec: ServiceSpec, catalogue: Catalogue, key: str, target: Target, decision: Decision
) -> Problem:
    allowed = allowed_regions(catalogue, spec.data_class, target.kind, spec.legal_basis)
    allowed_text = ", ".join(allowed) or "no region in the catalogue"
    return Problem(
        key,
        decision.region_id,
        f"refused for data class {spec.data_class.value!r} on {target.kind.value} by rule "
        f"{decision.rule_id} ({decision.reason}; source: {decision.source}); allowed: {allowed_text}",
    )


def judge(
    spec: ServiceSpec, catalogue: Catalogue | None = None, skip_keys: frozenset[str] = frozenset()
) -> tuple[Placement, list[Problem]]:
    """Decide every target's placement and return the refusals as problems.

    ``skip_keys`` names settings already reported invalid by the spec reader, so a
    malformed region is not reported a second time as an unknown one.
    """
    catalogue = catalogue or load_catalogue()
    problems: list[Problem] = []
    placements: list[TargetPlacement] = []
    for index, target in enumerate(spec.targets):
        profile = KINDS[target.kind]
        key = profile.region_setting(index)
        decision = decide(catalogue, target.region, spec.data_class, target.kind, spec.legal_basis)
        if not decision.allowed and key not in skip_keys:
            problem = _refusal(spec, catalogue, key, target, decision)
            if problem not in problems:
                problems.append(problem)
        fallbacks: list[Decision] = []
        if profile.fallbacks:
            for fb_index, region_id in enumerate(spec.fallback_regions):
                fb = decide(catalogue, region_id, spec.data_class, target.kind, spec.legal_basis)
                if not fb.allowed and f"fallbackRegions[{fb_index}]" not in skip_keys:
                    problem = _refusal(spec, catalogue, f"fallbackRegions[{fb_index}]", target, fb)
                    if problem not in problems:
                        problems.append(problem)
                fallbacks.append(fb)
        placements.append(TargetPlacement(target, decision, tuple(fallbacks)))
    if not any(KINDS[t.kind].region_key is None for t in spec.targets):
        problems += [p for p in _stack_region_problems(spec, catalogue, skip_keys) if p not in problems]
    return Placement(tuple(placements)), problems


def _stack_region_problems(
    spec: ServiceSpec, catalogue: Catalogue, skip_keys: frozenset[str]
) -> list[Problem]:
    """``tizi:region`` and its fallbacks, judged by the same rules when no target runs there.

    An edge- or Koyeb-only stack still declares where its data lives (the region label on
    every resource, the fallback for a site): a sensitive stack may not declare eu-paris.
    """
    problems = []
    for key, region_id in [("region", spec.region)] + [
        (f"fallbackRegions[{i}]", fb) for i, fb in enumerate(spec.fallback_regions)
    ]:
        decision = decide_any_target(catalogue, region_id, spec.data_class, spec.legal_basis)
        if key in skip_keys or decision.allowed:
            continue
        allowed = [
            r.id.replace("*", "<name>")
            for r in catalogue.regions
            if decide_any_target(catalogue, r.id, spec.data_class, spec.legal_basis).allowed
        ]
        problems.append(
            Problem(
                key,
                region_id,
                f"refused for data class {spec.data_class.value!r} by rule {decision.rule_id} "
                f"({decision.reason}; source: {decision.source}); allowed: {', '.join(allowed)}",
            )
        )
    return problems
