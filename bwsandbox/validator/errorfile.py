"""The error file production attaches to the Technical Contact email (docs/production.md §5),
and the deterministic JSON report.

Error file columns [decided]: the file's original header, then `row` (the
spreadsheet row, header = 1), `status` (`skipped`: the row was not processed;
`partial`: processed without the values named; `applied`: processed, with a
warning; `ignored`: a blank row) and `errors` (every error and warning of the row as `CODE: message`,
joined by ` | `). Only rows with an error or warning appear, in row order;
file-level findings come first, on a line whose original cells are empty and
whose `row` is empty. Notices are left out: they are not errors.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from bwsandbox.spec.codes import Scope, Severity, scope_of
from bwsandbox.validator.formulas import safe_row
from bwsandbox.validator.model import Report, Verdict

ERROR_COLUMNS = ("row", "status", "errors")

# A finding as a JSON report holds it (`Finding.to_dict()`): ingest adds its
# own directory findings (licences, engage terminations, PGP) in that shape,
# and this one writer serves `validate --format csv` and the emailed file.
FindingDict = Mapping[str, object]


def _scope(f: FindingDict) -> Scope:
    return scope_of(f.get("code"), f.get("row"))


def _status(findings: list[FindingDict]) -> str:
    if all(f.get("code") == "ROW_BLANK" for f in findings):
        return "ignored"
    errors = [f for f in findings if f.get("severity") == Severity.ERROR]
    if any(_scope(f) in (Scope.ROW, Scope.FILE) for f in errors):
        return "skipped"
    return "partial" if errors else "applied"


def error_file(
    header: Sequence[str],
    originals: Mapping[int, Sequence[str]],
    findings: Iterable[FindingDict],
    *,
    rejected: bool,
    max_bytes: int | None = None,
) -> bytes:
    """UTF-8 CSV (with CRLF, as Excel writes it) of the rows that failed or warned.

    Every cell that a spreadsheet would run as a formula is written with a
    leading `'` (`formulas.safe_cell`: OWASP's advice against CSV injection;
    the Technical Contact opens this file in Excel). With `max_bytes`, rows
    stop before the file would pass it, and a last line says how many rows
    are left out (the `max_error_file_bytes` / `max_attachment_bytes` limits).
    """
    columns = list(header)
    by_row: dict[int | None, list[FindingDict]] = {}
    for f in findings:
        if f.get("severity") != Severity.NOTICE:
            row = f.get("row")
            by_row.setdefault(row if isinstance(row, int) else None, []).append(f)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(safe_row([*columns, *ERROR_COLUMNS]))
    file_level = by_row.pop(None, [])
    if file_level:
        writer.writerow(safe_row(
            [""] * len(columns) + ["", "skipped" if rejected else "applied", _join(file_level)]
        ))
    rows = sorted(r for r in by_row if r is not None)
    size = len(out.getvalue().encode("utf-8"))
    for done, row in enumerate(rows):
        cells = list(originals.get(row, ()))
        cells = (cells + [""] * len(columns))[: len(columns)] if columns else cells
        line = io.StringIO(newline="")
        csv.writer(line, lineterminator="\r\n").writerow(
            safe_row([*cells, str(row), _status(by_row[row]), _join(by_row[row])])
        )
        text = line.getvalue()
        if max_bytes is not None:
            size += len(text.encode("utf-8"))
            if size + len(columns) + _CUT_ROOM > max_bytes:
                left = len(rows) - done
                writer.writerow([""] * len(columns) + ["", "truncated", (
                    f"{left:,} more row(s) with errors or warnings are not in this file: it would be "
                    f"over {max_bytes:,} bytes. The report lists every finding's count."
                )])
                break
        out.write(text)
    return out.getvalue().encode("utf-8")


_CUT_ROOM = 400  # bytes kept (beyond a comma per column) for the line that says rows were left out


class Judged(Protocol):
    """A report with the original cells of its rows: a `Validation`, or the
    apply layer's judgement of the file against a directory."""

    @property
    def report(self) -> Report: ...

    @property
    def originals(self) -> Mapping[int, Sequence[str]]: ...


def error_csv(validation: Judged) -> bytes:
    """The error file of one validation (`bwsandbox validate --format csv`)."""
    report = validation.report
    return error_file(
        report.header, validation.originals, [f.to_dict() for f in report.findings],
        rejected=report.verdict is Verdict.REJECTED,
    )


def _join(findings: list[FindingDict]) -> str:
    return " | ".join(f"{f.get('code')}: {f.get('message')}" for f in findings)


def report_json(report: Report | list[Report]) -> str:
    """One JSON object per report (an array for several), byte-identical for the same input."""
    doc: object = [r.to_dict() for r in report] if isinstance(report, list) else report.to_dict()
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
