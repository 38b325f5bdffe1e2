"""`python -m bwsandbox.cli` is the `bwsandbox` command."""

from bwsandbox.cli.main import run

run()
