"""`bwsandbox template`: blank templates and a filled example."""

from __future__ import annotations

import argparse
from pathlib import Path

from bwsandbox.errors import UsageError
from bwsandbox.spec.fields import Profile
from bwsandbox.templates import build


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("template", help="write blank templates and a filled example")
    p.add_argument("--profile", choices=[str(x) for x in Profile], default="core")
    p.add_argument(
        "--advanced", action="store_true", help="every optional column, plus the department file"
    )
    p.add_argument("--output", "-o", metavar="DIR", default=".", help="folder to write into (default .)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    files = build(Profile(args.profile), advanced=args.advanced)
    clashes = [f.name for f in files if (out / f.name).exists()]
    if clashes and not args.force:
        raise UsageError(f"would overwrite {', '.join(clashes)} in {out} (use --force)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            (out / f.name).write_text(f.content, encoding="utf-8", newline="")
            print(f"wrote {out / f.name}")
    except OSError as exc:
        raise UsageError(f"cannot write templates into {out}: {exc.strerror or exc}") from exc
    example = next(f.name for f in files if "_template" not in f.name)
    if args.profile == "engage":
        print(f"next: encrypt {example} to the tenant's key as {example}.pgp (`bwsandbox pgp export-key`), "
              f"upload it into / with its empty marker {example.removesuffix('.csv')}.csv.done.pgp")
    else:
        print(f"next: `bwsandbox validate {out / example}`, then upload it into /incoming "
              "(its name carries today's date, as production asks)")
    return 0
