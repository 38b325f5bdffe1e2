"""Building findings from the catalogue: severity always comes from the code."""

from __future__ import annotations

from bwsandbox.spec.codes import CATALOGUE, Scope, Severity
from bwsandbox.validator.model import Finding


def finding(
    code: str, row: int | None, message: str, *, column: str | None = None, value: str | None = None
) -> Finding:
    return Finding(
        code=code, severity=CATALOGUE[code].severity, row=row, column=column, value=value, message=message
    )


def file_finding(code: str, message: str, *, column: str | None = None, value: str | None = None) -> Finding:
    return finding(code, None, message, column=column, value=value)


def row_of(record: int) -> int:
    """Spreadsheet row of a data record (0-based): the header is row 1."""
    return record + 2


def skipped_records(findings: list[Finding]) -> set[int]:
    """Records (0-based) that a row-scope error keeps from being applied."""
    return {
        f.row - 2
        for f in findings
        if f.row is not None and f.severity is Severity.ERROR and f.scope in (Scope.ROW, Scope.FILE)
    }


def too_many_columns(count: int, limit: int) -> Finding:
    """A header wider than the `max_columns` limit (docs/security.md "Limits")."""
    return file_finding(
        "TOO_MANY_COLUMNS",
        f"The header has {count:,} columns; the sandbox reads feeds of up to {limit:,} "
        "(max_columns), and a user file has a few dozen. Check the delimiter and the header row.",
    )
