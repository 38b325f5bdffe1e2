"""Building findings from the catalogue: severity always comes from the code."""

from __future__ import annotations

from bwsandbox.spec.codes import CATALOGUE
from bwsandbox.validator.model import Finding


def finding(
    code: str, row: int | None, message: str, *, column: str | None = None, value: str | None = None
) -> Finding:
    return Finding(
        code=code, severity=CATALOGUE[code].severity, row=row, column=column, value=value, message=message
    )


def file_finding(code: str, message: str, *, column: str | None = None, value: str | None = None) -> Finding:
    return finding(code, None, message, column=column, value=value)
