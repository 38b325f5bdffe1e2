"""Applying a file to the user directory: PURE, records in, changes out (h11).

`apply_users(state, rows, policy)` and `apply_departments(...)` never touch
SQLite, files or the clock: they take the directory as a `State`, the rows the
validator says may be applied (`ApplicableRow`) and a `Policy`, and return an
`Outcome` (the changes, the counts, the manual edits overwritten, the issues
only the directory can see). `Outcome.state_after()` folds the changes into a
new `State`, which is what the property test
`apply(apply(d, f), f) == apply(d, f)` runs on. `directory.py` writes an
Outcome to the store in one transaction. The rules that look across users
(unique addresses, manager links, departments moved into) are in `links.py`.

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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace

from bwsandbox.ingest import roster
from bwsandbox.ingest.links import NONE, LinkRules, Pending
from bwsandbox.ingest.records import (
    Action,
    Department,
    DepartmentChange,
    ManualEdit,
    Outcome,
    Overwrite,
    Policy,
    Source,
    State,
    User,
    UserChange,
    as_dict,
    email_key,
)
from bwsandbox.spec import messages
from bwsandbox.spec.fields import CORE_FIELDS, NEW_USER_NAMES, Profile, identity_by_employee_id
from bwsandbox.validator.findings import finding
from bwsandbox.validator.model import ApplicableRow

# Fields a file can never blank out: an empty cell there is ignored, not a
# clear (the validator reports it; docs/production.md §5 "an empty cell clears an OPTIONAL field").
REQUIRED = frozenset(f.name for f in CORE_FIELDS.values() if f.required)
# Columns that steer applying instead of being stored as they are.
_CONTROL = frozenset({"manager_id", "deactivation_date"})


class _Applier(LinkRules):
    """Phases: rows (stored ids checked as they come) -> the engage safety
    net -> rows refused (names, addresses, licences) -> values refused (ids
    others hold, managers, loops, deactivated departments) -> changes ->
    omitted users. Creations are held back until every row is read so the
    licence limit can refuse all of them at once (docs/production.md §4)."""

    def __init__(self, state: State, policy: Policy) -> None:
        self.state = state
        self.policy = policy
        self.out = Outcome()
        self.holders: dict[str, int] = {u.key: uid for uid, u in state.users.items()}  # before the file
        self.created_by_email: dict[str, int] = {}  # the users this file creates
        self.final_by_email: dict[str, int] = {}  # after the file (see `_final_addresses`)
        self.identity_by_employee_id = identity_by_employee_id(policy.profile, policy.columns)
        # Identity by employee id only: who holds each id, and the stored ids
        # by their lower case (`find`, `_stored_id_differs`).
        self.by_employee_id: dict[str, int] = {}
        self.by_lower_id: dict[str, str] = {}
        if self.identity_by_employee_id:
            for uid, u in state.users.items():
                eid = u.fields.get("employee_id", "")
                if eid:
                    self.by_employee_id[eid] = uid
                    self.by_lower_id.setdefault(eid.lower(), eid)
        self.results: dict[int, Pending] = {}
        self.next_uid = state.next_uid
        self.seen_keys: set[str] = set(policy.mentioned)
        # Only an engage file terminates the users it leaves out (`_omitted`).
        self.full_roster = policy.profile is Profile.ENGAGE and policy.source is Source.FILE
        self.core = policy.profile is Profile.CORE
        self.has_ids = "employee_id" in policy.columns
        self.rows_seen = 0
        self.unchanged = 0
        self.leaving: set[int] = set()  # engage: the users this file terminates
        self.link_refused: set[int] = set()  # users whose manager the file may not set
        self._interned: dict[tuple[frozenset[str], tuple[str, ...]], frozenset[str]] = {}

    def find(self, values: Mapping[str, str], key: str) -> int | None:
        if not self.identity_by_employee_id:
            if not key:
                return None
            uid = self.holders.get(key)
            return self.created_by_email.get(key) if uid is None else uid
        eid = values.get("employee_id", "")
        uid = self.by_employee_id.get(eid) if eid else None
        if uid is None and key:
            # A user without an employee id yet is matched by email (a tenant
            # starting to send ids); one with another id is someone else: this
            # row is a new user, and `_unique_addresses` settles the address.
            holder = self.holders.get(key)
            if holder is not None and self._fields(holder).get("employee_id", "") in ("", eid):
                return holder
        return uid

    def _stored_id_differs(self, arow: ApplicableRow, key: str) -> bool:
        """Employee ids against the stored ones: production matches them
        exactly, so a difference in letter case alone skips the row, and in
        engage an id cannot change once set (docs/production.md §3)."""
        eid = arow.values.get("employee_id", "")
        if not eid:
            return False
        if self.identity_by_employee_id:
            if eid in self.by_employee_id:
                return False  # a user holds exactly this id: that user, whatever others hold
            stored = self.by_lower_id.get(eid.lower(), "")
        else:
            holder = self.holders.get(key) if key else None
            stored = self.state.users[holder].fields.get("employee_id", "") if holder is not None else ""
        if not stored or stored == eid:
            return False
        if stored.lower() == eid.lower():
            self.out.findings.append(finding(
                "EMPLOYEE_ID_CASE", arow.row,
                f'The employee id "{eid}" differs from the stored "{stored}" only in letter case; '
                "production matches ids exactly, so the row is skipped.",
                column="employee_id", value=eid,
            ))  # fmt: skip
        elif self.policy.profile is Profile.ENGAGE:
            self.out.findings.append(finding(
                "EMPLOYEE_ID_CHANGED", arow.row,
                f'This user already has the employee id "{stored}"; in Engage an employee id cannot '
                "change once set, so the row is skipped.",
                column="employee_id", value=eid,
            ))  # fmt: skip
        else:
            return False
        self.out.count("skipped")
        return True

    def row(self, arow: ApplicableRow) -> None:
        self.rows_seen += 1
        values = arow.values
        key = email_key(values.get("email", ""))
        if key and self.full_roster:
            self.seen_keys.add(key)
        if self.has_ids and self._stored_id_differs(arow, key):
            return
        uid = self.find(values, key)
        res = self.results.get(uid) if uid is not None else None
        if res is None:
            if uid is None:
                if not key:
                    self.out.count("skipped")
                    return
                uid = self.next_uid
                self.next_uid += 1
                self.created_by_email[key] = uid
                eid = values.get("employee_id", "").strip()
                if eid and self.identity_by_employee_id:
                    self.by_employee_id[eid] = uid
                res = Pending(uid=uid, fields={}, active=True, row=arow.row, columns=NONE, new=True)
            else:
                before = self.state.users[uid]
                res = Pending(
                    uid=uid, fields=before.fields, active=before.active, row=arow.row,
                    columns=NONE, new=False, owned=False,
                )
                if self.policy.profile is Profile.ENGAGE and not before.active:
                    # The engage file is the full roster: being in it means employed.
                    res.active = True
                    res.drop("deactivation_date")
            self.results[uid] = res
        res.row = arow.row
        res.columns = self._union(res.columns, tuple(values))
        if self.core:
            blank = tuple(
                [n for n in NEW_USER_NAMES if not values.get(n, "").strip() and n not in arow.dropped]
            )
            if res.new:
                res.blank_names = blank
            else:
                for name in blank:
                    if name in self.policy.columns:  # a required field is never cleared (production.md §6)
                        self.out.findings.append(finding(
                            "REQUIRED_VALUE_KEPT", arow.row,
                            f"{name} is empty: a required field is never cleared, so the user keeps the "
                            "stored one.", column=name, value=values.get(name, ""),
                        ))  # fmt: skip
        old_eid = res.fields.get("employee_id", "") if self.identity_by_employee_id else None
        self._merge(res, values)
        if old_eid is not None:
            eid = res.fields.get("employee_id", "")
            if eid and eid != old_eid:  # an adopted id: later rows find the user by it
                self.by_employee_id[eid] = res.uid

    def _merge(self, res: Pending, values: Mapping[str, str]) -> None:
        if res.new and not res.fields:  # the common creation: build the dict at once
            res.fields = {
                name: value for name, raw in values.items()
                if name not in _CONTROL and (value := raw.strip())
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
        self._release_row_lookups()
        omitted = self._omitted()
        if omitted and not self._within_termination_limit(omitted):
            return self.out
        self.leaving = {u.uid for u in omitted}
        # Row refusals first (a refused row creates nobody and names nobody),
        # then refusals of single values.
        self._new_users_have_names()
        self._unique_addresses()
        self._licence_limit(terminating=len(omitted))
        self._unique_ids()
        self._final_addresses()
        self._resolve_manager_ids()
        self._managers_exist()
        self._follow_renamed_managers(omitted)
        self._refuse_cycles()
        self._refuse_deactivated_departments()
        self.final_by_email, self._interned = {}, {}  # the rules are done with them
        results = self.results
        for uid in list(results):  # each let go once it is a change: the file's peak is lower
            self._change(results.pop(uid))
        if self.unchanged:
            self.out.count(str(Action.UNCHANGED), self.unchanged)
        self._terminate(omitted)
        self._departments_on_first_use()
        for action, n in Counter(change.action for change in self.out.users).items():
            self.out.count(str(action), n)
        return self.out

    def _release_row_lookups(self) -> None:
        """Every row is read: the indexes that found each row's user (one
        entry per user each) are let go before the rules build theirs."""
        self.holders = {}
        self.created_by_email = {}
        self.by_employee_id = {}
        self.by_lower_id = {}

    def _licence_limit(self, terminating: int) -> None:
        created = [res for res in self.results.values() if res.new]
        if not created or self.policy.licenses is None:
            return
        # Licences in use once the file's other rows (deactivations, engage
        # terminations) are applied: what the file frees, it may reuse.
        in_use = sum(
            1 for uid, u in self.state.users.items() if u.active and uid not in self.results
        ) + sum(1 for res in self.results.values() if not res.new and res.active) - terminating
        available = max(self.policy.licenses - in_use, 0)
        if len(created) <= available:
            return
        # Every creation row gets production's message, as `validate --context`
        # gives it (row scope: those rows are skipped, docs/production.md §4).
        text = messages.license_limit(len(created), available)
        for res in created:
            self.out.findings.append(finding("LICENSE_LIMIT", res.row, text))
            self._refuse_row(res)

    def _change(self, res: Pending) -> None:
        before = None if res.new else self.state.users[res.uid]
        fields = res.fields
        if before is not None and self.policy.source is Source.FILE and self.state.manual:
            for name in res.columns:
                edit = self.state.manual.get((res.uid, name))
                if edit is None:
                    continue
                self.out.manual_cleared.append((res.uid, name))
                new = fields.get(name, "")
                if new != edit.value:
                    self.out.overwritten.append(
                        Overwrite(
                            email=fields.get("email", ""), field=name, manual_value=edit.value,
                            file_value=new, edited_at=edit.at, edited_by=edit.source, row=res.row,
                        )
                    )
        if self.policy.source is Source.ADMIN:
            for name in sorted(res.columns - {"email", "manager_id"}):
                self.out.manual_set.append(
                    ManualEdit(
                        uid=res.uid, field=name, value=fields.get(name, ""),
                        at=self.policy.now, source=self.policy.source_label,
                    )
                )
        if before is not None and before.active == res.active and (
            before.fields is fields or before.fields == fields  # `is`: never copied, so never changed
        ):
            self.unchanged += 1  # counted, not listed: nothing to write
            return
        if before is None:
            action = Action.CREATED
        elif before.active and not res.active:
            action = Action.DEACTIVATED
        elif not before.active and res.active:
            action = Action.REACTIVATED
        else:
            action = Action.UPDATED
        self.out.users.append(UserChange(
            action=action, before=before, uid=res.uid, fields=fields, active=res.active, row=res.row,
        ))

    def _omitted(self) -> list[User]:
        if not self.full_roster:
            return []
        return [
            u for u in self.state.users.values()
            if u.active and u.uid not in self.results and u.key not in self.seen_keys
        ]

    def _within_termination_limit(self, omitted: list[User]) -> bool:
        """docs/production.md §5 safety net, said up front either way (`ingest/roster.py`,
        the words `validate --context` predicts them with)."""
        active_before = self.state.active_count()
        limit = self.policy.termination_limit
        if roster.within_limit(len(omitted), active_before, limit):
            self.out.findings.append(roster.terminations([u.email for u in omitted], active_before))
            return True
        self.out = Outcome(refused=True)
        self.out.count("skipped", self.rows_seen)  # nothing in the file applies
        self.out.findings.append(roster.termination_limit(len(omitted), active_before, limit))
        return False

    def _terminate(self, omitted: list[User]) -> None:
        for user in omitted:
            fields_ = as_dict(user.fields)
            fields_["deactivation_date"] = self.policy.today
            self.out.users.append(UserChange(
                action=Action.TERMINATED, before=user, uid=user.uid, fields=fields_, active=False, row=None,
            ))

    def _departments_on_first_use(self) -> None:
        known = set(self.state.departments)
        for change in self.out.users:
            name = change.fields.get("department_name", "")
            if name and name.lower() not in known:
                known.add(name.lower())
                self.out.departments.append(
                    DepartmentChange(
                        action=Action.CREATED, before=None, after=Department(name=name), row=change.row
                    )
                )


def apply_users(state: State, rows: Iterable[ApplicableRow], policy: Policy) -> Outcome:
    """Apply user rows (core or engage). See the module docstring for the rules."""
    applier = _Applier(state, policy)
    for arow in rows:
        applier.row(arow)
    return applier.finish()


def apply_departments(state: State, rows: Iterable[ApplicableRow], policy: Policy) -> Outcome:
    """A department file (docs/production.md §3): `name`, optional `parent`, optional `is_active`."""
    out = Outcome()
    busy: dict[str, int] = {}  # active users per department (lower-case name)
    for user in state.users.values():
        department = user.fields.get("department_name", "").strip().lower()
        if user.active and department:
            busy[department] = busy.get(department, 0) + 1
    current = dict(state.departments)
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


def due_deactivations(state: State, today: str) -> Outcome:
    """Future deactivation dates the sandbox clock has now reached (docs/production.md §3)."""
    out = Outcome()
    for user in state.users.values():
        date = user.fields.get("deactivation_date", "")
        if user.active and date and date <= today:
            out.users.append(UserChange(
                action=Action.DEACTIVATED, before=user, uid=user.uid, fields=user.fields, active=False,
                row=None,
            ))
            out.count("deactivated")
    return out

