"""Readable tables for people, JSON for scripts: every command offers both."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click


def emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table; the last column is left unpadded so long reasons wrap naturally."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers) - 1)]
    for index, row in enumerate(cells):
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        click.echo("  ".join([*padded, row[-1]]).rstrip())
        if index == 0:
            click.echo("  ".join(["-" * w for w in widths] + ["-" * len(row[-1])]))
