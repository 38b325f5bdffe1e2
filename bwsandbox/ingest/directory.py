"""The simulated Betterworks user directory in the SQLite store.

Users, departments (with parents), outstanding manual edits, and a history
of every change with its source (file + row, admin edit, or the clock) and
the value it replaced. `workspace.from_store` gives a file's apply the
tenant's directory; `write()` stores the `records.Outcome` (reading each
change before it writes it: its `before` is the directory as it was). `write()` never
commits: the caller wraps it in the same transaction that marks the file
done, so a file is applied exactly once even after `kill -9`.

Writes are set-based: a file's users are copied from its workspace by one
statement each for the creations and the changes, the history of its
changes written a batch at a time (`executemany`), so applying a
million-row file costs seconds, not minutes (docs/benchmarks.md).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from bwsandbox.ingest import notify
from bwsandbox.ingest.apply import due_deactivations
from bwsandbox.ingest.records import (
    Action,
    Department,
    Outcome,
    Source,
    State,
    User,
    UserChange,
    email_key,
    fields_diff,
)
from bwsandbox.ingest.workspace import SWEPT, Changes, StoredChange, derived_values, older, viewed
from bwsandbox.validator import accel


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """Where a change came from, as history records it."""

    kind: Source
    label: str  # e.g. "file 12 users.csv", "admin set-user", "clock"
    at: str
    file_id: int | None = None


CHUNK = 5_000  # the clock's changes written per executemany batch: bounded memory, one transaction

_USER_INSERT = (
    "INSERT INTO dir_users (tenant, uid, email_key, active, fields_json, eid, mkey, dept, ddate,"
    " created_batch, created_hid, created_row)"
)
# What every update of a user sets but their address, status and id (`_KEPT` below).
_SET_FIELDS = (
    "fields_json = excluded.fields_json, mkey = excluded.mkey, dept = excluded.dept, ddate = excluded.ddate,"
    " created_batch = NULL, created_hid = NULL, created_row = NULL"
)
_ON_CONFLICT = (
    " ON CONFLICT (tenant, uid) DO UPDATE SET email_key = excluded.email_key, active = excluded.active,"
    f" eid = excluded.eid, {_SET_FIELDS}"
)
# A user's row as the workspace holds it (?: the tenant), before its creation's columns.
_FROM_PEND = "SELECT ?, p.uid, p.key, p.active, p.fields, p.eid, p.mkey, p.dept, p.ddate"
# A changed user: NULLs written by the statement, not bound (sqlite3 binds
# None through its adapter lookup, measurably slower per row than an int).
_UPDATE = f"{_USER_INSERT} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL){_ON_CONFLICT}"
# The users a file changes (not creates), from the workspace as the rules left
# them: its columns repeat the fields as DERIVED reads them (`workspace.py`),
# so nothing is made in Python. In the order of their uids, as the store keeps them.
# (Never numbered by their uids, which only a first load's creations are: `Changes.numbered`.)
_CHANGED = "FROM w_seq AS q CROSS JOIN w_pend AS p ON p.uid = q.uid WHERE p.action != 'created'"
# SQLite rewrites a row's entry in every index over a column an update sets,
# changed or not. Most changes keep the user's address, status and id (the
# columns of `dir_users_address` and `dir_users_eid`), so they are written by
# an update that sets none of those (about 0.7 s less per 100,000 changes of
# 1,000,000 users, docs/benchmarks.md), guarded so it passes by any other
# user; those (`_MOVED`, a `json_each` list of uids, or every change) get
# the whole update, guarded the other way: each change is written by
# exactly one of the two.
_KEPT = "email_key = excluded.email_key AND active = excluded.active AND eid IS excluded.eid"
_CHANGED_ROWS = f"{_USER_INSERT} {_FROM_PEND}, NULL, NULL, NULL {_CHANGED}"
_UPDATE_IN_PLACE = (
    f"{_CHANGED_ROWS} ORDER BY p.uid ON CONFLICT (tenant, uid) DO UPDATE SET {_SET_FIELDS} WHERE {_KEPT}"
)
_UPDATE_MOVED = f"{_CHANGED_ROWS} AND {{}} ORDER BY p.uid{_ON_CONFLICT} WHERE NOT ({_KEPT})"
_MOVED = _UPDATE_MOVED.format("p.uid IN (SELECT value FROM json_each(?))")
_ANY_MOVED = _UPDATE_MOVED.format("1")
_HISTORY = (  # under the id kept for it (`_reserve_history_ids`)
    "INSERT INTO dir_history (id, tenant, at, subject_kind, subject, action, before_json, after_json,"
    " status, source_kind, source, file_id, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A user's creation as its history row, from the user as stored (unchanged
# since: see "creations" below) and the batch that created them.
_CREATION_ROW = (
    "u.created_hid, b.at, 'user', u.email_key, 'created', NULL, u.fields_json,"
    " CASE WHEN u.active THEN 'active' ELSE 'deactivated' END, b.source_kind, b.source, b.file_id,"
    " u.created_row"
)
_CREATION_FROM = (  # LEFT: a creation never vanishes (without its batch, copying it fails: NOT NULL)
    " FROM dir_users AS u LEFT JOIN dir_batches AS b ON b.id = u.created_batch"
    " WHERE u.tenant = ? AND u.created_hid IS NOT NULL"
)
_MATERIALISE = (
    "INSERT INTO dir_history (id, at, subject_kind, subject, action, before_json, after_json, status,"
    f" source_kind, source, file_id, row, tenant) SELECT {_CREATION_ROW}, u.tenant{_CREATION_FROM}"
    " AND u.uid IN ({})"
)
_MATERIALISE_LISTED = _MATERIALISE.format("SELECT value FROM json_each(?)")  # a chunk of uids
_MATERIALISE_CHANGED = _MATERIALISE.format(f"SELECT p.uid {_CHANGED}")

# Creations: a first load creates every user of the file, and a history row
# each would cost more than the users themselves (docs/benchmarks.md "The
# store floor"). So a write that creates users records where they came from
# once, in `dir_batches`, and keeps in each new user's row the batch, the
# file's row and the history id reserved for the creation (a write reserves
# one id per change, in order, moving AUTOINCREMENT's counter past them).
# Until the user next changes, their stored fields and status ARE the
# creation's, so `history()` shows the creation from there under that id, in
# its place among the other rows; the write that changes them first turns it
# into a dir_history row with that id.


def _reserve_history_ids(conn: sqlite3.Connection, n: int) -> int:
    """Keep the next `n` dir_history ids for a write's changes; returns the id before
    the first. SQLite lets its `sqlite_sequence` be updated like any table,
    and AUTOINCREMENT never hands out an id at or below it."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'dir_history'").fetchone()
    if row is None:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('dir_history', ?)", (n,))
        return 0
    conn.execute("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'dir_history'", (n,))
    return int(row[0])


