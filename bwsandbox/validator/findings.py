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


def skipped_records(findings: list[Finding]) -> set[int]:
    """Records (0-based) that a row-scope error keeps from being applied."""
    return {
        f.row - 2
        for f in findings
        if f.row is not None and f.severity is Severity.ERROR and f.scope in (Scope.ROW, Scope.FILE)
    }
