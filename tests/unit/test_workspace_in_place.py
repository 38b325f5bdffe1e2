"""The directory read in place: a file applied over the store's own users
(`workspace.from_store`, a view of `dir_users`) has the outcome of the same
file applied over a copy of them (`from_state`, the work table), whatever
the directory; and no rule reads the view in a way that scans the tenant's
users once per row (docs/benchmarks.md "The re-send floor")."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest
from apply_helpers import policy, rows, seeded, user
from hypothesis import given, settings
from hypothesis import strategies as st
from test_apply_unchanged import _seen, directories, files

from bwsandbox import store
from bwsandbox.ingest import quick, workspace
from bwsandbox.ingest.apply import apply_users, materialised, run
from bwsandbox.ingest.records import Outcome, Policy, State, User
from bwsandbox.spec.fields import Profile
from bwsandbox.validator.model import ApplicableRow

TENANT = "it's"  # a quote in the name: the view writes it in as a literal
OTHER = "its"  # another tenant of the same store: its users must never be read as TENANT's


def _put(conn: sqlite3.Connection, tenant: str, state: State) -> None:
    """`state` as the tenant's directory, as the store writes users."""
    with store.transaction(conn):
        conn.executemany(
            "INSERT INTO dir_users (tenant, uid, email_key, active, fields_json, eid, mkey, dept,"
            " ddate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(tenant, uid, u.key, int(u.active), json.dumps(dict(u.fields)),
              *workspace.derived_values(u.fields)) for uid, u in state.users.items()],
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO dir_departments (tenant, key, name, parent, active) VALUES (?, ?, ?, ?, ?)",
            [(tenant, key, d.name, d.parent, int(d.active)) for key, d in state.departments.items()],
        )
        conn.executemany(
            "INSERT INTO dir_manual (tenant, uid, field, value, at, source) VALUES (?, ?, ?, ?, ?, ?)",
            [(tenant, m.uid, m.field, m.value, m.at, m.source) for m in state.manual.values()],
        )


# Another tenant's directory, beside TENANT's in every store here: the same
# addresses and ids, uids shared and one beyond TENANT's, other statuses.
_OTHERS = State(users={
    uid: User(uid=uid, fields={"email": email, "first_name": "O", "last_name": "O", "employee_id": eid,
                               "manager_email": "nobody@x.com"}, active=uid % 2 == 0)
    for uid, email, eid in [(1, "a@x.com", "1"), (2, "b@x.com", "a"), (3, "c@x.com", "A"),
                            (50, "d@x.com", "2")]
})  # fmt: skip


@contextmanager
def _store(state: State) -> Iterator[sqlite3.Connection]:
    """A store holding `state` as TENANT's directory, and another tenant's."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = store.connect(Path(tmp) / "s.db")
        try:
            _put(conn, TENANT, state)
            _put(conn, OTHER, _OTHERS)
            yield conn
        finally:
            conn.close()


def _in_place(
    conn: sqlite3.Connection, f: list[ApplicableRow], terms: Policy, *, tenant: str = TENANT,
    viewed: bool = True,
) -> Outcome:
    workspace.load(conn, tenant)
    try:
        with workspace.working(conn):
            assert workspace.viewed(conn) is viewed
            return materialised(run(conn, f, terms))
    finally:
        workspace.drop(conn)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), profile=st.sampled_from(list(Profile)), licenses=st.sampled_from([None, 2]),
       by_id=st.booleans(), older=st.booleans())  # fmt: skip
def test_the_directory_read_in_place_gives_the_outcome_of_its_copy(
    data: st.DataObject, profile: Profile, licenses: int | None, by_id: bool, older: bool
) -> None:
    """`older`: a user written before store format 2 (the looked-up values in
    the JSON only): such a tenant's directory is copied, with that outcome too."""
    state = data.draw(directories())
    f = data.draw(files(state))
    if by_id and f and "employee_id" in f[0].values:  # identity by employee id: managers by id too
        f = [replace(r, values={**r.values, "manager_id": data.draw(st.sampled_from(["", "1", "a", "A"]))})
             for r in f]  # fmt: skip
    terms = policy(f, profile=profile, licenses=licenses, termination_limit=1.0)
    with _store(state) as conn:
        older = older and bool(state.users)
        if older:
            conn.execute("UPDATE dir_users SET eid = NULL, mkey = NULL, dept = NULL, ddate = NULL"
                         " WHERE tenant = ? AND uid = ?", (TENANT, min(state.users)))  # fmt: skip
        in_place = _either(lambda: _in_place(conn, f, terms, viewed=not older))
        assert in_place == _either(lambda: apply_users(state, f, terms))


def _either(apply: Callable[[], Outcome]) -> object:
    """What an apply gives, or its refusal of rows the validator would have
    refused (two reaching one user: drawn ids repeat under identity by id)."""
    try:
        return _seen(apply())
    except ValueError as exc:
        return str(exc)


def test_an_id_differing_in_letter_case_is_found_in_place() -> None:
    """Identity by employee id looks stored ids up in any letter case
    (`w_leid`): the row is skipped, as production matches ids exactly."""
    state = seeded(user("a@x.com", employee_id="AB12"))
    f = rows({**user("b@x.com"), "employee_id": "ab12", "manager_id": ""})
    with _store(state) as conn:
        outcome = _in_place(conn, f, policy(f))
    assert [(i.code, i.row) for i in outcome.findings] == [("EMPLOYEE_ID_CASE", 2)]
    assert outcome.counts["skipped"] == 1


