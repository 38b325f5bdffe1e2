"""`bwsandbox validate`: what production would do with each file.

    bwsandbox validate [--profile core|engage] [--locale en-US|en-GB]
                       [--custom-key K ...] [--context FILE.json]
                       [--format text|json|csv] FILE...
    bwsandbox validate --tenant NAME [--data-dir DIR] [--format ...] FILE...

Each file is judged against a directory: a tenant's own (its settings, its
users, the sandbox clock: exactly what an upload of the file would do, and
nothing is changed), one given as JSON (`--context`), or none (an empty
directory, as a new tenant has). The report has a `plan`: the `applied`
counts and `changes` an upload would make, in the shape of a processed
report's keys of the same names.

`-` reads standard input. Output formats:
- text: a table per file, grouped by row, with the fix hint of each code;
- json: one JSON object for one file, a JSON array of objects for several;
- csv:  the error file production attaches to its email (one FILE only).
Exit codes: 0 no error finding, 1 an error finding or a rejected file, 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bwsandbox.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from bwsandbox.ingest.plan import Judgement

    Progress = Callable[[int, int], None]
    from bwsandbox.validator import Context

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
    p.add_argument(
        "--tenant",
        metavar="NAME",
        default=None,
        help="judge against this sandbox tenant (its settings and current directory); changes nothing",
    )
    p.add_argument(
        "--as", metavar="NAME", dest="upload_name", default=None,
        help="with --tenant: the name the file would be uploaded under (default: its own; needed for -)",
    )
    p.add_argument(
        "--data-dir", metavar="DIR", default=None,
        help="with --tenant: data directory (default: $BWSANDBOX_HOME, else ./.bwsandbox)",
    )
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format")
    p.add_argument("files", nargs="+", metavar="FILE", help="file to check; - for standard input")
    p.set_defaults(handler=_run)


def _max_bytes(args: argparse.Namespace) -> int:
    """The largest file checked: what the sandbox accepts as an upload
    (max_file_bytes, from the same settings `serve` reads: --data-dir's
    config.json, BWSANDBOX_MAX_FILE_BYTES, the default 2 GiB)."""
    from bwsandbox import config

    return config.load({"data_dir": args.data_dir}).max_file_bytes


def _too_large(name: str, size: str, limit: int) -> UsageError:
    return UsageError(f"{name}: {size} bytes, over max_file_bytes ({limit:,}), the largest upload the "
                      "sandbox accepts: not checked (split the file, or raise max_file_bytes)")


def _check(name: str, limit: int) -> Path | None:
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
    if path.is_file() and (size := path.stat().st_size) > limit:  # refused before a byte is read
        raise _too_large(name, f"{size:,}", limit)
    return path


def _read(name: str, limit: int) -> bytes:
    """FILE (or standard input) whole, up to `limit` bytes: the read stops one
    byte past it, so a device or a pipe that never ends (/dev/zero) is
    refused, not read until memory runs out (fsutil.read_bounded)."""
    from bwsandbox import fsutil

    path = _check(name, limit)
    try:
        return fsutil.read_bounded(sys.stdin.buffer if path is None else path, limit)
    except fsutil.TooLarge as exc:
        size = f"more than {limit:,}" if exc.size is None else f"{exc.size:,}"
        raise _too_large("standard input" if name == "-" else name, size, limit) from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot read ({exc.strerror})") from exc


def _context(args: argparse.Namespace, limit: int) -> Context:
    import dataclasses
    import json

    from bwsandbox.spec.fields import Profile
    from bwsandbox.validator import Context

    context = Context()
    if args.context:
        try:
            context = Context.from_dict(json.loads(_read(args.context, limit)))
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


def _run(args: argparse.Namespace) -> int:
    from bwsandbox.cli import export
    from bwsandbox.validator import error_csv

    if args.format == "csv" and len(args.files) > 1:
        raise UsageError("--format csv writes one error file: give exactly one FILE")
    if args.files.count("-") > 1:
        raise UsageError("standard input (-) can be read only once")
    if args.tenant is not None and (args.context or args.profile or args.locale or args.custom_keys):
        raise UsageError("--tenant judges with that tenant's own settings: drop --context, --profile, "
                         "--locale and --custom-key")
    if (args.data_dir is not None or args.upload_name is not None) and args.tenant is None:
        raise UsageError("--data-dir and --as go with --tenant")
    if args.upload_name is not None and len(args.files) > 1:
        raise UsageError("--as names one file: give exactly one FILE")
    if args.tenant is not None and "-" in args.files and args.upload_name is None:
        raise UsageError("standard input has no name: give --as NAME, the name it would be uploaded "
                         "under (its date and suffix matter, and .pgp says it is encrypted)")
    limit = _max_bytes(args)
    for name in args.files:
        _check(name, limit)  # usage errors before any output
    judge = _tenant_judge(args) if args.tenant is not None else _context_judge(args, limit)
    tty = args.format == "text" and sys.stdout.isatty()
    results: list[Judgement] = []
    for name in args.files:  # one file in memory at a time
        data = _read(name, limit)
        # A non-UTF-8 file name is shown with \x escapes: the JSON stays valid UTF-8.
        label = "<stdin>" if name == "-" else name.encode("utf-8", "surrogateescape").decode(
            "utf-8", "backslashreplace"
        )
        if tty and len(data) >= _PROGRESS_BYTES and args.tenant is None:
            from bwsandbox.cli import render

            with render.progress(f"Validating {label} ({len(data) / 1e6:.0f} MB)") as tick:
                results.append(judge(data, label, tick))
        else:
            results.append(judge(data, label, None))
        del data
    if args.format == "json":
        docs = [{**j.report.to_dict(), "plan": j.plan} for j in results]
        export.write_json(docs[0] if len(docs) == 1 else docs)
    elif args.format == "csv":
        export.write_csv_bytes(error_csv(results[0]))
    else:
        from bwsandbox.cli import render

        render.render_validations(results)
    failed = any(j.report.has_errors or j.report.verdict == "rejected" for j in results)
    return 1 if failed else 0


def _context_judge(
    args: argparse.Namespace, limit: int
) -> Callable[[bytes, str, Progress | None], Judgement]:
    from bwsandbox.ingest.plan import validate

    context = _context(args, limit)

    def judge(data: bytes, label: str, progress: Progress | None) -> Judgement:
        return validate(data, context, name=label, progress=progress)

    return judge


def _tenant_judge(args: argparse.Namespace) -> Callable[[bytes, str, Progress | None], Judgement]:
    """Each file is judged as the worker would judge its upload
    (`process.judge_upload`), against the tenant as it is when it is read."""
    from bwsandbox import clock as clock_mod
    from bwsandbox import tenants as tenants_mod
    from bwsandbox.cli.main import open_store
    from bwsandbox.ingest.process import Bounds, judge_upload

    def judge(data: bytes, label: str, progress: Progress | None) -> Judgement:
        with open_store(args) as (settings, conn):
            tenant = tenants_mod.get(conn, args.tenant)
            if tenant is None:
                raise UsageError(f"no tenant named {args.tenant!r} in {settings.data_dir}")
            return judge_upload(
                conn, data_dir=settings.data_dir, tenant=tenant, name=args.upload_name or Path(label).name,
                data=data,
                clock=clock_mod.load(conn), termination_limit=settings.engage_termination_limit,
                bounds=Bounds.from_settings(settings),
            )

    return judge