def write(conn: sqlite3.Connection, tenant: str, outcome: Outcome, origin: Provenance) -> None:
    """Store an outcome's changes and their history. The caller holds the transaction."""
    history = _History(tenant, origin.at, str(origin.kind), origin.label, origin.file_id)
    changed = outcome.users  # read as it is written: a million changes are never all in memory
    # Every change gets its history id now, in the order of the changes (so
    # the history keeps the file's order, departments after the users), a
    # creation's kept on its user.
    count = len(changed) + len(outcome.departments)
    first_hid = _reserve_history_ids(conn, count) + 1 if count else 0
    if outcome.counts.get(str(Action.CREATED)):
        if not isinstance(changed, Changes):
            raise ValueError("users are created from a workspace (apply.run)")
        batch = conn.execute(  # lastrowid, not RETURNING: SQLite before 3.35 is still shipped
            "INSERT INTO dir_batches (tenant, at, source_kind, source, file_id) VALUES (?, ?, ?, ?, ?)",
            (tenant, history.at, history.source_kind, history.label, history.file_id),
        ).lastrowid
        # The users the file creates, copied into the store as they are in the
        # workspace, each under the history id kept for its creation.
        n, numbered = changed.numbered("p.action = 'created'")
        conn.execute(
            f"{_USER_INSERT} {_FROM_PEND}, ?, ? + {n} - 1, p.row {numbered}", (tenant, batch, first_hid, 0)
        )
    if isinstance(changed, Changes):
        _write_changes(conn, changed.others(), first_hid, history)
    else:
        _write_listed(conn, enumerate(changed), first_hid, history)
    next_hid = first_hid + len(changed)
    conn.executemany(
        "INSERT INTO dir_departments (tenant, key, name, parent, active) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (tenant, key) DO UPDATE SET name = excluded.name,"
        " parent = excluded.parent, active = excluded.active",
        (
            (tenant, d.after.name.lower(), d.after.name, d.after.parent, int(d.after.active))
            for d in outcome.departments
        ),
    )
    conn.executemany(
        _HISTORY,
        (
            history.entry(
                hid, "department", d.after.name, str(d.action),
                None if d.before is None else json.dumps(_department_fields(d.before)),
                json.dumps(_department_fields(d.after)), d.after.active, d.row,
            )
            for hid, d in enumerate(outcome.departments, next_hid)
        ),
    )
    # docs/production.md §5: the manager of each deactivated user is told, by email.
    leaving = (
        changed.of(Action.DEACTIVATED, Action.TERMINATED) if isinstance(changed, Changes)
        else (c for c in changed if c.action in (Action.DEACTIVATED, Action.TERMINATED))
    )
    notify.notify_managers(
        conn, tenant=tenant, at=history.at, source=history.label, file_id=history.file_id,
        on=history.at[:10],
        changes=((c.fields, c.action is Action.TERMINATED) for c in leaving),
    )
    conn.executemany(
        "DELETE FROM dir_manual WHERE tenant = ? AND uid = ? AND field = ?",
        ((tenant, uid, name) for uid, name in outcome.manual_cleared),
    )
    conn.executemany(
        "INSERT INTO dir_manual (tenant, uid, field, value, at, source) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (tenant, uid, field) DO UPDATE SET value = excluded.value,"
        " at = excluded.at, source = excluded.source",
        ((tenant, m.uid, m.field, m.value, m.at, m.source) for m in outcome.manual_set),
    )


