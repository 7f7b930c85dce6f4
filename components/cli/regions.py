"""``tizi regions``: the catalogue, and which regions a data class may use and why."""

from __future__ import annotations

from typing import cast

import click

from components.cli.output import emit_json, emit_table
from components.rules.catalogue import Region, TargetKind, load_catalogue
from components.rules.residency import DataClass, Decision, decide, decide_any_target


def _decision(region: Region, data_class: DataClass, target: TargetKind | None) -> Decision:
    """Judge on the given target, or on the best of the targets the region hosts."""
    catalogue = load_catalogue()
    if target is not None:
        return decide(catalogue, region.id, data_class, target)
    return decide_any_target(catalogue, region.id, data_class)


@click.command()
@click.option(
    "--data-class",
    type=click.Choice([d.value for d in DataClass]),
    help="Judge each region for this data class.",
)
@click.option(
    "--target", type=click.Choice([t.value for t in TargetKind]), help="Judge on this target kind only."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for scripts.")
def regions(data_class: str | None, target: str | None, as_json: bool) -> None:
    """List the region catalogue; with --data-class, say which regions are allowed and why."""
    kind = TargetKind(target) if target else None
    rows = []
    for region in load_catalogue().regions:
        if kind is not None and kind not in region.targets:
            continue
        entry: dict[str, object] = {
            "id": region.id,
            "name": region.name,
            "country": region.country,
            "ownership": region.ownership.value,
            "status": region.status.value,
            "targets": sorted(t.value for t in region.targets),
        }
        if data_class:
            decision = _decision(region, DataClass(data_class), kind)
            entry.update(
                allowed=decision.allowed,
                rule=decision.rule_id,
                reason=decision.reason,
                source=decision.source,
            )
        else:
            live = region.status.value == "live"
            entry.update(
                allowed=live,
                rule="RES-LIVE",
                reason="live region" if live else "planned region: refused until it is live",
                source=region.source,
            )
        rows.append(entry)
    if as_json:
        emit_json(rows)
        return
    emit_table(
        ["REGION", "COUNTRY", "OWNER", "STATUS", "TARGETS", "ALLOWED", "RULE", "REASON"],
        [
            [
                r["id"],
                r["country"],
                r["ownership"],
                r["status"],
                ",".join(cast("list[str]", r["targets"])),
                "yes" if r["allowed"] else "no",
                r["rule"],
                r["reason"],
            ]
            for r in rows
        ],
    )
