"""The certification judge decides each criterion from observations alone."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bwsandbox.certify.criteria import CRITERIA, ENGAGE_CRITERIA, judge, name_dates
from bwsandbox.certify.model import Certification, JobRun, Outcome, Result, ScriptFile, UploadedFile
from bwsandbox.certify.observations import RunObservation, Upload
from bwsandbox.certify.script import job_script
from bwsandbox.certify.writers import run_output_text, to_html, to_json, to_junit, to_markdown
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


# The fault runs of a careful job (retry.py): the cut upload is recorded and
# never processed, the job connects again and the complete file arrives.
CUT = replace(GOOD, bytes=64, state="incomplete", verdict=None, emails=frozenset())
AGAIN = replace(GOOD, name="users_20261125T101502.csv")
DROPPED = RunObservation(label="dropped-connection", exit_code=0, auth_ok=2, auth_failed=0,
                         uploads=(CUT, AGAIN), faults_fired=("disconnect",))
REFUSED = RunObservation(label="refused-login", exit_code=0, auth_ok=1, auth_failed=1,
                         uploads=(AGAIN,), faults_fired=("refuse-login",))
# ... and of a job that reports the failure and does not retry (good.py).
DROPPED_ONCE = replace(DROPPED, exit_code=1, auth_ok=1, uploads=(CUT,))
REFUSED_ONCE = replace(REFUSED, exit_code=2, auth_ok=0, uploads=())


def _judge(
    first: RunObservation, rerun: RunObservation, rotated: RunObservation, *,
    roster: frozenset[str] | None = None, profile: Profile = Profile.CORE,
    dropped: RunObservation | None = DROPPED, refused: RunObservation | None = REFUSED,
) -> tuple[Result, ...]:
    return judge(first, rerun, rotated, roster, profile=profile, dropped=dropped, refused=refused)


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
    assert 'tests="18"' in to_junit(cert) and 'failures="0"' in to_junit(cert)
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


# -- C13-C18: the job under faults ------------------------------------------------------


def test_a_job_that_reports_failures_without_retrying_passes_but_the_retry_advice_fails() -> None:
    results = _judge(*_good_runs(), dropped=DROPPED_ONCE, refused=REFUSED_ONCE)
    assert _failing(results) == {"C15", "C18"}
    assert not any(r.blocking for r in results)
    evidence = _evidence(results)
    assert evidence["C13"] == (f"after the connection dropped during {GOOD.name} the job exited 1",)
    assert evidence["C14"] == (f"cut off and never processed: {GOOD.name} (64 bytes received)",
                               "nothing else was processed")
    assert evidence["C15"] == (f"after the connection dropped during {GOOD.name} no complete file "
                               "arrived: the job did not retry",)
    assert evidence["C16"] == ("after the refused login the job exited 2",
                               "logins in the run: 1 refused, 0 successful")
    assert evidence["C17"] == ("nothing was processed",)


def test_a_job_that_retries_passes_every_fault_criterion() -> None:
    results = _judge(*_good_runs())
    fault_ids = ("C13", "C14", "C15", "C16", "C17", "C18")
    assert {cid: o for cid, o in _outcomes(results).items() if cid >= "C13"} == dict.fromkeys(
        fault_ids, Outcome.PASS
    )
    evidence = _evidence(results)
    assert evidence["C13"] == (f"after the connection dropped during {GOOD.name} the job retried and "
                               f"exited 0 once a complete file arrived: {AGAIN.name}",)
    assert evidence["C15"] == (f"after the connection dropped during {GOOD.name} the job retried: "
                               f"{AGAIN.name} arrived complete",)
    assert evidence["C18"] == (f"after the refused login the job retried: {AGAIN.name} arrived complete",
                               "logins in the run: 1 refused, 1 successful")


def test_a_job_hiding_failures_behind_exit_0_fails_c13_and_c16() -> None:
    results = _judge(*_good_runs(), dropped=replace(DROPPED_ONCE, exit_code=0),
                     refused=replace(REFUSED_ONCE, exit_code=0))
    assert {r.criterion.id for r in results if r.blocking} == {"C13", "C16"}
    evidence = _evidence(results)
    assert "exited 0, and no complete file arrived" in evidence["C13"][0]
    assert "exited 0, and no complete file arrived" in evidence["C16"][0]


def test_a_job_that_hangs_after_a_fault_does_not_report_it() -> None:
    results = _judge(*_good_runs(), dropped=replace(DROPPED, exit_code=None),
                     refused=replace(REFUSED, exit_code=None))
    assert {r.criterion.id for r in results if r.blocking} == {"C13", "C16"}
    assert "did not finish before the timeout" in _evidence(results)["C13"][0]


@pytest.mark.parametrize(
    ("processed", "why"),
    [
        # A cut-off CSV that lost its last rows
        (replace(AGAIN, emails=frozenset({"a@example.com"})),
         "1 of 2 users of the first run missing: b@example.com"),
        # ... or a truncated JSON or PGP file that no longer parses.
        (replace(AGAIN, codes=("JSON_MALFORMED",), verdict="rejected"),
         "findings the first run's file did not have: JSON_MALFORMED"),
    ],
)
def test_a_partial_file_processed_under_a_fault_fails_c14_and_c17_and_is_no_arrival(
    processed: Upload, why: str
) -> None:
    results = _judge(*_good_runs(), dropped=replace(DROPPED, uploads=(CUT, processed)),
                     refused=replace(REFUSED, uploads=(processed,)))
    assert {r.criterion.id for r in results if r.blocking} == {"C13", "C14", "C16", "C17"}
    assert _failing(results) == {"C13", "C14", "C15", "C16", "C17", "C18"}
    evidence = _evidence(results)
    assert f"processed although partial: {AGAIN.name} ({why})" in evidence["C14"]
    assert f"processed although partial: {AGAIN.name} ({why})" in evidence["C17"]


def test_a_complete_file_keeps_the_findings_the_first_run_had() -> None:
    first, rerun, rotated = _good_runs()
    noted = replace(GOOD, codes=("FILE_NAME_UNDATED",))
    results = _judge(replace(first, uploads=(noted,)), rerun, rotated,
                     dropped=replace(DROPPED, uploads=(CUT, replace(AGAIN, codes=noted.codes))))
    assert _outcomes(results)["C14"] is Outcome.PASS


@pytest.mark.parametrize(
    ("dropped", "refused", "why_dropped", "why_refused"),
    [
        (replace(DROPPED, uploads=(), faults_fired=()), replace(REFUSED, auth_ok=0, auth_failed=0,
                                                                 uploads=(), faults_fired=()),
         "the job uploaded nothing, so there was no upload to cut off", "the job never tried to log in"),
        # A wrong password: the refusal fault waits for the right one.
        (replace(DROPPED, uploads=(), faults_fired=()), replace(REFUSED, auth_ok=0, auth_failed=3,
                                                                 uploads=(), faults_fired=()),
         "the job uploaded nothing, so there was no upload to cut off",
         "the job never logged in with the tenant's password (3 failed login(s))"),
        (replace(DROPPED, uploads=(AGAIN,)), REFUSED,
         f"no upload was cut off (the fault fired, but uploaded: {AGAIN.name})", ""),
    ],
)
def test_a_fault_that_never_fired_shows_nothing_and_fails(
    dropped: RunObservation, refused: RunObservation, why_dropped: str, why_refused: str
) -> None:
    results = _judge(*_good_runs(), dropped=dropped, refused=refused)
    evidence = _evidence(results)
    for cid in ("C13", "C14", "C15"):
        assert evidence[cid] == (f"not shown: {why_dropped}",), cid
    if why_refused:
        for cid in ("C16", "C17", "C18"):
            assert evidence[cid] == (f"not shown: {why_refused}",), cid
    assert {"C13", "C14"} <= {r.criterion.id for r in results if r.blocking}


def test_without_fault_runs_their_criteria_are_not_applicable() -> None:
    results = _judge(*_good_runs(), dropped=None, refused=None)
    for cid in ("C13", "C14", "C15", "C16", "C17", "C18"):
        assert _outcomes(results)[cid] is Outcome.NOT_APPLICABLE
        assert _evidence(results)[cid] == ("not run (--no-faults)",)


def test_fault_criteria_name_what_was_simulated_and_which_are_required() -> None:
    by_id = {c.id: c for c in CRITERIA}
    assert [c.id for c in CRITERIA] == [f"C{n:02d}" for n in range(1, 19)]
    for cid in ("C13", "C14", "C15"):
        assert by_id[cid].title.startswith("Dropped connection during upload: ")
        assert by_id[cid].runs == ("dropped-connection",)
    for cid in ("C16", "C17", "C18"):
        assert by_id[cid].title.startswith("Refused login: ")
        assert by_id[cid].runs == ("refused-login",)
    advisory = {c.id for c in CRITERIA if not c.required}
    assert advisory == {"C11", "C12", "C15", "C18"}


# -- the certificate: the job, its files, the evidence, the job's own words ------------


def _cert(results: tuple[Result, ...] | None = None, *, command: str = "python3 job.py") -> Certification:
    runs = (
        JobRun(label="first", exit_code=0, seconds=1.25, stdout_tail="uploaded users.csv\n",
               stderr_tail="", started_at="2026-11-25T10:00:00+00:00", purpose="the first run"),
        JobRun(label="rerun", exit_code=0, seconds=1.0, stdout_tail="", stderr_tail=""),
        JobRun(label="dropped-connection", exit_code=0, seconds=2.5, stdout_tail="",
               stderr_tail="export failed: EOFError()\n", purpose="the connection drops"),
        JobRun(label="refused-login", exit_code=2, seconds=0.5, stdout_tail="",
               stderr_tail="".join(f"line {n}\n" for n in range(40)) + "Authentication failed.\n"),
        JobRun(label="rotated", exit_code=3, seconds=0.25, stdout_tail="",
               stderr_tail="host key changed <b>&\x1b[31m\n"),
    )
    files = (UploadedFile(run="first", name="users_<1>.csv", bytes=120, sha256="ab" * 32,
                          state="done", verdict="accepted"),)
    return Certification(
        command=command, version="0.1.0", started_at="2026-11-25T10:00:00+00:00", profile="core",
        results=results if results is not None else _judge(*_good_runs(), dropped=replace(
            DROPPED_ONCE, exit_code=0)),
        runs=runs, script=ScriptFile(path="job.py", sha256="cd" * 32, bytes=42), files=files,
    )


def test_the_json_report_names_the_job_its_files_and_each_criterions_runs_and_timings() -> None:
    report = json.loads(to_json(_cert()))
    assert report["command"] == "python3 job.py"
    assert report["script"] == {"path": "job.py", "sha256": "cd" * 32, "bytes": 42}
    assert report["files"] == [{"run": "first", "name": "users_<1>.csv", "bytes": 120, "sha256": "ab" * 32,
                                "state": "done", "verdict": "accepted"}]
    criteria = {c["id"]: c for c in report["criteria"]}
    assert criteria["C04"]["runs"] == ["first", "rerun"]
    assert criteria["C04"]["timings"] == {"first": 1.25, "rerun": 1.0}
    assert criteria["C13"]["outcome"] == "fail"
    runs = {r["label"]: r for r in report["runs"]}
    assert runs["dropped-connection"]["stderr_tail"] == "export failed: EOFError()\n"
    assert runs["first"]["started_at"] == "2026-11-25T10:00:00+00:00"


def test_the_terminal_shows_the_output_of_each_failed_run_only() -> None:
    text = run_output_text(_cert())
    # dropped-connection exited 0 but C13, judged from it, failed: its output says why.
    assert "run dropped-connection: exit 0, 2.5 s — the connection drops" in text
    assert "export failed: EOFError()" in text
    assert "run refused-login: exit 2" in text and "Authentication failed." in text
    assert "line 39" in text and "line 20" not in text  # the last lines only
    assert "run rotated: exit 3" in text and "\x1b" not in text and "␛[31m" in text
    assert "run first" not in text and "run rerun" not in text
    passed = _cert(_judge(*_good_runs()))
    assert "run dropped-connection" not in run_output_text(passed)  # exit 0 and nothing failed
    quiet = replace(passed, runs=tuple(replace(r, exit_code=0) for r in passed.runs))
    assert run_output_text(quiet) == ""


def test_the_junit_report_carries_the_job_output_under_each_failed_criterion() -> None:
    suite = ET.fromstring(to_junit(_cert()))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["script"] == f"job.py: sha256 {'cd' * 32} (42 bytes)"
    assert props["file 1"] == f"first: users_<1>.csv sha256 {'ab' * 32} (120 bytes, done)"
    cases = {c.get("name", "").split()[0]: c for c in suite.iter("testcase")}
    c13 = cases["C13"]
    assert c13.find("failure") is not None and c13.get("time") == "2.500"
    assert "export failed: EOFError()" in (c13.findtext("system-err") or "")
    # An advisory criterion not met is skipped with its advice: never a red CI.
    c15 = cases["C15"]
    assert c15.find("failure") is None and c15.get("name", "").endswith("(advisory)")
    assert (c15.find("skipped") is not None
            and c15.find("skipped").get("message", "").startswith("advisory, not met: after the connection"))
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "2")  # C13; C08 n/a and C15
    assert "␛[31m" in (suite.findtext("system-err") or "")  # every run, control characters shown


def test_the_markdown_certificate_records_the_job_files_evidence_timings_and_output() -> None:
    text = to_markdown(_cert(command="./export.sh --tag `x` | tee log"))
    assert "| Export job | ``./export.sh --tag `x` \\| tee log`` |" in text
    assert f"| Job script | `job.py` sha256 `{'cd' * 32}` (42 bytes) |" in text
    assert f"| first | `users_<1>.csv` | 120 | `{'ab' * 32}` | done | accepted |" in text
    assert "| first 1.2 s, rerun 1.0 s |" in text  # C04's runs and their timings
    assert "host key changed &lt;b&gt;&amp;" not in text  # output is in code blocks, verbatim
    assert "```text\nhost key changed <b>&␛[31m\n```" in text
    assert "| Fault runs | dropped connection, refused login |" in text


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_certificate_is_one_self_contained_escaped_file() -> None:
    evil = "./export.sh '<script>alert(1)</script>' <img src=http://x/y.png>"
    page = to_html(_cert(command=evil))
    parser = _Tags()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert "script" not in tags and "img" not in tags and "link" not in tags
    assert not any(k in ("src", "href") for _, attrs in parser.tags for k in attrs)
    assert "default-src 'none'" in page  # nothing may load, should anything slip through
    text = "".join(parser.text)
    assert evil in text  # shown as written, escaped
    for expected in ("bwsandbox 0.1.0", "2026-11-25T10:00:00+00:00", "cd" * 32, "ab" * 32, "users_<1>.csv",
                     "C13 Dropped connection during upload: job reports the failure",
                     "export failed: EOFError()", "first 1.2 s, rerun 1.0 s", "NOT PASSED"):
        assert expected in text, expected
    assert "\x1b" not in page


# -- which file the command runs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "script"),
    [
        ("./export.sh", "export.sh"),
        ("python3 job.py --since yesterday", "job.py"),
        ("{python} job.py", "job.py"),  # an interpreter given by its path is not the job
        ("/usr/bin/env bash export.sh", "export.sh"),
        ("TZ=UTC sh -e export.sh", "export.sh"),
        ("python3 -c 'print(1)'", None),
        ("./missing.sh", None),
        ("sh 'unbalanced", None),
    ],
)
def test_the_certificate_hashes_the_script_the_command_runs(
    tmp_path: Path, command: str, script: str | None
) -> None:
    (tmp_path / "export.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "job.py").write_bytes(b"print('job')\n")
    found = job_script(command.format(python=sys.executable), tmp_path)
    if script is None:
        assert found is None
    else:
        assert found is not None and Path(found.path).name == script
        data = (tmp_path / script).read_bytes()
        assert (found.sha256, found.bytes) == (hashlib.sha256(data).hexdigest(), len(data))