def change_texts(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[str, str]:
    """The history's JSON of a change from fields `old` to `new`: {name: old
    value} and {name: new value} of each field `fields_diff` lists, but a
    "status" field (the history's status column says the status)."""
    diff = [d for d in fields_diff(old, new) if d[0] != "status"]
    return json.dumps({name: was for name, was, _ in diff}), json.dumps({name: now for name, _, now in diff})


def history_texts(old: str | None, new: str) -> tuple[str, str]:
    """`change_texts` of the fields' JSON texts (`old` None: no fields yet)."""
    return change_texts({} if old is None else json.loads(old), json.loads(new))


def history_texts_engine() -> Callable[[str | None, str], tuple[str, str]]:
    """`history_texts`, by the C module where it is built and not turned off
    (`validator/accel.py`), which reads the texts with no object made of
    them and leaves any text it does not read to Python; chosen once per write."""
    if not accel.engines().ccells:
        return history_texts
    from bwsandbox.validator._ccells import history_texts as in_c

    def texts(old: str | None, new: str) -> tuple[str, str]:
        got = in_c(old, new)
        return history_texts(old, new) if got is NotImplemented else got

    return texts


@dataclass(frozen=True, slots=True)
class _History:
    """What every history row of one write says alike, and its rows."""

    tenant: str
    at: str
    source_kind: str
    label: str
    file_id: int | None

    def row(
        self, hid: int, key: str, action: str, old: Mapping[str, str], new: Mapping[str, str], active: bool,
        file_row: int | None,
    ) -> tuple[object, ...]:
        """A user's change as its history row (`change_texts`), with the status after."""
        return self.entry(hid, "user", key, action, *change_texts(old, new), active, file_row)

    def entry(
        self, hid: int, kind: str, subject: str, action: str, before: str | None, after: str, active: bool,
        file_row: int | None,
    ) -> tuple[object, ...]:
        """A `_HISTORY` row of this write."""
        return (
            hid, self.tenant, self.at, kind, subject, action, before, after,
            "active" if active else "deactivated", self.source_kind, self.label, self.file_id, file_row,
        )  # fmt: skip


def _write_changes(
    conn: sqlite3.Connection, others: Iterator[list[StoredChange]], first_hid: int, history: _History
) -> None:
    """A file's changes other than creations, from its workspace: their history
    (each read before it is written), then the users, in SQL."""
    batch = next(others, None)
    if batch is None:
        return
    # Creations these changes reach, as history rows, before their users' rows change.
    conn.execute(_MATERIALISE_CHANGED, (history.tenant,))
    texts = history_texts_engine()
    moved: list[int] | None = [] if viewed(conn) else None  # None: a copied directory, any may
    while batch is not None:
        conn.executemany(_HISTORY, [
            history.entry(first_hid + n - 1, "user", key, action, *texts(old, fields), bool(active), row)
            for n, _, action, row, fields, active, old, _, key, *_ in batch
        ])  # fmt: skip
        if moved is not None:  # the view's columns are the store's, which `_KEPT` compares
            moved += [uid for _, uid, _, _, _, active, _, was_active, key, was_key, eid, was_eid in batch
                      if (key, active, eid) != (was_key, was_active, was_eid)]  # fmt: skip
        batch = next(others, None)
    conn.execute(_UPDATE_IN_PLACE, (history.tenant,))
    if moved is None:
        conn.execute(_ANY_MOVED, (history.tenant,))
    elif moved:
        conn.execute(_MOVED, (history.tenant, json.dumps(moved)))


def _write_listed(
    conn: sqlite3.Connection, changes: Iterator[tuple[int, UserChange]], first_hid: int, history: _History
) -> None:
    """Changes given as records (the clock's: `sweep`), a chunk at a time."""
    while chunk := list(itertools.islice(changes, CHUNK)):
        user_rows = []
        history_rows = []
        for n, c in chunk:
            fields = c.fields
            key = email_key(fields.get("email", ""))
            user_rows.append(
                (history.tenant, c.uid, key, int(c.active), json.dumps(dict(fields)), *derived_values(fields))
            )
            old = c.before.fields if c.before is not None else {}
            history_rows.append(history.row(first_hid + n, key, str(c.action), old, fields, c.active, c.row))
        # Before the rows change (nothing for users whose creation is a row already).
        conn.execute(_MATERIALISE_LISTED, (history.tenant, json.dumps([c.uid for _, c in chunk])))
        conn.executemany(_UPDATE, user_rows)
        conn.executemany(_HISTORY, history_rows)


def _department_fields(department: Department) -> dict[str, object]:
    return {"name": department.name, "parent": department.parent, "active": department.active}


def history(
    conn: sqlite3.Connection, tenant: str, email: str | None = None, *, file_id: int | None = None
) -> Iterator[dict[str, object]]:
    """Every change, oldest first (of one user's address, of one file's):
    the dir_history rows and the creations still kept on the users' rows
    (see "creations" above), in id order."""
    sql = (
        "SELECT id, at, subject_kind, subject, action, before_json, after_json, status, source_kind,"
        " source, file_id, row FROM dir_history WHERE tenant = ?"
    )
    creations = f"SELECT {_CREATION_ROW}{_CREATION_FROM}"
    params: tuple[object, ...] = (tenant,)
    if email:
        sql += " AND subject_kind = 'user' AND subject = ?"
        creations += " AND u.email_key = ?"
        params += (email.lower(),)
    if file_id is not None:
        sql += " AND file_id = ?"
        creations += " AND b.file_id = ?"
        params += (file_id,)
    for r in conn.execute(f"{sql} UNION ALL {creations} ORDER BY 1", params + params):
        before = json.loads(r[5]) if r[5] is not None else {}
        after = json.loads(r[6])
        changes = {name: [before.get(name, ""), value] for name, value in after.items()}
        changes.update({name: [old, ""] for name, old in before.items() if name not in after})
        yield {
            "at": r[1], "kind": r[2], "subject": r[3], "action": r[4], "changes": changes,
            "status": r[7], "source_kind": r[8], "source": r[9], "file_id": r[10], "row": r[11],
        }


def version(conn: sqlite3.Connection, tenant: str) -> int:
    """Bumped by every write: a file computed on an older directory is recomputed."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"dir_version:{tenant}",)).fetchone()
    return int(row[0]) if row else 0


def bump(conn: sqlite3.Connection, tenant: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE"
        " SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        (f"dir_version:{tenant}",),
    )


# The active users whose deactivation date `today` (?2) has reached: those with a
# date of their own (`{}`: ddate > '', which the store's index of them holds) or
# written before store format 2 (ddate IS NULL; SWEPT reads their fields).
_DUE = "SELECT uid, active, fields_json FROM dir_users WHERE tenant = ?1 AND active = 1 AND {} AND " + SWEPT


def sweep(conn: sqlite3.Connection, tenant: str, today: str, at: str) -> int:
    """Make future deactivation dates that `today` has reached effective (docs/production.md §3).
    The caller holds the transaction. Returns how many users were deactivated."""
    rows = conn.execute(_DUE.format("ddate > ''"), (tenant, today)).fetchall()  # by `dir_users_due`
    if older(conn, tenant):  # their date only in their fields (a scan of the tenant)
        rows += conn.execute(_DUE.format("ddate IS NULL"), (tenant, today)).fetchall()
    if not rows:
        return 0
    state = State(
        users={int(r[0]): User(uid=int(r[0]), fields=json.loads(r[2]), active=True)
               for r in sorted(rows, key=lambda r: int(r[0]))}
    )
    outcome = due_deactivations(state, today)
    origin = Provenance(kind=Source.CLOCK, label="clock: deactivation date reached", at=at)
    write(conn, tenant, outcome, origin)
    bump(conn, tenant)
    return len(outcome.users)


def users_listing(conn: sqlite3.Connection, tenant: str) -> list[dict[str, str]]:
    """`bwsandbox directory`: one dict per user, in creation order."""
    out = []
    for r in conn.execute(
        "SELECT active, fields_json FROM dir_users WHERE tenant = ? ORDER BY uid", (tenant,)
    ):
        fields = json.loads(r[1])
        fields["status"] = "active" if r[0] else "deactivated"
        out.append(fields)
    return out


LISTING_BATCH = 1_000  # users read per query when a listing streams


def iter_users(
    conn: sqlite3.Connection, tenant: str, *, batch: int = LISTING_BATCH
) -> Iterator[dict[str, str]]:
    """The users of `users_listing`, in the same order and shape, read `batch`
    at a time: each query takes the next uids after the last one seen, on the
    (tenant, uid) primary key, so listing a million users holds one batch in
    memory, never the whole directory. Run it inside `read_snapshot` for one
    consistent view across the batches."""
    last = -(2**63)  # below any uid SQLite can hold
    while True:
        rows = conn.execute(
            "SELECT uid, active, fields_json FROM dir_users WHERE tenant = ? AND uid > ?"
            " ORDER BY uid LIMIT ?",
            (tenant, last, batch),
        ).fetchall()
        for r in rows:
            fields = json.loads(r[2])
            fields["status"] = "active" if r[1] else "deactivated"
            yield fields
        if len(rows) < batch:
            return
        last = int(rows[-1][0])


def user_field_names(conn: sqlite3.Connection, tenant: str) -> set[str]:
    """Every field any of the tenant's users holds, `status` included (none
    without users): the columns of a listing, known before its first row is
    written. SQLite walks the JSON, so only the names reach Python."""
    if conn.execute("SELECT 1 FROM dir_users WHERE tenant = ? LIMIT 1", (tenant,)).fetchone() is None:
        return set()
    keys = conn.execute(
        "SELECT DISTINCT j.key FROM dir_users AS u, json_each(u.fields_json) AS j WHERE u.tenant = ?",
        (tenant,),
    )
    return {"status", *(str(r[0]) for r in keys)}


@contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction: reads in several queries see one state of the
    store, as a single SELECT would, while writers go on (WAL)."""
    conn.execute("BEGIN DEFERRED")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")  # nothing was written


def departments_listing(conn: sqlite3.Connection, tenant: str) -> list[dict[str, object]]:
    return [
        {"name": r[0], "parent": r[1], "active": bool(r[2])}
        for r in conn.execute(
            "SELECT name, parent, active FROM dir_departments WHERE tenant = ? ORDER BY key", (tenant,)
        )
    ]
