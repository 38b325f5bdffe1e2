"""Every finding code in the catalogue has a fixture named after it that
triggers it; the valid fixtures trigger no error and no warning (issue #2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bwsandbox.spec.codes import CATALOGUE, Severity
from bwsandbox.validator import Context, Validation, validate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _fixture(stem: str) -> Path:
    found = [p for p in FIXTURES.glob(f"{stem}.*") if not p.name.endswith(".context.json")]
    assert len(found) == 1, f"expected one fixture named {stem}.*, found {found}"
    return found[0]


def run_fixture(path: Path) -> Validation:
    sidecar = path.with_name(path.stem + ".context.json")
    context = Context.from_dict(json.loads(sidecar.read_text())) if sidecar.exists() else Context()
    return validate(path.read_bytes(), context, name=path.name)


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_each_code_has_a_fixture_that_triggers_it(code: str) -> None:
    validation = run_fixture(_fixture(code))
    codes = {f.code for f in validation.report.findings}
    assert code in codes, f"{code} fixture produced {sorted(codes)}"


@pytest.mark.parametrize("name", ["valid_users.csv", "valid_departments.csv", "valid_users.json"])
def test_valid_fixtures_are_accepted_without_errors_or_warnings(name: str) -> None:
    path = FIXTURES / name
    report = run_fixture(path).report
    noisy = [f for f in report.findings if f.severity is not Severity.NOTICE]
    assert noisy == []
    assert str(report.verdict) == "accepted"
    assert report.total > 0 and report.valid == report.total


def test_no_fixture_is_named_after_an_unknown_code() -> None:
    stems = {p.name.split(".")[0] for p in FIXTURES.iterdir()}
    strays = {s for s in stems if s.isupper() and s not in CATALOGUE}
    assert strays == set()
