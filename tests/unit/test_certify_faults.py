"""The judge on the fault runs: how the job behaves when the transfer fails (C13-C18)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from certify_helpers import (
    AGAIN,
    CUT,
    DROPPED,
    DROPPED_ONCE,
    GOOD,
    REFUSED,
    REFUSED_ONCE,
    _evidence,
    _failing,
    _good_runs,
    _judge,
    _outcomes,
)

from bwsandbox.certify.criteria import CRITERIA
from bwsandbox.certify.model import Outcome
from bwsandbox.certify.observations import RunObservation, Upload

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
