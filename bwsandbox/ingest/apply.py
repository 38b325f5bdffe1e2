"""Applying a file to the user directory: rows in, an `Outcome` out, set-based.

`run(conn, rows, policy)` applies the rows the validator says may be applied
(`ApplicableRow`) to the directory a `workspace` holds on `conn`, and returns
an `Outcome` (the changes, the counts, the manual edits overwritten, the
issues only the directory can see) whose changes are read from the
workspace as they are asked for. Nothing per user stays in Python: each
batch of rows is merged with the stored users it names and goes to the
workspace's `w_pend` table, and the rules that look across users
(`links.py`) are SQL over it and the directory (docs/benchmarks.md "Ingest
at scale"). `directory.write` stores an Outcome in one transaction.
`apply_users(state, rows, policy)` does the same for a directory given as
records (`State`), on a private connection, and returns the Outcome with
its changes in a list: `Outcome.state_after()` folds them into a new
`State`, which is what the property test `apply(apply(d, f), f) ==
apply(d, f)` runs on.

Production rules mimicked (docs/production.md §3, §5):
- identity is the email, case-insensitively; when the file has both an
  `employee_id` and a `manager_id` column, the employee id is [doc];
- a column present sets the field, an empty cell clears an optional field, an
  absent column leaves the field alone [decided];
- `deactivation_date` past or today deactivates now, a future one on that day
  (`due_deactivations`), a blank one reactivates a deactivated user [doc];
- the licence limit refuses every creation in the file while the other rows
  still apply, with production's message [doc];
- departments are created on first use [doc];
- core: users left out of a file are untouched; engage: they are terminated
  (the file is the full roster) [doc], said up front with the count and the
  share (TERMINATIONS), unless that would terminate more than
  `termination_limit` of the active users, a safety net like Okta's, on by
  default (TERMINATION_LIMIT) [decided];
- data in a file overrides earlier manual changes, and each overwritten manual
  edit is recorded [doc].

The validator refuses a second row of one address or one employee id
(EMAIL_DUPLICATE, EMPLOYEE_ID_DUPLICATE), so each user is reached by one row
at most; `run` refuses rows that break this with a ValueError, never a
silent merge.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

from bwsandbox.ingest import workspace
from bwsandbox.ingest.links import LinkRules
from bwsandbox.ingest.records import (
    Action,
    Department,
    DepartmentChange,
    Outcome,
    Policy,
    Source,
    State,
    User,
    UserChange,
    as_dict,
    email_key,
)
from bwsandbox.spec.fields import CORE_FIELDS, NEW_USER_NAMES, Profile, identity_by_employee_id
from bwsandbox.validator.findings import finding
from bwsandbox.validator.model import ApplicableRow

# Fields a file can never blank out: an empty cell there is ignored, not a
# clear (the validator reports it; docs/production.md §5 "an empty cell clears an OPTIONAL field").
REQUIRED = frozenset(f.name for f in CORE_FIELDS.values() if f.required)
# Columns that steer applying instead of being stored as they are.
_CONTROL = frozenset({"manager_id", "deactivation_date"})
BATCH = 2_000  # rows merged per round trip to the workspace
_PEND = (
    "INSERT INTO w_pend (uid, ord, row, new, active, fields, key, eid, mkey, dept, cols, has_mgr, mgr_eid,"
    " blank, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(slots=True)
class Pending:
    """A user as their row leaves them, before they go to the workspace."""

    fields: Mapping[str, str]  # a dict once owned; before, the stored fields (copy on write)
    active: bool
    new: bool
    owned: bool = True
    manager_eid: str | None = None

    def set(self, name: str, value: str) -> None:
        if self.fields.get(name) != value:
            self._own()[name] = value

    def drop(self, name: str) -> None:
        if name in self.fields:
            del self._own()[name]

    def _own(self) -> dict[str, str]:
        fields = self.fields
        if not self.owned or not isinstance(fields, dict):
            fields = self.fields = as_dict(fields)
            self.owned = True
        return fields


@dataclass(frozen=True, slots=True)
class _Stored:
    """A stored user as a row may find them: the fields as stored (JSON) and
    the values `w_dir` repeats from them."""

    active: bool
    text: str
    eid: str
    key: str
    mkey: str
    dept: str
    fields: dict[str, str]  # `text`, decoded


def _row_action(res: Pending, before: _Stored | None) -> str | None:
    """A change every later rule keeps: a creation, a new status, or no
    change at all (the stored fields, never copied). A rule that changes a
    user's fields sets their action back to NULL (`links.py`)."""
    if before is None:
        return str(Action.CREATED)
    if before.active != res.active:
        return str(Action.DEACTIVATED if before.active else Action.REACTIVATED)
    return None if res.owned else str(Action.UNCHANGED)


