"""Shared helpers of the validator's rule tests."""

from __future__ import annotations

from bwsandbox.validator import Context, Validation, validate

H = "email,first_name,last_name"


def run(text: str | bytes, **context: object) -> Validation:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return validate(data, Context(**context), name="t.csv")  # type: ignore[arg-type]


def found(v: Validation) -> set[tuple[str, int | None]]:
    return {(f.code, f.row) for f in v.report.findings}


def codes(v: Validation) -> set[str]:
    return {f.code for f in v.report.findings}


def only(v: Validation, code: str) -> list[tuple[int | None, str | None, str]]:
    return [(f.row, f.column, f.message) for f in v.report.findings if f.code == code]


def applied(v: Validation) -> dict[int, dict[str, str]]:
    return {r.row: dict(r.values) for r in v.applicable()}


def feed(*rows: str, header: str = H) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"
