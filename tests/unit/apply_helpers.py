"""Shared helpers of the apply tests (pure: rows in, an Outcome out)."""

from __future__ import annotations

from collections.abc import Mapping

from bwsandbox.ingest.apply import apply_users
from bwsandbox.ingest.records import Outcome, Policy, State
from bwsandbox.validator.model import ApplicableRow

TODAY = "2026-03-15"


def rows(*records: Mapping[str, str]) -> list[ApplicableRow]:
    return [ApplicableRow(row=i + 2, values=dict(r)) for i, r in enumerate(records)]


def policy(records: list[ApplicableRow], **kw: object) -> Policy:
    columns = frozenset(k for r in records for k in r.values)
    return Policy(today=TODAY, now=TODAY + "T00:00:00+00:00", columns=columns, **kw)  # type: ignore[arg-type]


def run(state: State, records: list[ApplicableRow], **kw: object) -> tuple[Outcome, State]:
    outcome = apply_users(state, records, policy(records, **kw))
    return outcome, outcome.state_after(state)


def by_email(state: State) -> dict[str, tuple[dict[str, str], bool]]:
    return {u.key: (dict(u.fields), u.active) for u in state.users.values()}


def user(email: str, first: str = "F", last: str = "L", **more: str) -> dict[str, str]:
    return {"email": email, "first_name": first, "last_name": last, **more}


def seeded(*records: Mapping[str, str]) -> State:
    return run(State(), rows(*records))[1]


def issues(outcome: Outcome) -> set[tuple[str, int | None]]:
    return {(i.code, i.row) for i in outcome.findings}
