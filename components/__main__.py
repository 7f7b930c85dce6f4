"""``python -m components`` is the ``tizi`` command."""

from components.cli import main

main(prog_name="tizi")
