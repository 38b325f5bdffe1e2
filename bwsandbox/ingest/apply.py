"""Applying a file to the user directory: rows in, an `Outcome` out, set-based.

`run(conn, rows, policy)` applies the rows the validator says may be applied
(`ApplicableRow`) to the directory a `workspace` holds on `conn`, and returns
an `Outcome` (the changes, the counts, the manual edits overwritten, the
issues only the directory can see) whose changes are read from the
workspace as they are asked for. Nothing per user stays in Python: each
batch of rows is merged with the stored users it names and goes to the
workspace's `w_pend` table, and the rules that look across users
(`links.py`) are SQL over it and the directory (docs/benchmarks.md "Ingest
at scale"). A user a row leaves as they are goes to `w_same` instead, and
joins `w_pend` only if a rule reads them there (`changes.py` `_back_in`): a
re-sent roster then costs the rules nothing. Such a row is mostly known
without the merge (`quick.py`, one SQL statement per batch): the fields
it gives a new user, written as the store writes them (`stored.new_text`,
in C), are the stored text to the byte, so the user is neither read into
Python nor merged. `directory.write`
stores an Outcome in one transaction.
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
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import partial

from bwsandbox.ingest import fresh, reports, valuechange, workspace
from bwsandbox.ingest.ahead import ahead
from bwsandbox.ingest.changes import ChangeRules
from bwsandbox.ingest.loops import LoopRules
from bwsandbox.ingest.quick import (
    Quick,
    QuickRule,
    columns_text,
    known_records,
    known_rows,
    read_records,
    record_spec,
    status_after,
)
from bwsandbox.ingest.quick import rows as quick_rows
from bwsandbox.ingest.records import (
    Action,
    FirstChanges,
    Outcome,
    Policy,
    Source,
    State,
    UserChange,
    address_key,
)
from bwsandbox.ingest.stored import (
    CONTROL,
    Found,
    Pending,
    Stored,
    new_fields,
    new_text,
    prefetch,
    row_action,
)
from bwsandbox.spec.fields import CORE_FIELDS, NEW_USER_NAMES, Profile, identity_by_employee_id
from bwsandbox.validator.applicable import Applicable
from bwsandbox.validator.findings import finding
from bwsandbox.validator.model import ApplicableRow

# Fields a file can never blank out: an empty cell there is ignored, not a
# clear (the validator reports it; docs/production.md §5 "an empty cell clears an OPTIONAL field").
REQUIRED = frozenset(f.name for f in CORE_FIELDS.values() if f.required)
_UNCHANGED = str(Action.UNCHANGED)
_PEND = workspace.pend_insert(dict.fromkeys(workspace.PEND_COLUMNS, "?"))
_SAME_IN = "INSERT INTO w_same (uid, row, cols, has_mgr, mkey) VALUES (?, ?, ?, ?, ?)"
# Where `_merge_rows` reads a `w_pend` row of a user the row leaves as they are, for `w_same`.
_MKEY, _ACTION = (workspace.PEND_COLUMNS.index(c) for c in ("mkey", "action"))


class _Applier(LoopRules, ChangeRules):
    """Phases: rows (stored ids checked as they come) -> the engage safety
    net -> rows refused (names, addresses, licences) -> values refused (ids
    others hold, managers, loops, deactivated departments) -> changes ->
    omitted users. Creations are held back until every row is read so the
    licence limit can refuse all of them at once (docs/production.md §4)."""

    def __init__(self, conn: sqlite3.Connection, policy: Policy, *, every_row_in: bool = False) -> None:
        self.conn = conn
        self.policy = policy
        self.out = Outcome()
        self.identity_by_employee_id = identity_by_employee_id(policy.profile, policy.columns)
        self.next_uid = int(conn.execute("SELECT coalesce(max(uid), 0) + 1 FROM w_dir").fetchone()[0])
        # Only an engage file terminates the users it leaves out (`_omitted`).
        self.full_roster = policy.profile is Profile.ENGAGE and policy.source is Source.FILE
        self.core = policy.profile is Profile.CORE
        self.has_ids = "employee_id" in policy.columns
        self._new_text = new_text()
        # Names a user must keep (core): an empty cell of one is a finding, not a clear.
        self.kept_names = tuple(n for n in NEW_USER_NAMES if n in policy.columns) if self.core else ()
        workspace.index_ids(conn, exact=self.has_ids, any_case=self.identity_by_employee_id)
        self.rows_seen = 0
        self._cols: dict[tuple[str, ...], str] = {}
        # A row that leaves its user as they are may stay out of `w_pend`: `_back_in`
        # holds for managers named by address (a `manager_id` is resolved once every
        # row is in), so for identity by email (identity by id needs that column),
        # and not for the Admin module (which records every value it is given).
        self.may_stay_out = (
            not every_row_in and policy.source is Source.FILE and "manager_id" not in policy.columns
        )
        # Rows known unchanged in SQL (`quick.py`): not into an empty directory (a first load).
        self.empty = conn.execute("SELECT 1 FROM w_dir LIMIT 1").fetchone() is None
        self.quick = self.may_stay_out and not self.empty
        rule = QuickRule(kept=self.kept_names, engage=policy.profile is Profile.ENGAGE, today=policy.today,
                         ids=self.has_ids, columns=policy.columns, text=self._new_text)  # fmt: skip
        self._rule = rule
        self.all_columns = columns_text(policy.columns)  # the columns a NULL `cols` stands for
        self._judge = quick_rows(rule, self._columns)
        if self.full_roster and policy.mentioned:
            conn.executemany("INSERT OR IGNORE INTO w_seen VALUES (?)", ((k,) for k in policy.mentioned))

    # -- the rows ----------------------------------------------------------------
    def rows(self, rows: Iterable[ApplicableRow]) -> None:
        if isinstance(rows, Applicable) and (self.quick or self.empty) and self._records(rows):
            return
        it = iter(rows)
        while batch := list(itertools.islice(it, workspace.BATCH)):
            keys = [address_key(r.values) for r in batch]
            pairs = list(zip(batch, keys, strict=True))
            if self.quick:
                try:
                    pairs = known_rows(
                        self.conn, pairs, self._judge, self._settle, self.rows_seen, self.all_columns
                    )
                except sqlite3.IntegrityError as exc:
                    raise _twice() from exc
            self._seen(keys)
            self._merge_rows(pairs)

    def _records(self, rows: Applicable) -> bool:
        """A CSV file's rows by their records, the common one read in C: a re-sent file's into quick rows
        (`quick.py`), a first load's straight into `w_pend` (`fresh.py`); False where C does not read them."""
        spec = record_spec(self._rule, rows.plain) if self.quick else None
        limit, policy = self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), self.policy
        made = (fresh.plan(rows.plain, policy.columns, core=self.core, today=policy.today, limit=limit)
                if self.empty else None)
        batches = rows.batches(workspace.BATCH) if spec is not None or made is not None else None
        if batches is None:
            return False
        if spec is not None:  # the next batch read while this one is compared (`ahead.py`)
            with ahead(batches, partial(read_records, spec=spec, judge=self._judge)) as read:
                for records, got in read:
                    try:
                        rest = known_records(self.conn, records, got, self._settle, self.rows_seen,
                                             self.all_columns)  # fmt: skip
                    except sqlite3.IntegrityError as exc:
                        raise _twice() from exc
                    self._seen(got.keys)
                    self._merge_rows(rest)
            return True
        assert made is not None
        for records in batches:
            try:
                keys, new, rest, uids, self.next_uid = fresh.created(records, made, self.next_uid)
                fresh.insert(self.conn, made, new)
            except sqlite3.IntegrityError as exc:
                raise _twice() from exc
            self._seen(keys)
            self._merge_rows(rest, uids)
        return True

    def _settle(self, missed: list[Quick]) -> set[int]:
        """The rows of `missed` (found changing their user) that change only
        values, written as the merge would write them (`valuechange.py`)."""
        pend, same, settled = valuechange.settle(
            self.conn, missed, ids=self.has_ids, engage=self._rule.engage, full=self.all_columns
        )
        self.conn.executemany(valuechange.PEND_INSERT, pend)
        self.conn.executemany(_SAME_IN, same)
        return settled

    def _seen(self, keys: list[str]) -> None:
        """A batch's rows counted, and (engage) their addresses noted."""
        self.rows_seen += len(keys)
        if self.full_roster:
            self.conn.executemany("INSERT OR IGNORE INTO w_seen VALUES (?)", ((k,) for k in keys if k))

    def _merge_rows(
        self, rest: list[tuple[ApplicableRow, str]], uids: list[int | None] | None = None
    ) -> None:
        """A batch's rows (with the keys of their addresses) merged into their
        users (`uids`: the uid kept for each row that creates one, `fresh.py`)."""
        eids = []  # only under identity by id is a row's user found by their id
        if self.identity_by_employee_id:
            eids = [e for r, _ in rest if (e := r.values.get("employee_id", ""))]
        found = prefetch(self.conn, [key for _, key in rest], eids)
        found.decode()
        out: list[tuple[object, ...]] = []
        same: list[tuple[object, ...]] = []  # rows the merge finds leave their user as they are
        for n, (arow, key) in enumerate(rest):
            if self.has_ids and self._stored_id_differs(arow, key, found):
                continue
            uid = self._find(arow.values, key, found)
            if uid is None:
                if not key:
                    self.out.count("skipped")
                    continue
                if uids is None or (uid := uids[n]) is None:
                    uid, self.next_uid = self.next_uid, self.next_uid + 1
                res = Pending(fields={}, active=True, new=True)
                before = None
                fields = res.fields
            else:
                before, fields = found.users[uid], found.fields_of(uid)
                res = Pending(fields=fields, active=before.active, new=False, owned=False)
                if self.policy.profile is Profile.ENGAGE and not before.active:
                    # The engage file is the full roster: being in it means employed.
                    res.active = True
                    res.drop("deactivation_date")
            pending = self._pending(arow, uid, res, before, fields, key)
            if pending[_ACTION] == _UNCHANGED and self.may_stay_out:
                same.append(self._same(uid, arow, str(pending[_MKEY])))
            else:
                out.append(pending)
        try:
            self.conn.executemany(_PEND, out)
            self.conn.executemany(_SAME_IN, same)
        except sqlite3.IntegrityError as exc:
            raise _twice() from exc

    def _same(self, uid: int, arow: ApplicableRow, mkey: str) -> tuple[object, ...]:
        """A `w_same` row: the row's columns, and its manager's key where it names one."""
        has_manager = "manager_email" in arow.values
        return (uid, arow.row, self._kept_columns(arow.values), int(has_manager), mkey if has_manager else "")

    def _columns(self, values: Mapping[str, str]) -> str:
        """The columns a row gives its user (JSON), one string per set of them."""
        names = tuple(values)
        cols = self._cols.get(names)
        if cols is None:
            cols = self._cols[names] = columns_text(names)
        return cols

    def _kept_columns(self, values: Mapping[str, str]) -> str | None:
        """The columns a row gives its user as `w_pend` and `w_same` keep them:
        None where they are the file's all (most rows; 150 bytes a row)."""
        cols = self._columns(values)
        return None if cols == self.all_columns else cols

    def _find(self, values: Mapping[str, str], key: str, found: Found) -> int | None:
        if not self.identity_by_employee_id:
            return found.by_key.get(key) if key else None
        eid = values.get("employee_id", "")
        uid = found.by_eid.get(eid) if eid else None
        if uid is None and key:
            # A user without an employee id yet is matched by email (a tenant
            # starting to send ids); one with another id is someone else: this
            # row is a new user, and `_unique_addresses` settles the address.
            holder = found.by_key.get(key)
            if holder is not None and found.users[holder].eid in ("", eid):
                return holder
        return uid

    def _stored_id_differs(self, arow: ApplicableRow, key: str, found: Found) -> bool:
        """Employee ids against the stored ones: production matches them
        exactly, so a difference in letter case alone skips the row, and in
        engage an id cannot change once set (docs/production.md §3)."""
        eid = arow.values.get("employee_id", "")
        if not eid:
            return False
        if self.identity_by_employee_id:
            if eid in found.by_eid:
                return False  # a user holds exactly this id: that user, whatever others hold
            held = found.by_lower.get(eid.lower(), "")
        else:
            holder = found.by_key.get(key) if key else None
            held = found.users[holder].eid if holder is not None else ""
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
        self,
        arow: ApplicableRow,
        uid: int,
        res: Pending,
        before: Stored | None,
        stored: Mapping[str, str],
        row_key: str,
    ) -> tuple[object, ...]:
        """The row merged into its user, as a `w_pend` row (`stored`: the
        user's stored fields; `row_key`: the key of the row's address)."""
        values = arow.values
        blank = None
        if self.core:
            empty = [n for n in NEW_USER_NAMES if not values.get(n, "").strip() and n not in arow.dropped]
            if res.new:
                blank = json.dumps(empty) if empty else None
            else:
                for name in empty:
                    if name in self.kept_names:  # a required field is never cleared (production.md §6)
                        self.out.findings.append(finding(
                            "REQUIRED_VALUE_KEPT", arow.row,
                            f"{name} is empty: a required field is never cleared, so the user keeps the "
                            "stored one.", column=name, value=values.get(name, ""),
                        ))  # fmt: skip
        self._merge(res, values)
        cols = self._kept_columns(values)
        fields = res.fields
        # What the row does, where the row alone says it (else `_changes` decides).
        action = row_action(res, before, stored)
        # The columns that repeat a field (`workspace.DERIVED`), made here from the
        # dict at hand rather than read back from the JSON by SQL.
        if before is not None and not res.owned:  # the stored fields, as they are
            text, key, eid, mkey, dept, ddate = before.columns()
        else:  # a new user's fields are `new_fields(values)`, which `_new_text` writes in C
            text = self._new_text(values) if res.new else json.dumps(fields)
            eid, mkey, dept, ddate = workspace.derived_values(fields)
            # A new user's address is the row's; an update may change it (identity by id).
            key = row_key if res.new else address_key(fields)
        has_manager = int("manager_email" in values)
        return (uid, arow.row, arow.row, int(res.new), int(res.active), text, key, eid, mkey, dept, ddate,
                cols, has_manager, res.manager_eid, blank, action)  # fmt: skip

    def _merge(self, res: Pending, values: Mapping[str, str]) -> None:
        if res.new:  # a creation: the row's values, as they are
            res.fields = new_fields(values)
        else:
            fields = res.fields
            stored = fields.get
            changed: dict[str, str] = {}  # "" = clear
            for name, raw in values.items():
                if stored(name) == raw or name in CONTROL:
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
            if date := values["deactivation_date"].strip():
                res.set("deactivation_date", date)
            else:
                res.drop("deactivation_date")
        res.active = status_after(values, res.active, self.policy.today)
        if "manager_id" in values:
            res.manager_eid = values["manager_id"].strip()

    # -- the end of the file ---------------------------------------------------
    def finish(self) -> Outcome:
        self._one_user_each()
        omitted = self._omitted()
        if omitted and not self._within_termination_limit(omitted):
            return self.out
        self._back_in()
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
        self.out.users = changes = workspace.Changes(self.conn, all_new=self.empty)
        for action, n in changes.actions.items():
            self.out.count(action, n)
        left = f"SELECT (SELECT count(*) FROM w_same) - ({workspace.in_both(self.conn, 'count(*)')})"
        if same := int(self.conn.execute(left).fetchone()[0]):
            self.out.count(_UNCHANGED, same)
        return self.out

    def _one_user_each(self) -> None:
        """The indexes of `w_pend`, once every row is in, and no rows the
        validator would have refused: a user reached by two rows (one of which
        left them as they are), new users of one address (the address index
        refuses them as it is made)."""
        if self.conn.execute(f"{workspace.in_both(self.conn, '1')} LIMIT 1").fetchone() is not None:
            raise _twice()  # as if both rows had gone to `w_pend`, where their insert fails
        try:
            # Its address index refuses them. Into an empty directory, every user is
            # the file's, numbered as its rows reach them: uid order is file order.
            workspace.index_pending(self.conn, ids=self.has_ids, all_new=self.empty)
        except sqlite3.IntegrityError as exc:
            raise ValueError("two rows create one address; the validator refuses a repeated address") from exc