class _Applier(LinkRules):
    """Phases: rows (stored ids checked as they come) -> the engage safety
    net -> rows refused (names, addresses, licences) -> values refused (ids
    others hold, managers, loops, deactivated departments) -> changes ->
    omitted users. Creations are held back until every row is read so the
    licence limit can refuse all of them at once (docs/production.md §4)."""

    def __init__(self, conn: sqlite3.Connection, policy: Policy) -> None:
        self.conn = conn
        self.policy = policy
        self.out = Outcome()
        self.identity_by_employee_id = identity_by_employee_id(policy.profile, policy.columns)
        self.next_uid = int(conn.execute("SELECT coalesce(max(uid), 0) + 1 FROM w_dir").fetchone()[0])
        # Only an engage file terminates the users it leaves out (`_omitted`).
        self.full_roster = policy.profile is Profile.ENGAGE and policy.source is Source.FILE
        self.core = policy.profile is Profile.CORE
        self.has_ids = "employee_id" in policy.columns
        self.rows_seen = 0
        self._cols: dict[tuple[str, ...], str] = {}
        if self.full_roster and policy.mentioned:
            conn.executemany("INSERT OR IGNORE INTO w_seen VALUES (?)", ((k,) for k in policy.mentioned))

    # -- the rows ----------------------------------------------------------------
    def rows(self, rows: Iterable[ApplicableRow]) -> None:
        it = iter(rows)
        while batch := list(itertools.islice(it, BATCH)):
            self._batch(batch)

    def _batch(self, batch: list[ApplicableRow]) -> None:
        keys = [email_key(r.values.get("email", "")) for r in batch]
        stored, by_key, by_eid, by_lower = self._prefetch(batch, keys)
        out = []
        for arow, key in zip(batch, keys, strict=True):
            self.rows_seen += 1
            if self.has_ids and self._stored_id_differs(arow, key, stored, by_key, by_eid, by_lower):
                continue
            uid = self._find(arow.values, key, stored, by_key, by_eid)
            if uid is None:
                if not key:
                    self.out.count("skipped")
                    continue
                uid, self.next_uid = self.next_uid, self.next_uid + 1
                res = Pending(fields={}, active=True, new=True)
                before = None
            else:
                before = stored[uid]
                res = Pending(fields=before.fields, active=before.active, new=False, owned=False)
                if self.policy.profile is Profile.ENGAGE and not before.active:
                    # The engage file is the full roster: being in it means employed.
                    res.active = True
                    res.drop("deactivation_date")
            out.append(self._pending(arow, uid, res, before, key))
        if self.full_roster:
            self.conn.executemany("INSERT OR IGNORE INTO w_seen VALUES (?)", ((k,) for k in keys if k))
        try:
            self.conn.executemany(_PEND, out)
        except sqlite3.IntegrityError as exc:
            raise ValueError(
                "two rows reach one user; the validator refuses a repeated address or id"
            ) from exc

    def _prefetch(
        self, batch: list[ApplicableRow], keys: list[str]
    ) -> tuple[dict[int, _Stored], dict[str, int], dict[str, int], dict[str, str]]:
        """The stored users the batch's rows may name: by address, by
        employee id, and the stored ids equal to a row's but for letter case."""
        stored: dict[int, _Stored] = {}
        by_key: dict[str, int] = {}  # the last holder of each address (the highest uid)
        by_eid: dict[str, int] = {}
        by_lower: dict[str, str] = {}  # lower-case id -> the first stored id so spelled
        sql = (
            "SELECT uid, active, fields, eid, key, mkey, dept FROM w_dir"
            " WHERE {} IN (SELECT value FROM json_each(?)) ORDER BY uid"
        )
        by_address = self.conn.execute(sql.format("key"), (json.dumps([k for k in keys if k]),)).fetchall()
        by_id = []
        eids: list[str] = []
        if self.identity_by_employee_id:  # only then is a row's user found by their id
            eids = [e for r in batch if (e := r.values.get("employee_id", ""))]
            by_id = self.conn.execute(sql.format("eid"), (json.dumps(eids),)).fetchall()
        # One json.loads for the batch: its decoder shares the names within a
        # call, and decodes in about 60 % of the time of one call per user.
        found = by_address + by_id
        decoded = json.loads("[" + ",".join(r[2] for r in found) + "]")
        for (uid, active, text, eid, key, mkey, dept), fields in zip(found, decoded, strict=True):
            stored[uid] = _Stored(bool(active), text, eid, key, mkey, dept, fields)
        for uid, *_, key, _mkey, _dept in by_address:  # by uid: the last holder of an address wins
            by_key[key] = uid
        for uid, _active, _text, eid, *_ in by_id:
            by_eid[eid] = uid
        if eids:
            lowered = [e.lower() for e in eids if e not in by_eid]
            if lowered and self.identity_by_employee_id:
                for leid, eid in self.conn.execute(
                    "SELECT leid, eid FROM w_dir WHERE eid != '' AND leid IN (SELECT value FROM json_each(?))"
                    " ORDER BY uid",
                    (json.dumps(lowered),),
                ):
                    by_lower.setdefault(leid, eid)
        return stored, by_key, by_eid, by_lower

    def _find(
        self,
        values: Mapping[str, str],
        key: str,
        stored: Mapping[int, _Stored],
        by_key: Mapping[str, int],
        by_eid: Mapping[str, int],
    ) -> int | None:
        if not self.identity_by_employee_id:
            return by_key.get(key) if key else None
        eid = values.get("employee_id", "")
        uid = by_eid.get(eid) if eid else None
        if uid is None and key:
            # A user without an employee id yet is matched by email (a tenant
            # starting to send ids); one with another id is someone else: this
            # row is a new user, and `_unique_addresses` settles the address.
            holder = by_key.get(key)
            if holder is not None and stored[holder].eid in ("", eid):
                return holder
        return uid

    def _stored_id_differs(
        self,
        arow: ApplicableRow,
        key: str,
        stored: Mapping[int, _Stored],
        by_key: Mapping[str, int],
        by_eid: Mapping[str, int],
        by_lower: Mapping[str, str],
    ) -> bool:
        """Employee ids against the stored ones: production matches them
        exactly, so a difference in letter case alone skips the row, and in
        engage an id cannot change once set (docs/production.md §3)."""
        eid = arow.values.get("employee_id", "")
        if not eid:
            return False
        if self.identity_by_employee_id:
            if eid in by_eid:
                return False  # a user holds exactly this id: that user, whatever others hold
            held = by_lower.get(eid.lower(), "")
        else:
            holder = by_key.get(key) if key else None
            held = stored[holder].eid if holder is not None else ""
        if not held or held == eid:
            return False
        if held.lower() == eid.lower():
            self.out.findings.append(finding(
                "EMPLOYEE_ID_CASE", arow.row,
                f'The employee id "{eid}" differs from the stored "{held}" only in letter case; '
                "production matches ids exactly, so the row is skipped.",
                column="employee_id", value=eid,
            ))  # fmt: skip
        elif self.policy.profile is Profile.ENGAGE:
            self.out.findings.append(finding(
                "EMPLOYEE_ID_CHANGED", arow.row,
                f'This user already has the employee id "{held}"; in Engage an employee id cannot '
                "change once set, so the row is skipped.",
                column="employee_id", value=eid,
            ))  # fmt: skip
        else:
            return False
        self.out.count("skipped")
        return True

    def _pending(
        self, arow: ApplicableRow, uid: int, res: Pending, before: _Stored | None, row_key: str
    ) -> tuple[object, ...]:
        """The row merged into its user, as a `w_pend` row (`row_key`: the key of the row's address)."""
        values = arow.values
        blank = None
        if self.core:
            empty = [n for n in NEW_USER_NAMES if not values.get(n, "").strip() and n not in arow.dropped]
            if res.new:
                blank = json.dumps(empty) if empty else None
            else:
                for name in empty:
                    if name in self.policy.columns:  # a required field is never cleared (production.md §6)
                        self.out.findings.append(finding(
                            "REQUIRED_VALUE_KEPT", arow.row,
                            f"{name} is empty: a required field is never cleared, so the user keeps the "
                            "stored one.", column=name, value=values.get(name, ""),
                        ))  # fmt: skip
        self._merge(res, values)
        names = tuple(values)
        cols = self._cols.get(names)
        if cols is None:
            cols = self._cols[names] = json.dumps(sorted(names))
        fields = res.fields
        # What the row does, where the row alone says it (else `_changes` decides).
        action = _row_action(res, before)
        if before is not None and not res.owned:  # the stored fields, as they are
            text, key, eid, mkey, dept = before.text, before.key, before.eid, before.mkey, before.dept
        else:
            text, eid = json.dumps(fields), fields.get("employee_id", "")
            dept = fields.get("department_name", "")
            # A new user's address is the row's; an update may change it (identity by id).
            key = row_key if res.new else email_key(fields.get("email", ""))
            manager = fields.get("manager_email")
            mkey = email_key(manager) if manager else ""
        return (
            uid,
            arow.row,
            arow.row,
            int(res.new),
            int(res.active),
            text,
            key,
            eid,
            mkey,
            dept,
            cols,
            int("manager_email" in values),
            res.manager_eid,
            blank,
            action,
        )

    def _merge(self, res: Pending, values: Mapping[str, str]) -> None:
        if res.new:  # a creation: the row's values, as they are
            res.fields = {
                name: value for name, raw in values.items() if name not in _CONTROL and (value := raw.strip())
            }
        else:
            fields = res.fields
            stored = fields.get
            changed: dict[str, str] = {}  # "" = clear
            for name, raw in values.items():
                if stored(name) == raw or name in _CONTROL:
                    continue  # the value held already (held values are stripped): no change
                value = raw.strip()
                if value:
                    if fields.get(name) != value:
                        changed[name] = value
                elif name not in REQUIRED and name in fields:
                    changed[name] = ""
            for name, value in changed.items():
                if value:
                    res.set(name, value)
                else:
                    res.drop(name)
        if "deactivation_date" in values:
            date = values["deactivation_date"].strip()
            if date:
                res.set("deactivation_date", date)
                res.active = date > self.policy.today  # past or today: now; future: on that date
            else:
                res.drop("deactivation_date")
                res.active = True  # a blank date reactivates a deactivated user
        if "manager_id" in values:
            res.manager_eid = values["manager_id"].strip()

    # -- the end of the file ---------------------------------------------------
    def finish(self) -> Outcome:
        workspace.index_pending(self.conn)
        self._one_user_each()
        omitted = self._omitted()
        if omitted and not self._within_termination_limit(omitted):
            return self.out
        # Row refusals first (a refused row creates nobody and names nobody),
        # then refusals of single values.
        self._new_users_have_names()
        self._unique_addresses()
        self._licence_limit(terminating=omitted)
        self._unique_ids()
        self._final_addresses()
        self._resolve_manager_ids()
        self._managers_exist()
        self._follow_renamed_managers()
        self._refuse_cycles()
        self._refuse_deactivated_departments()
        self._changes()
        self._terminate()
        self._departments_on_first_use()
        counts = self.conn.execute(
            "SELECT action, count(*) FROM w_pend WHERE action IS NOT NULL GROUP BY action ORDER BY min(ord)"
        ).fetchall()
        for action, n in counts:
            self.out.count(str(action), int(n))
        self.out.users = Changes(self.conn)
        return self.out

    def _one_user_each(self) -> None:
        """New users of one address: two rows the validator would have refused."""
        if (
            self.conn.execute(
                "SELECT 1 FROM w_pend WHERE new GROUP BY key HAVING count(*) > 1 LIMIT 1"
            ).fetchone()
            is not None
        ):
            raise ValueError("two rows create one address; the validator refuses a repeated address")

    def _omitted(self) -> int:
        if not self.full_roster:
            return 0
        return self.conn.execute(
            "INSERT INTO w_leave SELECT uid FROM w_dir AS d WHERE active"
            " AND NOT EXISTS (SELECT 1 FROM w_pend AS p WHERE p.uid = d.uid)"
            " AND NOT EXISTS (SELECT 1 FROM w_seen AS s WHERE s.key = d.key)"
        ).rowcount

    def _changes(self) -> None:
        """What the file does to each user it reached, and the manual edits it
        takes over (docs/production.md §5)."""
        conn = self.conn
        if self.policy.source is Source.FILE:
            self._overwritten()
        if self.policy.source is Source.ADMIN:
            self._manual_set()
        conn.execute(
            "UPDATE w_pend SET action = CASE WHEN new THEN 'created'"
            " WHEN (SELECT active FROM w_dir AS s WHERE s.uid = w_pend.uid) AND NOT active THEN 'deactivated'"
            " WHEN NOT (SELECT active FROM w_dir AS s WHERE s.uid = w_pend.uid) AND active THEN 'reactivated'"
            " WHEN fields = (SELECT fields FROM w_dir AS s WHERE s.uid = w_pend.uid)"
            # a rule's json_set writes the JSON without spaces: the same fields in another spelling
            " OR json(fields) = (SELECT json(fields) FROM w_dir AS s WHERE s.uid = w_pend.uid)"
            " THEN 'unchanged' END"
            " WHERE action IS NULL"
        )
        # The rest hold the stored fields in another spelling, or new ones: compared as values.
        last = -1
        while True:
            rows = conn.execute(
                "SELECT p.uid, p.fields, s.fields FROM w_pend AS p JOIN w_dir AS s ON s.uid = p.uid"
                " WHERE p.action IS NULL AND p.uid > ? ORDER BY p.uid LIMIT ?",
                (last, BATCH),
            ).fetchall()
            if not rows:
                return
            conn.executemany(
                "UPDATE w_pend SET action = ? WHERE uid = ?",
                (
                    ("unchanged" if json.loads(new) == json.loads(old) else "updated", uid)
                    for uid, new, old in rows
                ),
            )
            last = int(rows[-1][0])

    def _terminate(self) -> None:
        self.conn.execute(
            "INSERT INTO w_pend (uid, ord, row, new, active, fields, key, eid, mkey, dept, cols, has_mgr,"
            " action)"
            " SELECT d.uid, 3000000000000 + d.uid, NULL, 0, 0, json_set(d.fields, '$.deactivation_date', ?),"
            " d.key, d.eid, d.mkey, d.dept, '[]', 0, 'terminated'"
            " FROM w_leave AS l JOIN w_dir AS d ON d.uid = l.uid",
            (self.policy.today,),
        )

    def _departments_on_first_use(self) -> None:
        """A department a change names and the directory lacks is created, at
        its first change (docs/production.md §3); the first spelling names it."""
        known: set[str] = set()
        for name, row, _first in self.conn.execute(  # each spelling once, in the order first met
            "SELECT dept, row, min(ord) FROM w_pend WHERE action != 'unchanged' AND dept != ''"
            " GROUP BY dept ORDER BY min(ord)"
        ).fetchall():
            key = name.lower()
            if key in known or self.conn.execute("SELECT 1 FROM w_dept WHERE key = ?", (key,)).fetchone():
                continue
            known.add(key)
            self.out.departments.append(
                DepartmentChange(action=Action.CREATED, before=None, after=Department(name=name), row=row)
            )


