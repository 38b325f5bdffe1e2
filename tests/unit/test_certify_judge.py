"""The certification judge decides each criterion from observations alone."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from bwsandbox.certify.criteria import CRITERIA, ENGAGE_CRITERIA, RunObservation, Upload, judge, name_dates
from bwsandbox.certify.model import Certification, Outcome, Result
from bwsandbox.certify.writers import to_json, to_junit, to_markdown
from bwsandbox.spec.fields import Profile

GOOD = Upload(
    name="users_20261125T101500.csv", bytes=120, state="done", verdict="accepted",
    emails=frozenset({"a@example.com", "b@example.com"}),
)
DIRECTORY = {"a@example.com": (("first_name", "A"),), "b@example.com": (("first_name", "B"),)}
DAY = dt.date(2026, 11, 25)  # the day of the runs, and of the names above


def _good_runs() -> tuple[RunObservation, RunObservation, RunObservation]:
    first = RunObservation(label="first", exit_code=0, auth_ok=1, auth_failed=0,
                           uploads=(GOOD,), directory=DIRECTORY, days=frozenset({DAY}))
    rerun = replace(first, label="rerun", uploads=(replace(GOOD, name="users_20261125T101501.csv"),))
    rotated = RunObservation(label="rotated", exit_code=1, auth_ok=0, auth_failed=0)
    return first, rerun, rotated


def _judge(
    first: RunObservation, rerun: RunObservation, rotated: RunObservation, *,
    roster: frozenset[str] | None = None, profile: Profile = Profile.CORE,
) -> tuple[Result, ...]:
    return judge(first, rerun, rotated, roster, profile=profile)


def _outcomes(results: tuple[Result, ...]) -> dict[str, Outcome]:
    return {r.criterion.id: r.outcome for r in results}


def _failing(results: tuple[Result, ...]) -> set[str]:
    return {cid for cid, o in _outcomes(results).items() if o is Outcome.FAIL}


def _evidence(results: tuple[Result, ...]) -> dict[str, tuple[str, ...]]:
    return {r.criterion.id: r.evidence for r in results}


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
        # A name re-sent on the day in it is a daily job's (SPEC §7): advice only.
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


# -- engage: employees.YYYYMMDDHHMM.csv.pgp + .done.pgp marker in `/` (SPEC §1) ----

DATA = replace(GOOD, name="employees.202611251015.csv.pgp")
MARKER = Upload(name="employees.202611251015.csv.done.pgp", bytes=0, state="done", verdict=None,
                marker=True)


def _engage_runs() -> tuple[RunObservation, RunObservation, RunObservation]:
    first, rerun, rotated = _good_runs()
    again = (replace(DATA, name="employees.202611251016.csv.pgp"),
             replace(MARKER, name="employees.202611251016.csv.done.pgp"))
    return replace(first, uploads=(DATA, MARKER)), replace(rerun, uploads=again), rotated


def test_a_good_engage_job_passes_and_its_markers_are_not_judged_as_files() -> None:
    results = _judge(*_engage_runs(), roster=frozenset({"a@example.com"}), profile=Profile.ENGAGE)
    outcomes = _outcomes(results)
    # Engage names carry the minute: C04 judges their reuse, C12 has nothing to add.
    assert outcomes.pop("C12") is Outcome.NOT_APPLICABLE
    assert set(outcomes.values()) == {Outcome.PASS}
    assert [r.criterion for r in results] == list(ENGAGE_CRITERIA)
    assert _evidence(results)["C03"] == ("picked up from /: employees.202611251015.csv.pgp",)


def test_engage_criteria_keep_the_ids_and_reword_folder_names_and_encryption() -> None:
    assert [c.id for c in ENGAGE_CRITERIA] == [c.id for c in CRITERIA]
    changed = {c.id for c, core in zip(ENGAGE_CRITERIA, CRITERIA, strict=True) if c != core}
    assert changed == {"C03", "C04", "C05", "C06", "C07"}


@pytest.mark.parametrize(
    "name",
    [
        "users_20261125.csv.pgp",  # a core name: dated, but not the engage one
        "employees.202611251015.csv.gpg",  # .gpg: not the documented suffix
        "employees.202613251015.csv.pgp",  # month 13
        "employees.2026112510.csv.pgp",  # no minutes
    ],
)
def test_an_engage_job_with_another_name_fails_c04(name: str) -> None:
    first, rerun, rotated = _engage_runs()
    first = replace(first, uploads=(replace(DATA, name=name), MARKER))
    results = _judge(first, rerun, rotated, roster=None, profile=Profile.ENGAGE)
    assert _failing(results) == {"C04"}
    assert any(name in e for e in _evidence(results)["C04"])


def test_a_core_name_passes_c04_in_the_core_profile() -> None:
    first, rerun, rotated = _good_runs()
    first = replace(first, uploads=(replace(GOOD, name="users_20261125.csv.pgp"),))
    assert "C04" not in _failing(_judge(first, rerun, rotated, roster=None))


def test_an_engage_file_waiting_for_its_marker_fails_completeness_and_acceptance() -> None:
    first, rerun, rotated = _engage_runs()
    waiting = replace(DATA, state="waiting", verdict=None)
    results = _judge(replace(first, uploads=(waiting,)), replace(rerun, uploads=(replace(
        waiting, name="employees.202611251016.csv.pgp"),)), rotated, roster=None, profile=Profile.ENGAGE)
    assert _failing(results) == {"C05", "C09"}
    evidence = _evidence(results)
    assert any(e.startswith("never processed, no .done marker arrived: employees.202611251015")
               for e in evidence["C05"])
    assert "not processed (waiting)" in evidence["C09"][0]


def test_an_engage_job_sending_only_markers_uploaded_no_data_file() -> None:
    first, rerun, rotated = _engage_runs()
    results = _judge(replace(first, uploads=(MARKER,)), replace(rerun, uploads=()), rotated,
                    roster=None, profile=Profile.ENGAGE)
    assert _evidence(results)["C06"] == (f"no data file was uploaded, only .done markers: {MARKER.name}",)
    assert {"C03", "C04", "C06", "C09"} <= _failing(results)


def test_an_engage_file_the_vendor_cannot_decrypt_fails_c06() -> None:
    first, rerun, rotated = _engage_runs()
    rejected = replace(DATA, codes=("PGP_REQUIRED",), verdict="rejected", emails=frozenset())
    results = _judge(replace(first, uploads=(rejected, MARKER)), rerun, rotated, roster=None,
                    profile=Profile.ENGAGE)
    assert _failing(results) == {"C06", "C09"}
    assert _evidence(results)["C06"] == ("format findings: PGP_REQUIRED",)


def test_writers_carry_the_verdict_and_evidence() -> None:
    results = _judge(*_good_runs(), roster=None)
    cert = Certification(command="./export.sh", version="0.1.0", started_at="2026-11-25T10:00:00+00:00",
                         profile="core", results=results)
    assert cert.passed
    assert '"passed": true' in to_json(cert)
    assert 'tests="12"' in to_junit(cert) and 'failures="0"' in to_junit(cert)
    assert "**Result: PASSED**" in to_markdown(cert)
    failed = Certification(command="x", version="0.1.0", started_at="t", profile="core",
                           results=_judge(*_good_runs()[:2], replace(_good_runs()[2], auth_ok=1,
                                                                     uploads=(GOOD,)), roster=None))
    assert not failed.passed
    assert "<failure" in to_junit(failed) and "NOT PASSED" in to_markdown(failed)


# -- C04 and C12: fair naming (SPEC §1, §7) ---------------------------------------------


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
    assert "SPEC §7" in evidence["C12"][1] and "users_YYYYMMDD_HHMMSS.csv" in evidence["C12"][1]
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
