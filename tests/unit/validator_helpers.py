"""Shared helpers of the validator's rule tests. `run` judges a file as
`bwsandbox validate` does: the file alone, then the directory's rules
(`ingest/plan.py`) on the directory the context gives (or an empty one)."""

from __future__ import annotations

import sys

import pytest

from bwsandbox.ingest.plan import Judgement as Validation
from bwsandbox.ingest.plan import validate
from bwsandbox.validator import Context, accel, error_csv, report_json

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


# --- engines (bwsandbox/validator/accel.py) ---------------------------------------------
#
# Each validator test module runs its tests on both engines: "accelerated"
# (the C modules) and "pure" (what an install without a compiler gives).

ENGINES = ("accelerated", "pure")


def need_c() -> None:
    """The C accelerators must be built: on Linux (this repo's CI, `make test`
    builds them) a test that needs them fails without them; elsewhere it is
    skipped (they are optional builds)."""
    missing = [name for name in accel.NAMES if not accel.built(name)]
    if missing:
        why = f"C accelerator(s) not built: {', '.join(missing)} (pip install builds them; make test does)"
        if sys.platform.startswith("linux"):
            pytest.fail(why)
        pytest.skip(why)


def use_engine(name: str, mp: pytest.MonkeyPatch) -> accel.Engines:
    """Validate on one engine until `mp` is undone."""
    if name == "pure":
        mp.setenv(accel.ENV, "1")
    else:
        mp.delenv(accel.ENV, raising=False)
        need_c()
    got = accel.choose()
    assert got.names == (accel.NAMES if name == "accelerated" else ())
    return got


@pytest.fixture(autouse=True, params=ENGINES)
def each_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> accel.Engines:
    """Every test of a module that imports this runs once per engine."""
    return use_engine(request.param, monkeypatch)


def on_engine(name: str, data: bytes, context: Context | None = None) -> Validation:
    """One validation on one engine."""
    with pytest.MonkeyPatch.context() as mp:
        use_engine(name, mp)
        return validate(data, context or Context(), name="t.csv")


def seen(v: Validation) -> tuple[str, bytes, list[tuple[int, dict[str, str]]], dict[int, tuple[str, ...]]]:
    """Everything a caller gets from a validation (to compare engines)."""
    rows = [(a.row, dict(a.values)) for a in v.applicable()]
    return report_json(v.report), error_csv(v), rows, dict(v.originals)
