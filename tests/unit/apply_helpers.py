"""Shared helpers of the apply tests (pure: rows in, an Outcome out)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from bwsandbox.ingest.apply import apply_users
from bwsandbox.ingest.records import Department, ManualEdit, Outcome, Policy, State, User
from bwsandbox.validator.model import ApplicableRow, DirectorySnapshot, ExistingUser

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


def stored_state(conn: sqlite3.Connection, tenant: str) -> State:
    """A tenant's directory in the store, as records (what a test compares against)."""
    users = {
        int(r[0]): User(uid=int(r[0]), fields=json.loads(r[2]), active=bool(r[1]))
        for r in conn.execute("SELECT uid, active, fields_json FROM dir_users WHERE tenant = ? ORDER BY uid",
                              (tenant,))
    }
    departments = {
        r[0]: Department(name=r[1], parent=r[2], active=bool(r[3]))
        for r in conn.execute(
            "SELECT key, name, parent, active FROM dir_departments WHERE tenant = ?", (tenant,)
        )
    }
    manual = {
        (int(r[0]), r[1]): ManualEdit(uid=int(r[0]), field=r[1], value=r[2], at=r[3], source=r[4])
        for r in conn.execute(
            "SELECT uid, field, value, at, source FROM dir_manual WHERE tenant = ?", (tenant,)
        )
    }
    return State(users=users, departments=departments, manual=manual)


def snapshot(state: State) -> DirectorySnapshot:
    """What `validate --context` is told of a directory (managers, ids, departments)."""
    return DirectorySnapshot(
        users=tuple(
            ExistingUser(
                email=u.email,
                employee_id=u.fields.get("employee_id") or None,
                manager_email=u.fields.get("manager_email") or None,
                department_name=u.fields.get("department_name") or None,
                active=u.active,
            )
            for u in state.users.values()
        ),
        departments=tuple(d.name for d in state.departments.values()),
    )
