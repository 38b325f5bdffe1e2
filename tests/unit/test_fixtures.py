"""Every finding code in the catalogue has a fixture named after it that
triggers it (judged as `bwsandbox validate` judges it: the file, then the
directory its sidecar gives), or, for the few no file can trigger alone
(an upload's name, its PGP envelope), a test that names it; the valid
fixtures trigger no error and no warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bwsandbox.ingest.plan import Judgement, validate
from bwsandbox.spec.codes import CATALOGUE, WITHOUT_FIXTURE, Severity
from bwsandbox.validator import Context

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _fixture(stem: str) -> Path:
    found = [p for p in FIXTURES.glob(f"{stem}.*") if not p.name.endswith(".context.json")]
    assert len(found) == 1, f"expected one fixture named {stem}.*, found {found}"
    return found[0]


def run_fixture(path: Path) -> Judgement:
    sidecar = path.with_name(path.stem + ".context.json")
    context = Context.from_dict(json.loads(sidecar.read_text())) if sidecar.exists() else Context()
    return validate(path.read_bytes(), context, name=path.name)


@pytest.mark.parametrize("code", sorted(set(CATALOGUE) - WITHOUT_FIXTURE))
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


@pytest.mark.parametrize("code", sorted(WITHOUT_FIXTURE))
def test_each_code_without_a_fixture_is_triggered_by_a_named_test(code: str) -> None:
    tests = Path(__file__).resolve().parents[1]
    named = [p for p in tests.rglob("test_*.py") if f'"{code}"' in p.read_text()]
    assert named, f"no test names {code}"


def test_a_finding_of_an_unknown_code_cannot_be_made() -> None:
    from bwsandbox.validator.findings import finding

    with pytest.raises(KeyError):
        finding("NOT_A_CODE", 2, "message")