def test_a_row_is_compared_with_its_addresss_last_holder_in_place() -> None:
    """Two users hold one address, the later one written first (the store's
    rows are not in uid order): a row whose fields are the earlier one's to
    the byte reaches the last holder, whom it changes."""
    row = user("a@x.com", title="Eng")
    state = State(users={2: User(uid=2, fields=user("a@x.com", title="Ops")), 1: User(uid=1, fields=row),
                         3: User(uid=3, fields=user("b@x.com"))})  # fmt: skip
    f = rows(row, user("b@x.com"))
    with _store(state) as conn:
        outcome = _in_place(conn, f, policy(f))
    assert [(c.action, c.uid) for c in outcome.users] == [("updated", 2)]
    assert outcome.counts == {"updated": 1, "unchanged": 1}


@pytest.mark.parametrize(("limit", "batch"), [(999, workspace.BATCH), (None, workspace.BATCH), (999, 7)])
def test_rows_compared_in_place_in_chunks_of_any_size_get_one_answer(limit: int | None, batch: int) -> None:
    """The in-place comparison (the user read by rowid) chunked as the
    connection's limit on parameters asks (999 before SQLite 3.32; None:
    the build's own): every seventh row changes its user."""
    n = 1_500
    state = seeded(*(user(f"u{i}@x.com", title="Eng") for i in range(n)))
    f = rows(*(user(f"u{i}@x.com", title="Ops" if i % 7 == 0 else "Eng") for i in range(n)))
    with _store(state) as conn, mock.patch.object(workspace, "BATCH", batch):
        if limit is not None:
            conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        outcome = _in_place(conn, f, policy(f))
    assert _seen(outcome) == _seen(apply_users(state, f, policy(f)))
    assert outcome.counts == {"updated": len(range(0, n, 7)), "unchanged": n - len(range(0, n, 7))}


def test_too_few_parameters_for_a_row_leave_every_row_to_the_merge() -> None:
    """A connection that allows a statement fewer parameters than one quick
    row needs: no row is known unchanged in SQL (the merge judges them all)."""
    state = seeded(user("a@x.com"))
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, state)
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 9)
        row = (0, 2, "a@x.com", json.dumps(user("a@x.com")), -1, "", '["email"]', 0)
        assert quick.known_same(conn, [row], 0, '["email"]') == set()
        assert conn.execute("SELECT count(*) FROM w_same").fetchone()[0] == 0
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)
        assert quick.known_same(conn, [row], 0, '["email"]') == {0}


# Files of ROWS rows over a directory of n users (`_steps`), each kind of row
# a rule looks users up for (by address, by id, by id in any letter case),
# naming the directory's last users: a lookup that walks the tenant's users
# in uid order, rather than searching an index, goes through all of them.
ROWS = 200


def _roster(n: int) -> list[dict[str, str]]:
    """n users with ids, eight to a manager, in one department."""
    return [user(f"u{i}@x.com", employee_id=f"E{i}", manager_email=f"u{i // 8}@x.com" if i else "",
                 department_name="Eng") for i in range(n)]  # fmt: skip


def _directory(n: int) -> State:
    return seeded(*_roster(n))


_FILES: dict[str, Callable[[int], list[dict[str, str]]]] = {
    "re-send": lambda n: _roster(n)[-ROWS:],
    "new users, ids taken or new": lambda n: [
        user(f"n{i}@x.com", employee_id=f"E{n - 1 - i}" if i % 2 else f"N{i}",
             manager_email=f"u{n - 1 - i}@x.com")
        for i in range(ROWS)
    ],
    "changes, ids moved": lambda n: [
        user(f"u{n - 1 - i}@x.com", employee_id=f"F{i}", title="New", manager_email=f"n{i}@x.com")
        for i in range(ROWS)
    ],
    "identity by id": lambda n: [
        {**user(f"m{i}@x.com"), "employee_id": f"e{n - 1 - i}" if i % 2 else f"E{n - 1 - i}",
         "manager_id": f"E{n - 1 - i // 2}"}
        for i in range(ROWS)
    ],
}


def _steps(n: int, kind: str, profile: Profile) -> int:
    """SQLite's virtual machine steps (thousands) applying the file of `kind`
    to `n` users, a row a batch (a lookup made once a batch is made 200
    times)."""
    f = rows(*_FILES[kind](n))
    terms = policy(f, profile=profile, termination_limit=1.0)
    with _store(_directory(n)) as conn, mock.patch.object(workspace, "BATCH", 1):
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        conn.set_progress_handler(count, 1000)
        _in_place(conn, f, terms)
        conn.set_progress_handler(None, 0)
        return steps[0]


@pytest.mark.parametrize("kind", sorted(_FILES))
@pytest.mark.parametrize("profile", [Profile.CORE, Profile.ENGAGE])
def test_no_rule_scans_the_directory_for_each_row(kind: str, profile: Profile) -> None:
    """The work a 200-row file costs grows with the directory by a few
    passes over it at most (an engage roster's leavers, the departments,
    the ids in any letter case), never by a pass per row or per batch of
    rows: from 2,000 to 6,000 users it grows by under a million steps,
    where a lookup that walked the tenant's users, even on an index, would
    add 2.4 million (7 million on the table)."""
    grown = _steps(6_000, kind, profile) - _steps(2_000, kind, profile)
    assert grown < 1_800, f"{kind}: {grown},000 more steps for 4,000 more users"



def test_each_file_reads_its_own_tenants_directory() -> None:
    """One connection applies one tenant's file, then another's: the second
    reads its own users, not the view the first left (`prepare` drops it)."""
    f = rows(user("a@x.com", title="T"), user("z@x.com"))
    mine = _directory(3)
    with _store(mine) as conn:
        first = _in_place(conn, f, policy(f))
        second = _in_place(conn, f, policy(f), tenant=OTHER)
    assert _seen(first) == _seen(apply_users(mine, f, policy(f)))
    assert _seen(second) == _seen(apply_users(_OTHERS, f, policy(f)))
