"""The judge on file names: a daily name is fair, a fixed one is not (C04, C12)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from certify_helpers import DAY, GOOD, _evidence, _failing, _good_runs, _judge, _outcomes

from bwsandbox.certify.criteria import name_dates
from bwsandbox.certify.model import Certification, Outcome
from bwsandbox.certify.observations import RunObservation

# -- C04 and C12: fair naming (docs/production.md §1) ------------------------------------------------


def _named(name: str, again: str | None = None, days: frozenset[dt.date] = frozenset({DAY})) -> tuple[
    RunObservation, RunObservation, RunObservation
]:
    first, rerun, rotated = _good_runs()
    return (replace(first, uploads=(replace(GOOD, name=name),), days=days),
            replace(rerun, uploads=(replace(GOOD, name=again or name),), days=days), rotated)


def test_a_daily_name_sent_twice_on_its_day_passes_c04_and_c12_explains() -> None:
    results = _judge(*_named("users_20261125.csv"))
    outcomes, evidence = _outcomes(results), _evidence(results)
    assert outcomes["C04"] is Outcome.PASS
    assert any("re-sent on the day in the name" in e for e in evidence["C04"])
    assert outcomes["C12"] is Outcome.FAIL
    c12 = next(r for r in results if r.criterion.id == "C12")
    assert not c12.criterion.required and not c12.blocking
    assert evidence["C12"][0] == "users_20261125.csv was sent by both runs on 2026-11-25, the day in its name"
    assert "production.md §6" in evidence["C12"][1] and "users_YYYYMMDD_HHMMSS.csv" in evidence["C12"][1]
    assert Certification(command="x", version="0", started_at="t", profile="core", results=results).passed


@pytest.mark.parametrize("name", ["users_2026-11-25.csv", "users_25.11.2026.json", "users_20261125.csv.pgp"])
def test_every_date_form_and_suffix_production_accepts_is_a_daily_name(name: str) -> None:
    assert name_dates(name) == {DAY}
    outcomes = _outcomes(_judge(*_named(name)))
    assert (outcomes["C04"], outcomes["C12"]) == (Outcome.PASS, Outcome.FAIL)


def test_a_daily_name_dated_by_the_utc_clock_counts_as_sent_on_its_day() -> None:
    # 00:30 on the 26th in Berlin is 23:30 on the 25th UTC: `date -u` names it the 25th.
    days = frozenset({DAY, DAY + dt.timedelta(days=1)})
    assert _outcomes(_judge(*_named("users_20261125.csv", days=days)))["C04"] is Outcome.PASS


def test_a_name_re_sent_with_another_day_in_it_is_a_fixed_name() -> None:
    results = _judge(*_named("users_20261124.csv"))  # yesterday's date, sent twice today
    assert _failing(results) == {"C04", "C12"}
    assert "a fixed name" in " ".join(_evidence(results)["C04"])
    # The run days are part of the rule: without them no reuse is a daily one.
    assert "C04" in _failing(_judge(*_named("users_20261125.csv", days=frozenset())))


@pytest.mark.parametrize(
    ("name", "problem"),
    [("users.csv", "no date in: users.csv"),
     ("users_20261125.txt", "no .csv or .json at the end of: users_20261125.txt"),
     ("users_20261125", "no .csv or .json at the end of: users_20261125"),
     ("users_20261125.csv.bak", "no .csv or .json at the end of: users_20261125.csv.bak")],
)
def test_a_name_without_a_date_or_csv_json_fails_c04(name: str, problem: str) -> None:
    results = _judge(*_named(name, again="users_20261125T1015.csv"))
    assert _failing(results) == {"C04"}
    assert problem in _evidence(results)["C04"]


def test_new_names_on_every_run_pass_c12() -> None:
    assert _evidence(_judge(*_good_runs()))["C12"] == ("each run sent names of its own",)
