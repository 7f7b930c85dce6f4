"""The command line's error boundary: every failure is a short line and a meaningful exit code.

Click already reports usage errors (exit 2) and ``ClickException`` (exit 1).  What is left
are failures of the world around a command: the file system (a read-only folder, a name
too long, a missing file), a missing program (the docker CLI), and the engine driven
through the Automation API, whose exceptions carry the engine's whole output.  They are
turned into one line each (the engine's error lines, or its stack problems one per line),
escaped and cut short, with exit code 1; a traceback is never shown.
"""

from __future__ import annotations

from typing import Any

import click

from components.problems import safe_text

LINE = 300
MAX_LINES = 20


def engine_error_lines(output: str) -> list[str]:
    """The lines worth showing from the engine's output: its errors and tizi's problem lines."""
    wanted = []
    for raw in output.splitlines():
        line = raw.strip()
        relevant = line.startswith(("- tizi:", "error:")) or "invalid stack setting" in line
        if relevant and line not in wanted:
            wanted.append(line)
    if not wanted:
        tail = [line.strip() for line in output.splitlines() if line.strip()]
        wanted = tail[-1:] or ["the engine failed without a message"]
    return [safe_text(line, LINE) for line in wanted[:MAX_LINES]]


def _os_error_line(error: OSError) -> str:
    """The reason first, then the (shortened) file name: a long name cannot hide the reason."""
    reason = error.strerror or str(error)
    return f"{reason}: {safe_text(str(error.filename), 120)}" if error.filename else safe_text(reason, LINE)


class TiziGroup(click.Group):
    """A click group that turns the world's failures into clean lines (see module notes)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except FileNotFoundError as error:
            raise click.ClickException(_os_error_line(error)) from None
        except OSError as error:
            raise click.ClickException(_os_error_line(error)) from None
        except Exception as error:
            if type(error).__module__.startswith("pulumi.automation"):
                lines = engine_error_lines(str(error))  # the engine's stdout and stderr
                raise click.ClickException("\n".join(lines)) from None
            raise
