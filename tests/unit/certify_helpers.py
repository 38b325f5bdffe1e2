"""Observations of a good export job and small readers of the judge's results,
shared by the test_certify_* files."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from bwsandbox.certify.criteria import judge
from bwsandbox.certify.model import Outcome, Result
from bwsandbox.certify.observations import RunObservation, Upload
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