class Changes:
    """The changes of an outcome, read from the workspace in the order the
    file made them, a batch at a time (a million changes are never a
    million objects at once). Valid while the workspace is."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.execute(
            "INSERT INTO w_seq (n, uid) SELECT row_number() OVER (ORDER BY ord) - 1, uid FROM w_pend"
            " WHERE action != 'unchanged' ORDER BY ord"
        )
        self._len = int(conn.execute("SELECT count(*) FROM w_seq").fetchone()[0])

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[UserChange]:
        return (change for _, change in self._numbered("", ()))

    def others(self) -> Iterator[tuple[int, UserChange]]:
        """Every change but the creations, with its place among all (from 0)."""
        return self._numbered("AND p.action != 'created'", ())

    def _numbered(self, where: str, params: tuple[str, ...]) -> Iterator[tuple[int, UserChange]]:
        last = -1
        while True:
            rows = self._conn.execute(
                "SELECT q.n, p.uid, p.action, p.row, p.fields, p.active, s.fields, s.active"
                " FROM w_seq AS q JOIN w_pend AS p ON p.uid = q.uid LEFT JOIN w_dir AS s ON s.uid = p.uid"
                f" WHERE q.n > ? {where} ORDER BY q.n LIMIT ?",
                (last, *params, BATCH),
            ).fetchall()
            for n, uid, action, row, fields, active, before, was_active in rows:
                yield (
                    n,
                    UserChange(
                        action=Action(action),
                        uid=uid,
                        row=row,
                        fields=json.loads(fields),
                        active=bool(active),
                        before=None
                        if before is None
                        else User(uid=uid, fields=json.loads(before), active=bool(was_active)),
                    ),
                )
            if len(rows) < BATCH:
                return
            last = int(rows[-1][0])

    def of(self, *actions: Action) -> Iterator[UserChange]:
        """The changes of these kinds, in order."""
        wanted = json.dumps(sorted(str(a) for a in actions))
        return (c for _, c in self._numbered("AND p.action IN (SELECT value FROM json_each(?))", (wanted,)))


def run(conn: sqlite3.Connection, rows: Iterable[ApplicableRow], policy: Policy) -> Outcome:
    """Apply user rows (core or engage) to the directory in `conn`'s
    workspace. See the module docstring for the rules."""
    applier = _Applier(conn, policy)
    applier.rows(rows)
    return applier.finish()


def apply_users(state: State, rows: Iterable[ApplicableRow], policy: Policy) -> Outcome:
    """`run` on a directory given as records; the changes come back as a list."""
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, state)
        return materialised(run(conn, rows, policy))


def materialised(outcome: Outcome) -> Outcome:
    """The outcome with its changes read into a list (to outlive its workspace)."""
    return replace(outcome, users=list(outcome.users))


def run_departments(conn: sqlite3.Connection, rows: Iterable[ApplicableRow], policy: Policy) -> Outcome:
    """A department file (docs/production.md §3): `name`, optional `parent`, optional `is_active`."""
    del policy  # a department file reads no setting
    out = Outcome()
    busy = {  # active users per department (lower-case name)
        str(k): int(n)
        for k, n in conn.execute(
            "SELECT bw_lower(trim(dept)) AS k, count(*) FROM w_dir"
            " WHERE active AND trim(dept) != '' GROUP BY k"
        )
    }
    current = {
        str(r[0]): Department(name=r[1], parent=r[2], active=bool(r[3]))
        for r in conn.execute("SELECT key, name, parent, active FROM w_dept")
    }
    for arow in rows:
        name = arow.values.get("name", "").strip()
        if not name:
            out.count("skipped")
            continue
        before = current.get(name.lower())
        after = before or Department(name=name)
        if "parent" in arow.values:
            after = replace(after, parent=arow.values["parent"].strip())
        if "is_active" in arow.values and arow.values["is_active"]:
            active = arow.values["is_active"] == "true"
            count = busy.get(name.lower(), 0)
            if not active and count:
                out.findings.append(finding(
                    "DEPARTMENT_HAS_ACTIVE_USERS", arow.row,
                    f'The department "{name}" still has {count} active user(s); move or deactivate them '
                    "before deactivating it.",
                    column="is_active", value=arow.values["is_active"],
                ))  # fmt: skip
            else:
                after = replace(after, active=active)
        if before == after:
            out.count("unchanged")
            continue
        current[name.lower()] = after
        out.departments.append(
            DepartmentChange(
                action=Action.CREATED if before is None else Action.UPDATED,
                before=before,
                after=after,
                row=arow.row,
            )
        )
        # Counted as departments_created/updated from the changes (reports.build),
        # never in the users' counters.
    return out


def apply_departments(state: State, rows: Iterable[ApplicableRow], policy: Policy) -> Outcome:
    """`run_departments` on a directory given as records."""
    with workspace.private() as conn:
        workspace.from_state(conn, state)
        return run_departments(conn, rows, policy)


def due_deactivations(state: State, today: str) -> Outcome:
    """Future deactivation dates the sandbox clock has now reached (docs/production.md §3)."""
    out = Outcome()
    changes = []
    for user in state.users.values():
        date = user.fields.get("deactivation_date", "")
        if user.active and date and date <= today:
            changes.append(
                UserChange(
                    action=Action.DEACTIVATED,
                    before=user,
                    uid=user.uid,
                    fields=user.fields,
                    active=False,
                    row=None,
                )
            )
            out.count("deactivated")
    out.users = changes
    return out
