"""The certification judge decides each criterion from observations alone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bwsandbox.certify.criteria import CRITERIA, RunObservation, Upload, judge
from bwsandbox.certify.model import Certification, Outcome
from bwsandbox.certify.writers import to_json, to_junit, to_markdown

GOOD = Upload(
    name="users_20261125T101500.csv", bytes=120, state="done", verdict="accepted",
    emails=frozenset({"a@example.com", "b@example.com"}),
)
DIRECTORY = {"a@example.com": (("first_name", "A"),), "b@example.com": (("first_name", "B"),)}


def _good_runs() -> tuple[RunObservation, RunObservation, RunObservation]:
    first = RunObservation(label="first", exit_code=0, auth_ok=1, auth_failed=0,
                           uploads=(GOOD,), directory=DIRECTORY)
    rerun = replace(first, label="rerun", uploads=(replace(GOOD, name="users_20261125T101501.csv"),))
    rotated = RunObservation(label="rotated", exit_code=1, auth_ok=0, auth_failed=0)
    return first, rerun, rotated


def _outcomes(results: tuple[object, ...]) -> dict[str, Outcome]:
    return {r.criterion.id: r.outcome for r in results}  # type: ignore[attr-defined]


def test_a_good_job_passes_every_criterion() -> None:
    results = judge(*_good_runs(), roster=frozenset({"a@example.com"}))
    assert [r.criterion.id for r in results] == [c.id for c in CRITERIA]
    assert set(_outcomes(results).values()) == {Outcome.PASS}


def test_without_roster_the_roster_criterion_is_not_applicable() -> None:
    assert _outcomes(judge(*_good_runs(), roster=None))["C08"] is Outcome.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        (lambda f, r, x: (f, r, replace(x, auth_ok=1, uploads=(GOOD,))), {"C02"}),
        (lambda f, r, x: (replace(f, uploads=(replace(GOOD, name="users.csv"),)), r, x), {"C04"}),
        (lambda f, r, x: (f, replace(r, uploads=(GOOD,)), x), {"C04"}),
        (lambda f, r, x: (replace(f, leftovers=("users.csv.filepart",)), r, x), {"C05"}),
        (lambda f, r, x: (replace(f, uploads=(GOOD, replace(GOOD, name="u_20261125.csv",
                                                            state="incomplete"))), r, x), {"C05"}),
        (lambda f, r, x: (replace(f, uploads=(replace(GOOD, codes=("DELIMITER_SEMICOLON",),
                                                      verdict="rejected"),)), r, x), {"C06", "C09"}),
        (lambda f, r, x: (replace(f, uploads=(replace(GOOD, emails=frozenset({"b@example.com"})),)),
                          r, x), {"C08"}),
        (lambda f, r, x: (f, replace(r, directory={"a@example.com": (("first_name", "Z"),)}), x),
         {"C10"}),
        (lambda f, r, x: (replace(f, exit_code=3), r, x), {"C11"}),
    ],
)
def test_each_broken_behaviour_fails_its_criterion(change: object, failing: set[str]) -> None:
    runs = change(*_good_runs())  # type: ignore[operator]
    outcomes = _outcomes(judge(*runs, roster=frozenset({"a@example.com"})))
    assert {cid for cid, o in outcomes.items() if o is Outcome.FAIL} == failing


def test_writers_carry_the_verdict_and_evidence() -> None:
    results = judge(*_good_runs(), roster=None)
    cert = Certification(command="./export.sh", version="0.1.0", started_at="2026-11-25T10:00:00+00:00",
                         profile="core", results=results)
    assert cert.passed
    assert '"passed": true' in to_json(cert)
    assert 'tests="11"' in to_junit(cert) and 'failures="0"' in to_junit(cert)
    assert "**Result: PASSED**" in to_markdown(cert)
    failed = Certification(command="x", version="0.1.0", started_at="t", profile="core",
                           results=judge(*_good_runs()[:2], replace(_good_runs()[2], auth_ok=1,
                                                                     uploads=(GOOD,)), roster=None))
    assert not failed.passed
    assert "<failure" in to_junit(failed) and "NOT PASSED" in to_markdown(failed)
