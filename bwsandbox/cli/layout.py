"""Layouts that read at 80 columns, at 200, and in a log (docs/server.md
"Reading it anywhere").

- `stdout()`: on a terminal, rich at the terminal's width; piped or
  redirected (`| grep`, a CI log), no colours and no width at all, so
  nothing is wrapped or cut and every record stays on its own line(s).
- `print_records()`: a list (files, users, emails, tenants) as a borderless
  table when it fits; on a narrow terminal the least useful columns go
  first (said in a note), and if it still does not fit, one block per record.
- `print_findings()`: findings as one block per finding (where, severity,
  code, column and value on one line; the message and the fix each on their
  own line below), at any width; never a table whose message column is a
  sliver.

Everything the tenant wrote goes through `cli.safe`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from bwsandbox.cli import safe
from bwsandbox.spec.codes import CATALOGUE

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "notice": "cyan"}
VERDICT_STYLE = {"accepted": "bold green", "partial": "bold yellow", "rejected": "bold red"}
LOG_WIDTH = 10_000  # "no width": a log line is as long as its text
INDENT = 4


def stdout() -> Console:
    """The console for a command's output."""
    probe = Console(highlight=False)
    if probe.is_terminal:
        return probe
    return Console(width=LOG_WIDTH, color_system=None, highlight=False)


def _cell(value: object) -> Text:
    return safe.text(value)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    return table


def fits(console: Console, renderable: Any) -> bool:
    """Whether `renderable` at its natural width fits the console (a table
    measured at the console's own width never says it is wider)."""
    natural = Measurement.get(console, console.options.update_width(LOG_WIDTH), renderable).maximum
    return natural <= console.width


def print_records(
    console: Console,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    drop: Sequence[str] = (),
    head: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> None:
    """Rows as a table if it fits the console, leaving out the columns of
    `drop` (in that order) as long as it does not; else one block per row:
    the values of the `head` columns (default: the first) on one line, then
    each other non-empty value as `column: value` on its own line. A column
    empty in every row is left out, unless it is in `keep` (a listing whose
    columns stay the same for a script that reads them)."""
    shown_at = [i for i, c in enumerate(columns)
                if c in keep or any(row[i] not in (None, "") for row in rows)]
    columns = [columns[i] for i in shown_at]
    rows = [[row[i] for i in shown_at] for row in rows]
    drop = [c for c in drop if c in columns]
    rows_all = rows
    shown = list(columns)
    table = _table(shown, rows)
    dropped: list[str] = []
    for column in drop:
        if fits(console, table):
            break
        at = shown.index(column)
        shown.pop(at)
        dropped.append(column)
        rows = [[v for i, v in enumerate(row) if i != at] for row in rows]
        table = _table(shown, rows)
    if fits(console, table):
        console.print(table)
        if dropped:
            console.print(Text(f"(not shown at this width: {', '.join(dropped)}; widen the terminal, "
                               "or use --format json)", style="dim"))
        return
    print_blocks(console, columns, rows_all, head=head or columns[:1])


def print_blocks(
    console: Console, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, head: Sequence[str]
) -> None:
    at = [columns.index(c) for c in head if c in columns]
    for n, row in enumerate(rows):
        if n:
            console.print()
        first = Text("  ").join(
            safe.text(f"#{row[i]}" if columns[i] == "#" else row[i], style="bold" if k == 0 else "")
            for k, i in enumerate(at)
            if row[i] not in (None, "")
        )
        console.print(first)
        for i, (column, value) in enumerate(zip(columns, row, strict=True)):
            if i in at or value in (None, ""):
                continue
            line = Text.assemble((f"{column}: ", "dim"), safe.text(value))
            console.print(Padding(line, (0, 0, 0, INDENT), expand=False))


# --- findings ------------------------------------------------------------------------


def _hint(code: str) -> str:
    known = CATALOGUE.get(code)
    return known.hint if known is not None else ""


def finding_head(f: Mapping[str, object]) -> Text:
    row = f.get("row")
    severity = str(f.get("severity") or "")
    head = Text.assemble(
        ("file" if row is None else f"row {row}", "bold"), "  ",
        (severity, SEVERITY_STYLE.get(severity, "")), "  ",
        (safe.plain(f.get("code")), "bold"),
    )
    column, value = f.get("column"), f.get("value")
    if column:
        head.append("  ")
        head.append(safe.text(column))
    if value is not None and (column or value != ""):
        head.append(" " if column else "  ")
        head.append(safe.text(f'"{safe.plain(value)}"', style="dim"))
    return head


def print_findings(
    console: Console,
    findings: Sequence[Mapping[str, object]],
    *,
    hints: bool = True,
    limit: int | None = None,
) -> None:
    """One block per finding; a blank line between rows."""
    shown = findings if limit is None else findings[:limit]
    previous: object = "start"
    for f in shown:
        if previous != "start" and f.get("row") != previous:
            console.print()
        previous = f.get("row")
        console.print(finding_head(f))
        console.print(Padding(safe.text(f.get("message")), (0, 0, 0, INDENT), expand=False))
        hint = _hint(str(f.get("code"))) if hints else ""
        if hint:
            console.print(Padding(Text(f"fix: {hint}", style="dim"), (0, 0, 0, INDENT), expand=False))
    if limit is not None and len(findings) > limit:
        console.print()
        console.print(f"… and {len(findings) - limit} more findings: use --format json, "
                      "or --format csv for the error file.")


def severity_summary(findings: Sequence[Mapping[str, object]]) -> Text:
    counts: dict[str, int] = {}
    for f in findings:
        counts[str(f.get("severity"))] = counts.get(str(f.get("severity")), 0) + 1
    parts = [f"{counts[s]} {s}{'s' if counts[s] > 1 else ''}" for s in ("error", "warning", "notice")
             if s in counts]
    return Text(", ".join(parts) or "no findings", style="bold")
