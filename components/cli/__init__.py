"""The ``tizi`` command line: one module per subcommand, thin click functions over the core.

Exit codes: 0 success, 1 the input is invalid (a stack fails its checks, a file
would be overwritten), 2 usage errors (click's own).
"""

from __future__ import annotations

import click

from components.cli.check import check
from components.cli.deploy import destroy, key, preview, up
from components.cli.regions import regions
from components.cli.stack import stack
from components.cli.values import values


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tizi")
def main() -> None:
    """tizi: deploy one inference service portably, placed where Moroccan law allows."""


main.add_command(regions)
main.add_command(check)
main.add_command(stack)
main.add_command(values)
main.add_command(preview)
main.add_command(up)
main.add_command(destroy)
main.add_command(key)

try:  # the offline bundle commands live beside the edge tooling
    from components.cli.bundle import bundle

    main.add_command(bundle)
except ImportError:  # pragma: no cover - only while the bundle module is absent
    pass
