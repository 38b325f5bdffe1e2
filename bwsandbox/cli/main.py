"""`bwsandbox` entry point: parse, dispatch, map exceptions to exit codes.

Each command lives in its own module exposing `register(subparsers)`, which
adds a parser and sets `handler=function(args) -> int`. Exit codes
(GUIDE convention 5): 0 ok, 1 findings or failure, 2 usage error. No
traceback ever reaches the user; set BWSANDBOX_DEBUG=1 to see one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bwsandbox import store
from bwsandbox._version import __version__
from bwsandbox.config import Settings, load
from bwsandbox.errors import BwsandboxError, UsageError

# One line per command module; each registers its own sub-commands.
COMMAND_MODULES = (
    "bwsandbox.cli.cmd_validate",
    "bwsandbox.cli.cmd_template",
    "bwsandbox.cli.cmd_certify",
    "bwsandbox.cli.cmd_serve",
    "bwsandbox.cli.cmd_tenant",
    "bwsandbox.cli.cmd_files",
    "bwsandbox.cli.cmd_hostkey",
    "bwsandbox.cli.cmd_directory",
    "bwsandbox.cli.cmd_report",
    "bwsandbox.cli.cmd_emails",
    "bwsandbox.cli.cmd_clock",
    "bwsandbox.cli.cmd_fault",
    "bwsandbox.cli.cmd_admin",
    "bwsandbox.cli.cmd_pgp",
)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors, which is our contract too; we only
    make sure it never prints a traceback."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; given `argv` that names a command, only that
    command's module is imported (`validate` never loads asyncssh or the
    server: its start-up time is a target, docs/benchmarks.md)."""
    parser = _Parser(prog="bwsandbox", description="Local stand-in for the Betterworks SFTP user feed.")
    parser.add_argument("--version", action="version", version=f"bwsandbox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    by_command = {name.rsplit(".cmd_", 1)[1]: name for name in COMMAND_MODULES}
    wanted = by_command.get(argv[0]) if argv else None
    for name in [wanted] if wanted else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """Every stateful command takes --data-dir (default $BWSANDBOX_HOME, else ./.bwsandbox)."""
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="data directory (default: $BWSANDBOX_HOME, else ./.bwsandbox)",
    )


@contextmanager
def open_store(
    args: argparse.Namespace, *, create: bool = False
) -> Iterator[tuple[Settings, sqlite3.Connection]]:
    """Settings (layered, with --data-dir) and a store connection, closed after.

    Only commands that set a sandbox up (`tenant add`; `serve` opens its own)
    create a missing data directory: any other command on a mistyped one says
    so instead of answering from a new, empty sandbox."""
    settings = load({"data_dir": args.data_dir})
    if not create and not settings.db_path.exists():
        raise UsageError(
            f"no sandbox in {settings.data_dir} (no {settings.db_path.name}): check --data-dir or "
            "$BWSANDBOX_HOME, or start one with `bwsandbox serve`"
        )
    conn = store.connect(settings.db_path)
    try:
        yield settings, conn
    finally:
        conn.close()


def _tolerant_output() -> None:
    """A terminal or pipe that cannot encode a name (`PYTHONIOENCODING=ascii`,
    a C locale) gets an escape instead of a crash."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_output()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except BwsandboxError as exc:
        print(f"bwsandbox: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bwsandbox: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the file system said no: say what and where, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"bwsandbox: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug of ours: one clear line, never a traceback
        if os.environ.get("BWSANDBOX_DEBUG"):
            traceback.print_exc()
        print(
            f"bwsandbox: internal error: {type(exc).__name__}: {exc} "
            "(set BWSANDBOX_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 1


def run() -> None:
    sys.exit(main())
