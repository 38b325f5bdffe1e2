"""The error file production attaches to the Technical Contact email (SPEC §5),
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

from bwsandbox.spec.codes import Scope, Severity
from bwsandbox.validator.model import Finding, Report, Validation

ERROR_COLUMNS = ("row", "status", "errors")


def _status(findings: list[Finding]) -> str:
    if all(f.code == "ROW_BLANK" for f in findings):
        return "ignored"
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if any(f.scope in (Scope.ROW, Scope.FILE) for f in errors):
        return "skipped"
    return "partial" if errors else "applied"


def error_csv(validation: Validation) -> bytes:
    """UTF-8 CSV (with CRLF, as Excel writes it) of the rows that failed or warned."""
    report = validation.report
    header = list(report.header)
    by_row: dict[int | None, list[Finding]] = {}
    for f in report.findings:
        if f.severity is not Severity.NOTICE:
            by_row.setdefault(f.row, []).append(f)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*header, *ERROR_COLUMNS])
    file_level = by_row.pop(None, [])
    if file_level:
        status = "skipped" if report.verdict == "rejected" else "applied"
        writer.writerow([""] * len(header) + ["", status, _join(file_level)])
    for row in sorted(r for r in by_row if r is not None):
        cells = list(validation.originals.get(row, ()))
        cells = (cells + [""] * len(header))[: len(header)] if header else cells
        writer.writerow([*cells, str(row), _status(by_row[row]), _join(by_row[row])])
    return out.getvalue().encode("utf-8")


def _join(findings: list[Finding]) -> str:
    return " | ".join(f"{f.code}: {f.message}" for f in findings)


def report_json(report: Report | list[Report]) -> str:
    """One JSON object per report (an array for several), byte-identical for the same input."""
    doc: object = [r.to_dict() for r in report] if isinstance(report, list) else report.to_dict()
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