def _twice() -> ValueError:
    return ValueError("two rows reach one user; the validator refuses a repeated address or id")


def run(
    conn: sqlite3.Connection, rows: Iterable[ApplicableRow], policy: Policy, *, every_row_in: bool = False
) -> Outcome:
    """Apply user rows (core or engage) to the directory in `conn`'s
    workspace. See the module docstring for the rules. `every_row_in`: every
    user a row reaches goes to `w_pend`, those it leaves as they are too (the
    reference that keeping them out is checked against, in the tests)."""
    applier = _Applier(conn, policy, every_row_in=every_row_in)
    applier.rows(rows)
    return applier.finish()


def apply_users(
    state: State, rows: Iterable[ApplicableRow], policy: Policy, *, every_row_in: bool = False
) -> Outcome:
    """`run` on a directory given as records; the changes come back as a list."""
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, state)
        return materialised(run(conn, rows, policy, every_row_in=every_row_in))


def materialised(outcome: Outcome) -> Outcome:
    """The outcome with its changes read into a list (to outlive its workspace)."""
    return replace(outcome, users=list(outcome.users))


def shown(outcome: Outcome) -> Outcome:
    """The outcome with the changes a report lists (`reports.CHANGES_SHOWN`)
    and the count of all, read from the workspace before it goes."""
    first = tuple(itertools.islice(outcome.users, reports.CHANGES_SHOWN))
    return replace(outcome, users=FirstChanges(first, len(outcome.users)))


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
