"""`bwsandbox validate` (issue #2). Placeholder until the validator lands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check user files as production would")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    raise NotImplementedError
