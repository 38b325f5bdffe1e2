"""The certification judge decides each criterion from observations alone."""

from __future__ import annotations

from dataclasses import replace

import pytest
from certify_helpers import GOOD, _evidence, _failing, _good_runs, _judge, _outcomes

from bwsandbox.certify.criteria import CRITERIA
from bwsandbox.certify.model import Outcome


def test_a_good_job_passes_every_criterion() -> None:
    results = _judge(*_good_runs(), roster=frozenset({"a@example.com"}))
    assert [r.criterion.id for r in results] == [c.id for c in CRITERIA]
    assert set(_outcomes(results).values()) == {Outcome.PASS}


def test_without_roster_the_roster_criterion_is_not_applicable() -> None:
    assert _outcomes(_judge(*_good_runs(), roster=None))["C08"] is Outcome.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        (lambda f, r, x: (f, r, replace(x, auth_ok=1, uploads=(GOOD,))), {"C02"}),
        (lambda f, r, x: (replace(f, uploads=(replace(GOOD, name="users.csv"),)), r, x), {"C04"}),
        # A name re-sent on the day in it is a daily job's (docs/production.md §1): advice only.
        (lambda f, r, x: (f, replace(r, uploads=(GOOD,)), x), {"C12"}),
        # A name re-sent with another day in it is fixed.
        (lambda f, r, x: (replace(f, uploads=(replace(GOOD, name="users_20200101.csv"),)),
                          replace(r, uploads=(replace(GOOD, name="users_20200101.csv"),)), x),
         {"C04", "C12"}),
        (lambda f, r, x: (replace(f, uploads=(replace(GOOD, name="users_20261125.txt"),)), r, x), {"C04"}),
        (lambda f, r, x: (replace(f, leftovers=("users.csv.filepart",)), r, x), {"C05"}),
        (lambda f, r, x: (replace(f, uploads=(GOOD, replace(GOOD, name="u_20261125.csv",
                                                            state="incomplete"))), r, x), {"C05"}),
        (lambda f, r, x: (replace(f, uploads=(replace(GOOD, codes=("DELIMITER_SEMICOLON",),
                                                      verdict="rejected"),)), r, x), {"C06", "C09"}),
        (lambda f, r, x: (replace(f, uploads=(replace(GOOD, emails=frozenset({"b@example.com"})),)),
                          r, x), {"C08"}),
        (lambda f, r, x: (replace(f, uploads=(replace(GOOD, codes=("REQUIRED_VALUE_MISSING",),
                                                      verdict="partial"),)), r, x), {"C07", "C09"}),
        (lambda f, r, x: (f, replace(r, directory={"a@example.com": (("first_name", "Z"),)}), x),
         {"C10"}),
        (lambda f, r, x: (replace(f, exit_code=3), r, x), {"C11"}),
    ],
)
def test_each_broken_behaviour_fails_its_criterion(change: object, failing: set[str]) -> None:
    runs = change(*_good_runs())  # type: ignore[operator]
    assert _failing(_judge(*runs, roster=frozenset({"a@example.com"}))) == failing


def test_without_any_upload_the_file_criteria_fail_saying_no_file_was_uploaded() -> None:
    first, rerun, rotated = _good_runs()
    results = _judge(replace(first, uploads=()), replace(rerun, uploads=()), rotated,
                    roster=frozenset({"a@example.com"}))
    assert _failing(results) == {"C03", "C04", "C05", "C06", "C07", "C08", "C09", "C10", "C12"}
    evidence = _evidence(results)
    for cid in ("C04", "C05", "C06", "C07", "C09", "C12"):
        assert evidence[cid] == ("no file was uploaded",), cid
    assert evidence["C03"] == ("first run: no file was uploaded",)
    assert evidence["C08"][0] == "first run: no file was uploaded"
    assert evidence["C10"] == ("second run: no file was uploaded",)
    text = " ".join(e for r in results for e in r.evidence)
    assert "findings: none" not in text and "every file accepted" not in text


def test_an_upload_that_was_only_cut_off_is_named_as_such() -> None:
    first, rerun, rotated = _good_runs()
    cut = replace(GOOD, state="incomplete", verdict=None)
    results = _judge(replace(first, uploads=(cut,)), replace(rerun, uploads=()), rotated, roster=None)
    assert _evidence(results)["C06"] == (f"no file was uploaded completely (cut off: {GOOD.name})",)
    assert "C05" in _failing(results)
