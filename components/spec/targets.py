"""Where the service runs: the ``tizi:targets`` list, read into ``Target`` values.

The loop is generic; each entry is read by its kind's profile (``targets.kinds``), which
knows the entry's keys and defaults.  A target's ``region`` is what residency judges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.rules.catalogue import TargetKind
from components.spec.reader import DNS_LABEL, SettingsReader
from components.spec.target import Target
from components.targets.kinds import KINDS, StackContext


def read_targets(r: SettingsReader, raw: Any, stack: StackContext) -> tuple[Target, ...]:
    """Every target of the stack, read by its kind's profile; names must be unique."""
    kinds = ", ".join(k.value for k in KINDS)
    if not isinstance(raw, list) or not raw:
        r.fail("targets", raw, f"must be a non-empty list of targets (kind: {kinds})")
        return ()
    targets: list[Target] = []
    for index, item in enumerate(raw):
        key = f"targets[{index}]"
        if not isinstance(item, Mapping):
            r.fail(key, item, "must be a mapping with at least a kind")
            continue
        kind_raw = r.choice(f"{key}.kind", item.get("kind"), tuple(k.value for k in KINDS))
        if not kind_raw:
            continue
        profile = KINDS[TargetKind(kind_raw)]
        r.unknown(key, item, profile.keys)
        name = r.string(
            f"{key}.name",
            item.get("name"),
            DNS_LABEL,
            "must be a DNS label, unique among targets",
            default=profile.kind.value,
        )
        targets.append(profile.read(r, key, item, stack, name))
    names = [t.name for t in targets]
    for name in sorted({n for n in names if names.count(n) > 1}):
        r.fail("targets", names, f"target names must be unique; {name!r} repeats (set name: on each)")
    _collisions(r, targets)
    return tuple(targets)


def _collisions(r: SettingsReader, targets: list[Target]) -> None:
    """Two targets may not take the same place (a Docker host's port, a namespace)."""
    first: dict[str, int] = {}
    for index, target in enumerate(targets):
        place = KINDS[target.kind].occupies(target)
        if place in first:
            r.fail(
                f"targets[{index}]",
                target.name,
                f"collides with targets[{first[place]}]: both use {place}; give each target its own",
            )
        else:
            first[place] = index
