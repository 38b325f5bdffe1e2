"""`bwsandbox certify`: pre-certify a vendor's real export job (docs/certify.md)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from bwsandbox.errors import UsageError
from bwsandbox.spec.fields import Profile


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "certify",
        help="run your export job against a fresh sandbox and judge it",
        description="Runs COMMAND against a fresh sandbox with the connection details in "
        "BWSANDBOX_* environment variables: a first run, a re-run with the same data, a run whose "
        "connection drops mid-upload, a run whose first login is refused, and a run after a "
        "host-key change; then judges the published criteria C01-C18.",
    )
    p.add_argument("--run", required=True, metavar="COMMAND", help="the export job, run by the shell")
    p.add_argument("--roster", metavar="FILE", type=Path, help="expected users (a user CSV)")
    p.add_argument(
        "--profile", choices=[str(x) for x in Profile], default="core",
        help="core (default): /incoming, dated .csv/.json names; engage: PGP-encrypted "
        "employees.YYYYMMDDHHMM.csv.pgp + .done.pgp marker in /, the key in BWSANDBOX_PGP_PUBLIC_KEY",
    )
    p.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS", help="per run (default 120)")
    p.add_argument(
        "--no-faults", action="store_true",
        help="skip the dropped-connection and refused-login runs (C13-C18 are then n/a)",
    )
    p.add_argument("--junit", metavar="PATH", type=Path, help="write a JUnit XML report")
    p.add_argument("--json", metavar="PATH", type=Path, help="write a JSON report")
    p.add_argument("--markdown", metavar="PATH", type=Path, help="write the Markdown certificate")
    p.add_argument("--html", metavar="PATH", type=Path,
                   help="write the certificate as one self-contained HTML file")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from bwsandbox.certify import writers
    from bwsandbox.certify.runner import certify
    from bwsandbox.cli.render import certification_summary, console

    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    outputs = (
        (args.junit, writers.to_junit),
        (args.json, writers.to_json),
        (args.markdown, writers.to_markdown),
        (args.html, writers.to_html),
    )
    for path, _write in outputs:
        if path is not None:
            _check_writable(path)
    err = console(stderr=True)
    with terminate_interrupts():  # SIGTERM as Ctrl-C: the running job is ended, the sandbox stopped
        cert = certify(
            args.run, roster=args.roster, profile=Profile(args.profile), timeout=args.timeout,
            with_faults=not args.no_faults, progress=lambda msg: err.print(msg, style="dim", markup=False),
        )
    for path, text in outputs:
        if path is not None:
            try:
                path.write_text(text(cert), encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror}") from exc
    out = console()
    out.print(certification_summary(cert))
    # When a run failed, the job's own words say why (a traceback, curl's
    # error): shown as plain text, never read as markup.
    if failed := writers.run_output_text(cert):
        out.print()
        out.print(failed, markup=False)
    sys.stdout.flush()
    return 0 if cert.passed else 1


def _check_writable(path: Path) -> None:
    """Refuse a report path before the runs (minutes), not after them.
    Nothing is created: a refused run leaves no empty report behind."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: no directory {parent}")
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {path}: permission denied")


@contextmanager
def terminate_interrupts() -> Iterator[None]:
    """While certify runs, SIGTERM interrupts it as Ctrl-C does, so the
    running job's group is ended and the sandbox stopped on the way out
    (the default SIGTERM would end certify at once, orphaning the job).
    The command's own: the library `certify()` sets no handler, as it may
    run inside an integrator's test process. Only the main thread can set
    a handler; elsewhere nothing changes. The handler before is restored;
    one Python cannot name (set from C: None) becomes SIG_DFL."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
