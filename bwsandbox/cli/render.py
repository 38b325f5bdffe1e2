"""The one module that renders with rich (GUIDE: rich confined to the rendering
layer). Commands call these functions; each command appends its own below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from bwsandbox.spec.codes import CATALOGUE

if TYPE_CHECKING:
    from bwsandbox.validator import Validation

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "notice": "cyan"}
_VERDICT_STYLE = {"accepted": "bold green", "partial": "bold yellow", "rejected": "bold red"}
MAX_TEXT_FINDINGS = 200  # beyond this, point to --format json / csv


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on the terminal (issue #5); yields the
    `progress(done, total)` callback to hand to `validate()`."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
        console=console(stderr=True), transient=True,
    )
    with bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


# --- validate --------------------------------------------------------------------


def render_validations(results: Sequence[Validation], out: Console | None = None) -> None:
    out = out or console()
    for n, validation in enumerate(results):
        if n:
            out.print()
        render_validation(validation, out)


def render_validation(validation: Validation, out: Console) -> None:
    report = validation.report
    verdict = str(report.verdict)
    out.print(
        Text.assemble(
            (report.file, "bold"),
            "  ",
            (verdict.upper(), _VERDICT_STYLE[verdict]),
            f"  profile {report.profile} · {report.kind} · rows: {report.total} total, "
            f"{report.valid} applied, {report.skipped} skipped",
        )
    )
    if not report.findings:
        out.print(Text("No findings: production would apply every row.", style="green"))
        return
    counts: dict[str, int] = {}
    for f in report.findings:
        counts[str(f.severity)] = counts.get(str(f.severity), 0) + 1
    table = Table(show_lines=False, expand=False, pad_edge=False)
    table.add_column("Row", justify="right", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Code", no_wrap=True)
    table.add_column("Column")
    table.add_column("Value", overflow="fold", max_width=30)
    table.add_column("Message and fix", overflow="fold", ratio=1)
    shown = report.findings[:MAX_TEXT_FINDINGS]
    previous: int | None | str = "start"
    for f in shown:
        new_group = f.row != previous
        if new_group and previous != "start":
            table.add_section()
        previous = f.row
        hint = CATALOGUE[f.code].hint
        message = Text(f.message)
        message.append(f"\nfix: {hint}", style="dim")
        table.add_row(
            ("file" if f.row is None else str(f.row)) if new_group else "",
            Text(str(f.severity), style=_SEVERITY_STYLE[str(f.severity)]),
            f.code,
            f.column or "",
            "" if f.value is None else repr(f.value)[1:-1] if f.value else '""',
            message,
        )
    out.print(table)
    if len(report.findings) > len(shown):
        out.print(
            f"… and {len(report.findings) - len(shown)} more findings: use --format json, "
            "or --format csv for the error file."
        )
    summary = ", ".join(
        f"{counts[s]} {s}{'s' if counts[s] > 1 else ''}"
        for s in ("error", "warning", "notice")
        if s in counts
    )
    out.print(Text(summary, style="bold"))


# --- certify ---------------------------------------------------------------------

if TYPE_CHECKING:
    from bwsandbox.certify.model import Certification


def certification_summary(cert: Certification) -> Group:
    """The terminal summary of `bwsandbox certify`: each criterion with its
    outcome, then its evidence indented below (readable at any width)."""
    from bwsandbox.certify.model import Outcome

    style = {Outcome.PASS: "bold green", Outcome.FAIL: "bold red", Outcome.NOT_APPLICABLE: "dim"}
    verdict = "[bold green]PASSED[/]" if cert.passed else "[bold red]NOT PASSED[/]"
    lines: list[Text] = [Text.from_markup(f"bwsandbox {cert.version} pre-certification: {verdict}"), Text()]
    for r in cert.results:
        label = {Outcome.PASS: "PASS", Outcome.FAIL: "FAIL", Outcome.NOT_APPLICABLE: "N/A "}[r.outcome]
        line = Text.assemble((f" {label} ", style[r.outcome]), f" {r.criterion.id} {r.criterion.title}")
        if not r.criterion.required:
            line.append(" (advisory)", style="dim")
        lines.append(line)
        lines.extend(Text(f"        {e}", style="dim") for e in r.evidence)
    return Group(*lines)
