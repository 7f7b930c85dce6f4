"""The region catalogue: where tizi can place the service, loaded from ``rules/regions.json``.

Facts about regions live in data, not code, so counsel and operators can review and
amend one file; this module only loads and looks them up.  Two ids are patterns
(``ma-onprem-*`` and ``ma-edge-*``): every ministry and every edge site gets its own
region id without the catalogue having to list them all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources


class Ownership(StrEnum):
    """Who owns the operator: decisive for vital-importance data (law 05-20)."""

    MOROCCAN = "moroccan"
    FOREIGN = "foreign"


class Status(StrEnum):
    """Only live regions can receive a deployment."""

    LIVE = "live"
    PLANNED = "planned"


class TargetKind(StrEnum):
    """The platforms tizi deploys to."""

    KUBERNETES = "kubernetes"
    KNATIVE = "knative"
    KOYEB = "koyeb"
    EDGE = "edge"


@dataclass(frozen=True)
class Region:
    """One place that can host the service, with the facts the residency rules read."""

    id: str
    name: str
    country: str
    ownership: Ownership
    operated_from: str
    status: Status
    targets: frozenset[TargetKind]
    source: str
    koyeb_region: str | None = None

    @property
    def in_morocco(self) -> bool:
        return self.country == "MA"


@dataclass(frozen=True)
class Catalogue:
    """All regions plus the countries the CNDP considers adequate for transfers."""

    regions: tuple[Region, ...]
    adequate_countries: frozenset[str]
    adequacy_source: str

    def find(self, region_id: str) -> Region | None:
        """The region with this id, resolving ``ma-onprem-<x>`` and ``ma-edge-<x>`` patterns."""
        for region in self.regions:
            if region.id == region_id:
                return region
        for region in self.regions:
            if region.id.endswith("*") and _matches_pattern(region.id, region_id):
                return Region(**{**region.__dict__, "id": region_id})
        return None

    def ids(self) -> list[str]:
        return [region.id for region in self.regions]


_SITE_SUFFIX = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")


def _matches_pattern(pattern: str, region_id: str) -> bool:
    prefix = pattern[:-1]
    return region_id.startswith(prefix) and bool(_SITE_SUFFIX.fullmatch(region_id[len(prefix) :]))


def _region_from_json(raw: dict) -> Region:
    return Region(
        id=raw["id"],
        name=raw["name"],
        country=raw["country"],
        ownership=Ownership(raw["ownership"]),
        operated_from=raw["operated_from"],
        status=Status(raw["status"]),
        targets=frozenset(TargetKind(t) for t in raw["targets"]),
        source=raw["source"],
        koyeb_region=raw.get("koyeb_region"),
    )


@cache
def load_catalogue() -> Catalogue:
    """Load the packaged catalogue once per process (it is immutable)."""
    text = resources.files("components").joinpath("rules/regions.json").read_text("utf-8")
    raw = json.loads(text)
    adequacy = raw["cndp_adequate_countries"]
    return Catalogue(
        regions=tuple(_region_from_json(r) for r in raw["regions"]),
        adequate_countries=frozenset(adequacy["countries"]),
        adequacy_source=adequacy["source"],
    )
