"""`bwsandbox validate`: what production would do with each file (issue #2).

    bwsandbox validate [--profile core|engage] [--locale en-US|en-GB]
                       [--custom-key K ...] [--context FILE.json]
                       [--format text|json|csv] FILE...

`-` reads standard input. Output formats:
- text: a table per file, grouped by row, with the fix hint of each code;
- json: one JSON object for one file, a JSON array of objects for several;
- csv:  the error file production attaches to its email (one FILE only).
Exit codes: 0 no error finding, 1 an error finding or a rejected file, 2 usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bwsandbox.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bwsandbox.validator import ApplicableRow, Context

_PROGRESS_BYTES = 8 * 1024 * 1024  # show a progress bar for files this big, on a terminal


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "validate",
        help="check user files as production would",
        description="Check HRIS user feeds as Betterworks production would read them.",
    )
    p.add_argument(
        "--profile", choices=("core", "engage"), default=None, help="product profile (default: core)"
    )
    p.add_argument(
        "--locale",
        choices=("en-US", "en-GB"),
        default=None,
        help="tenant locale: settles ambiguous dd/mm vs mm/dd dates (default: en-US)",
    )
    p.add_argument(
        "--context",
        metavar="FILE",
        default=None,
        help="tenant context as JSON: profile, locale, custom_keys, licenses_available, "
        "directory {users: [...]} (the fixtures' *.context.json format); the options override it",
    )
    p.add_argument(
        "--custom-key",
        action="append",
        default=[],
        metavar="K",
        dest="custom_keys",
        help="a custom key defined in the tenant (repeatable)",
    )
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format")
    p.add_argument("files", nargs="+", metavar="FILE", help="file to check; - for standard input")
    p.set_defaults(handler=_run)


def _check(name: str) -> Path | None:
    """Usage errors about FILE, found before any file is read or reported."""
    if name == "-":
        return None
    path = Path(name)
    if not path.exists():
        raise UsageError(f"{name}: no such file")
    if path.is_dir():
        raise UsageError(f"{name}: is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{name}: cannot read (permission denied)")
    return path


def _read(name: str) -> bytes:
    path = _check(name)
    if path is None:
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{name}: cannot read ({exc.strerror})") from exc


def _context(args: argparse.Namespace) -> Context:
    import dataclasses
    import json

    from bwsandbox.spec.fields import Profile
    from bwsandbox.validator import Context

    context = Context()
    if args.context:
        try:
            context = Context.from_dict(json.loads(_read(args.context)))
        except (ValueError, TypeError, AttributeError) as exc:
            raise UsageError(f"{args.context}: not a valid context ({exc})") from exc
    from bwsandbox.spec.fields import custom_key_problem

    profile = Profile(args.profile) if args.profile else context.profile
    for key in args.custom_keys:
        if (problem := custom_key_problem(key, profile)) is not None:  # as `tenant add` checks it
            raise UsageError(problem)
    changes: dict[str, object] = {"custom_keys": context.custom_keys | frozenset(args.custom_keys)}
    if args.profile:
        changes["profile"] = Profile(args.profile)
    if args.locale:
        changes["locale"] = args.locale
    return dataclasses.replace(context, **changes)  # type: ignore[arg-type]


def _no_rows() -> Iterator[ApplicableRow]:
    return iter(())


def _run(args: argparse.Namespace) -> int:
    from bwsandbox.validator import Validation, error_csv, report_json, validate

    if args.format == "csv" and len(args.files) > 1:
        raise UsageError("--format csv writes one error file: give exactly one FILE")
    if args.files.count("-") > 1:
        raise UsageError("standard input (-) can be read only once")
    context = _context(args)
    for name in args.files:
        _check(name)  # usage errors before any output
    tty = args.format == "text" and sys.stdout.isatty()
    results: list[Validation] = []
    for name in args.files:  # one file in memory at a time
        data = _read(name)
        # A non-UTF-8 file name is shown with \x escapes: the JSON stays valid UTF-8.
        label = "<stdin>" if name == "-" else name.encode("utf-8", "surrogateescape").decode(
            "utf-8", "backslashreplace"
        )
        if tty and len(data) >= _PROGRESS_BYTES:
            from bwsandbox.cli import render

            with render.progress(f"Validating {label} ({len(data) / 1e6:.0f} MB)") as tick:
                validation = validate(data, context, name=label, progress=tick)
        else:
            validation = validate(data, context, name=label)
        del data
        # Keep the report and the flagged rows' cells, not the parsed table.
        results.append(dataclasses.replace(validation, rows_factory=_no_rows))
    if args.format == "json":
        reports = [v.report for v in results]
        sys.stdout.write(report_json(reports[0] if len(reports) == 1 else reports))
    elif args.format == "csv":
        sys.stdout.flush()
        sys.stdout.buffer.write(error_csv(results[0]))
        sys.stdout.buffer.flush()
    else:
        from bwsandbox.cli import render

        render.render_validations(results)
    failed = any(v.report.has_errors or v.report.verdict == "rejected" for v in results)
    return 1 if failed else 0
