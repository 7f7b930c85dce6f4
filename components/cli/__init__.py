"""The ``tizi`` command line: one module per subcommand, thin click functions over the core.

Exit codes: 0 success, 1 the input is invalid (a stack fails its checks, a file
would be overwritten, a bundle is refused), 2 usage errors (click's own).
"""

from __future__ import annotations

import click

from components.cli.bundle import bundle
from components.cli.check import check
from components.cli.destroy import destroy
from components.cli.env import env
from components.cli.errors import TiziGroup
from components.cli.key import key
from components.cli.needs import needs
from components.cli.preview import preview
from components.cli.regions import regions
from components.cli.stack import stack
from components.cli.up import up
from components.cli.values import values


@click.group(cls=TiziGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tizi")
def main() -> None:
    """tizi: deploy one inference service portably, placed where Moroccan law allows."""


for command in (regions, check, stack, values, preview, up, destroy, key, env, needs, bundle):
    main.add_command(command)
