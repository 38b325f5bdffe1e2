"""The one module that renders with rich (GUIDE: rich confined to the rendering
layer). Commands call these functions; each command appends its own below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.text import Text

from bwsandbox.cli import layout, safe

if TYPE_CHECKING:
    from bwsandbox.ingest.plan import Judgement

MAX_TEXT_FINDINGS = 200  # beyond this, point to --format json / csv


def console(stderr: bool = False) -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=False) if stderr else layout.stdout()


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on the terminal; yields the
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


def render_validations(results: Sequence[Judgement], out: Console | None = None) -> None:
    out = out or console()
    for n, validation in enumerate(results):
        if n:
            out.print()
        render_validation(validation, out)


def render_validation(validation: Judgement, out: Console) -> None:
    """A file's verdict, then its findings as blocks (`layout.print_findings`):
    readable at 80 columns and in a log; then its plan (what it would change)."""
    report = validation.report
    verdict = str(report.verdict)
    out.print(
        Text.assemble(
            safe.text(report.file, style="bold"),
            "  ",
            (verdict.upper(), layout.VERDICT_STYLE[verdict]),
            f"  profile {report.profile} · {report.kind} · rows: {report.total} total, "
            f"{report.valid} applied, {report.skipped} skipped",
        )
    )
    if not report.findings:
        out.print(Text("No findings: production would apply every row.", style="green"))
    else:
        out.print()
        findings = [f.to_dict() for f in report.findings]
        layout.print_findings(out, findings, limit=MAX_TEXT_FINDINGS)
        out.print()
        out.print(layout.severity_summary(findings))
    render_plan(validation.plan, out)


PLAN_SHOWN = 20  # changes listed in the text output; --format json has the report's list


def render_plan(plan: dict[str, object], out: Console) -> None:
    """`Plan: created 2, updated 1`, then the first changes, one per line."""
    applied = plan.get("applied")
    counts = ", ".join(f"{k} {v}" for k, v in applied.items() if v) if isinstance(applied, dict) else ""
    out.print(Text.assemble(("Plan: ", "bold"), counts or "nothing would change"))
    changes = plan.get("changes")
    listed = changes if isinstance(changes, list) else []
    for change in listed[:PLAN_SHOWN]:
        fields = change.get("fields") or {}
        names = ", ".join(sorted(k for k in fields if k != "status"))
        row = f"row {change['row']}" if change.get("row") is not None else "not in the file"
        out.print(Text.assemble(
            f"  {change['action']:<12} ", safe.text(str(change["email"])), f"  ({row}",
            f"; {names})" if names else ")",
        ))  # fmt: skip
    if len(listed) > PLAN_SHOWN:
        out.print(Text(f"  … and {len(listed) - PLAN_SHOWN:,} more (--format json lists them)", style="dim"))


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
