"""Applying a file to the user directory: PURE, records in, changes out (h11).

`apply_users(state, rows, policy)` and `apply_departments(...)` never touch
SQLite, files or the clock: they take the directory as a `State`, the rows the
validator says may be applied (`ApplicableRow`) and a `Policy`, and return an
`Outcome` (the changes, the counts, the manual edits overwritten, the issues
only the directory can see). `Outcome.state_after()` folds the changes into a
new `State`, which is what the property test
`apply(apply(d, f), f) == apply(d, f)` runs on. `directory.py` writes an
Outcome to the store in one transaction.

Production rules mimicked (SPEC §3, §5):
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
  (the file is the full roster) [doc], unless that would terminate more than
  `termination_limit` of the active users, a safety net like Okta's [decided];
- data in a file overrides earlier manual changes, and each overwritten manual
  edit is recorded [doc].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from bwsandbox.ingest.records import (
    Action,
    Department,
    DepartmentChange,
    Issue,
    ManualEdit,
    Outcome,
    Overwrite,
    Policy,
    Source,
    State,
    User,
    UserChange,
    email_key,
)
from bwsandbox.spec import messages
from bwsandbox.spec.fields import Profile
from bwsandbox.validator.model import ApplicableRow

# Fields a file can never blank out: an empty cell there is ignored, not a
# clear (the validator reports it; SPEC §5 "an empty cell clears an OPTIONAL field").
REQUIRED = frozenset({"email", "first_name", "last_name"})
# Columns that steer applying instead of being stored as they are.
_CONTROL = frozenset({"manager_id", "deactivation_date"})


_NONE: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Pending:
    """A user as the file leaves them, before it is turned into a change."""

    uid: int
    fields: dict[str, str]
    active: bool
    row: int | None
    columns: frozenset[str]  # interned: rows of one file share one object
    new: bool
    manager_eid: str | None = None
    owned: bool = True  # False: `fields` is still the stored user's dict (copy on write)

    def set(self, name: str, value: str) -> None:
        if self.fields.get(name) != value:
            self._own()
            self.fields[name] = value

    def drop(self, name: str) -> None:
        if name in self.fields:
            self._own()
            del self.fields[name]

    def _own(self) -> None:
        # A million unchanged rows must not copy a million dicts.
        if not self.owned:
            self.fields = dict(self.fields)
            self.owned = True


class _Applier:
    """Phases: rows -> licence check -> manager ids -> changes -> omitted users.
    Creations are held back until every row is read so the licence limit can
    refuse all of them at once (SPEC §4)."""

    def __init__(self, state: State, policy: Policy) -> None:
        self.state = state
        self.policy = policy
        self.out = Outcome()
        self.by_email: dict[str, int] = {u.key: uid for uid, u in state.users.items()}
        self.holders = dict(self.by_email)  # who holds each address before the file
        self.refused_ids: set[str] = set()  # employee ids of creations the directory refused
        self.final_by_email: dict[str, int] = {}  # after the file (see `_final_addresses`)
        self.by_employee_id: dict[str, int] = {}
        for uid, u in state.users.items():
            eid = u.fields.get("employee_id", "")
            if eid:
                self.by_employee_id[eid] = uid
        self.identity_by_employee_id = (
            policy.profile is Profile.CORE and {"employee_id", "manager_id"} <= policy.columns
        )
        self.results: dict[int, _Pending] = {}
        self.next_uid = state.next_uid
        self.seen_keys: set[str] = set(policy.mentioned)
        self._interned: dict[tuple[frozenset[str], tuple[str, ...]], frozenset[str]] = {}

    def _union(self, columns: frozenset[str], more: tuple[str, ...]) -> frozenset[str]:
        key = (columns, more)
        found = self._interned.get(key)
        if found is None:
            found = self._interned[key] = columns.union(more)
        return found

    def find(self, values: Mapping[str, str], key: str) -> int | None:
        if not self.identity_by_employee_id:
            return self.by_email.get(key) if key else None
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

    def _fields(self, uid: int) -> Mapping[str, str]:
        """A user's fields as the file leaves them so far (or as stored)."""
        res = self.results.get(uid)
        return res.fields if res is not None else self.state.users[uid].fields

    def row(self, arow: ApplicableRow) -> None:
        values = arow.values
        key = email_key(values.get("email", ""))
        if key:
            self.seen_keys.add(key)
        uid = self.find(values, key)
        res = self.results.get(uid) if uid is not None else None
        if res is None:
            if uid is None:
                if not key:
                    self.out.count("skipped")
                    return
                uid = self.next_uid
                self.next_uid += 1
                self.by_email[key] = uid
                eid = values.get("employee_id", "").strip()
                if eid:
                    self.by_employee_id[eid] = uid
                res = _Pending(uid=uid, fields={}, active=True, row=arow.row, columns=_NONE, new=True)
            else:
                before = self.state.users[uid]
                res = _Pending(
                    uid=uid, fields=before.fields, active=before.active, row=arow.row,  # type: ignore[arg-type]
                    columns=_NONE, new=False, owned=False,
                )
                if self.policy.profile is Profile.ENGAGE and not before.active:
                    # The engage file is the full roster: being in it means employed.
                    res.active = True
                    res.drop("deactivation_date")
            self.results[uid] = res
        res.row = arow.row
        res.columns = self._union(res.columns, tuple(values))
        old_eid = res.fields.get("employee_id", "")
        self._merge(res, values)
        eid = res.fields.get("employee_id", "")
        if eid and eid != old_eid:  # an adopted id: later rows find the user by it
            self.by_employee_id[eid] = res.uid

    def _merge(self, res: _Pending, values: Mapping[str, str]) -> None:
        if res.new and not res.fields:  # the common creation: build the dict at once
            res.fields = {
                name: value for name, raw in values.items()
                if name not in _CONTROL and (value := raw.strip())
            }
        else:
            fields = res.fields
            changed: dict[str, str] = {}  # "" = clear
            for name, raw in values.items():
                if name in _CONTROL:
                    continue
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
        omitted = self._omitted()
        if omitted and not self._within_termination_limit(len(omitted)):
            return self.out
        self._unique_addresses()
        self._licence_limit(terminating=len(omitted))
        self._final_addresses()
        self._resolve_manager_ids()
        self._refuse_links_to_refused_users()
        self._follow_renamed_managers(omitted)
        self._refuse_cycles_through_the_directory()
        self._refuse_deactivated_departments()
        for res in self.results.values():
            self._change(res)
        self._terminate(omitted)
        self._departments_on_first_use()
        for change in self.out.users:
            self.out.count(str(change.action))
        return self.out

    def _unique_addresses(self) -> None:
        """SPEC §4: two users never share an address. With identity by employee
        id a row may give a user an address another user holds; decided on the
        whole file (a row freeing it later counts), so the order of the rows
        never matters. Whoever keeps their address keeps it; the row moving
        onto it is refused, with production's message."""
        if not self.identity_by_employee_id:
            return
        while True:
            owners: dict[str, list[int]] = {}
            for uid, user in self.state.users.items():
                if uid not in self.results:
                    owners.setdefault(user.key, []).append(uid)
            for res in self.results.values():
                owners.setdefault(email_key(res.fields.get("email", "")), []).append(res.uid)
            refused = [
                uid for key, uids in owners.items() if len(uids) > 1
                for uid in uids
                if uid in self.results and (uid not in self.state.users or self.state.users[uid].key != key)
            ]
            if not refused:
                return
            for uid in refused:
                res = self.results.pop(uid)
                if res.new and res.fields.get("employee_id"):
                    self.refused_ids.add(res.fields["employee_id"])
                self.out.issues.append(
                    Issue(code="EMAIL_DUPLICATE", severity="error", row=res.row, column="email",
                          value=res.fields.get("email", ""), message=messages.SHARED_EMAIL)
                )
                self.out.count("skipped")

    def _final_addresses(self) -> None:
        """Who holds each address once the file is applied (links resolve here)."""
        final = {u.key: uid for uid, u in self.state.users.items() if uid not in self.results}
        for res in self.results.values():
            final[email_key(res.fields.get("email", ""))] = res.uid
        self.final_by_email = final

    def _refuse_links_to_refused_users(self) -> None:
        """A manager the validator found in the file, whose own row the
        directory then refused (licences, a taken address), does not exist:
        the link is not set."""
        for res in self.results.values():
            value = res.fields.get("manager_email", "")
            if "manager_email" not in res.columns or not value:
                continue
            if email_key(value) in self.final_by_email:
                continue
            if not res.new and self.state.users[res.uid].fields.get("manager_email") == value:
                continue  # an old link the file repeats: the validator's business
            self.out.issues.append(
                Issue(code="MANAGER_NOT_FOUND", severity="error", row=res.row, column="manager_email",
                      value=value, message=messages.manager_not_found(value.strip()))
            )
            self._keep_stored(res, "manager_email")

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
        # gives it (row scope: those rows are skipped, SPEC §4).
        text = messages.license_limit(len(created), available)
        for res in created:
            del self.results[res.uid]
            if res.fields.get("employee_id"):
                self.refused_ids.add(res.fields["employee_id"])
            self.out.issues.append(
                Issue(code="LICENSE_LIMIT", severity="error", row=res.row, message=text)
            )
        self.out.count("skipped", len(created))

    def _resolve_manager_ids(self) -> None:
        # manager_id names the manager by employee id (SPEC §3); the directory
        # links managers by email, so resolve once every row is in.
        wanted = [res for res in self.results.values() if res.manager_eid is not None]
        if not wanted:
            return
        emails: dict[str, str] = {}
        for uid, user in self.state.users.items():
            if uid not in self.results and user.fields.get("employee_id"):
                emails[user.fields["employee_id"]] = user.email
        for res in self.results.values():
            if res.fields.get("employee_id"):
                emails[res.fields["employee_id"]] = res.fields.get("email", "")
        for res in wanted:
            assert res.manager_eid is not None
            if not res.manager_eid:
                res.drop("manager_email")
            elif res.manager_eid in emails and res.manager_eid != res.fields.get("employee_id"):
                res.set("manager_email", emails[res.manager_eid])
            elif res.manager_eid in self.refused_ids:  # the validator found it in the file
                self.out.issues.append(
                    Issue(code="MANAGER_NOT_FOUND", severity="error", row=res.row, column="manager_id",
                          value=res.manager_eid,
                          message=(f"Could not find manager id: {res.manager_eid} (that user's own row "
                                   "was refused); the manager is not set."))
                )
                self._keep_stored(res, "manager_email")
            # else: unknown manager id; the validator reports it, the value is not applied
            res.columns = self._union(res.columns, ("manager_email",))

    def _follow_renamed_managers(self, omitted: list[User]) -> None:
        """A manager whose address the file changed (identity by employee id)
        stays everyone's manager: links are stored as addresses, so the users
        they manage follow the new one, in the file or not (the same person;
        no other field of theirs changes)."""
        renamed: dict[str, str] = {}
        for res in self.results.values():
            if not res.new:
                old = self.state.users[res.uid].email
                new = res.fields.get("email", old)
                if email_key(new) != email_key(old):  # letter case alone: links still resolve
                    renamed[email_key(old)] = new
        if not renamed:
            return
        gone = {u.uid for u in omitted}
        for uid, user in self.state.users.items():
            if uid in gone:
                continue
            pending = self.results.get(uid)
            if pending is not None and "manager_email" in pending.columns:
                continue  # the file says who this user's manager is
            fields = pending.fields if pending is not None else user.fields
            target = renamed.get(email_key(fields.get("manager_email", "")))
            if target is None:
                continue
            if pending is None:
                pending = self.results[uid] = _Pending(
                    uid=uid, fields=dict(user.fields), active=user.active, row=None, columns=_NONE,
                    new=False,
                )
            pending.set("manager_email", target)

    def _manager_of(self, uid: int) -> int | None:
        key = email_key(self._fields(uid).get("manager_email", ""))
        return self.final_by_email.get(key) if key else None

    def _refuse_cycles_through_the_directory(self) -> None:
        """SPEC §6: a manager chain must not loop. The validator sees the
        loops among the file's rows; one that closes through users the file
        leaves as they are shows only here: such a row keeps its old manager.
        Each user's chain is walked once (`safe`: known to reach the top)."""
        safe: set[int] = set()
        for res in list(self.results.values()):
            if "manager_email" not in res.columns or not res.fields.get("manager_email"):
                continue
            path = [res.uid]
            on_path = {res.uid}
            node = self._manager_of(res.uid)
            while node is not None and node not in safe and node not in on_path:
                path.append(node)
                on_path.add(node)
                node = self._manager_of(node)
            if node is None or node in safe:
                safe.update(path)
                continue
            if node != res.uid:
                continue  # a loop further up, not through this row (already in the directory)
            value = res.fields["manager_email"]
            by_id = res.manager_eid is not None  # the file named the manager by employee id
            self.out.issues.append(
                Issue(
                    code="MANAGER_CYCLE", severity="error", row=res.row,
                    column="manager_id" if by_id else "manager_email",
                    value=res.manager_eid if by_id else value,
                    message=(
                        f"The manager chain loops back to this user through users already in Betterworks "
                        f"(manager: {value}); the manager is not set."
                    ),
                )
            )
            self._keep_stored(res, "manager_email")

    def _keep_stored(self, res: _Pending, name: str) -> None:
        """A value the file may not set: the user keeps the stored one (or none)."""
        before = None if res.new else self.state.users[res.uid].fields.get(name)
        if before:
            res.set(name, before)
        else:
            res.drop(name)

    def _refuse_deactivated_departments(self) -> None:
        """SPEC §3 keeps active users out of deactivated departments (one with
        active users cannot be deactivated); a file moving a user into one is
        refused for that value [decided]: the rest of the row applies."""
        for res in self.results.values():
            name = res.fields.get("department_name", "")
            department = self.state.departments.get(name.lower()) if name else None
            if department is None or department.active or not res.active:
                continue
            stored = None if res.new else self.state.users[res.uid]
            before = stored.fields.get("department_name") if stored is not None else None
            if stored is not None and stored.active and before is not None and before.lower() == name.lower():
                continue  # already there, and already active: not this file's doing
            self.out.issues.append(
                Issue(
                    code="DEPARTMENT_INACTIVE", severity="error", row=res.row, column="department_name",
                    value=name,
                    message=(
                        f'The department "{department.name}" is deactivated, so the user is not (or no '
                        "longer) in it; reactivate it with a department file first."
                    ),
                )
            )
            if stored is not None and not stored.active and before is not None \
                    and before.lower() == name.lower():
                res.drop("department_name")  # reactivated: active, but out of the deactivated department
                continue
            self._keep_stored(res, "department_name")

    def _change(self, res: _Pending) -> None:
        before = None if res.new else self.state.users[res.uid]
        after = User(uid=res.uid, fields=res.fields, active=res.active)
        if before is not None and self.policy.source is Source.FILE:
            for name in res.columns:
                edit = self.state.manual.get((res.uid, name))
                if edit is None:
                    continue
                self.out.manual_cleared.append((res.uid, name))
                new = after.fields.get(name, "")
                if new != edit.value:
                    self.out.overwritten.append(
                        Overwrite(
                            email=after.email, field=name, manual_value=edit.value, file_value=new,
                            edited_at=edit.at, edited_by=edit.source, row=res.row,
                        )
                    )
        if self.policy.source is Source.ADMIN:
            for name in sorted(res.columns - {"email", "manager_id"}):
                self.out.manual_set.append(
                    ManualEdit(
                        uid=res.uid, field=name, value=after.fields.get(name, ""),
                        at=self.policy.now, source=self.policy.source_label,
                    )
                )
        if before is not None and before.fields == after.fields and before.active == after.active:
            self.out.count(str(Action.UNCHANGED))  # counted, not listed: nothing to write
            return
        if before is None:
            action = Action.CREATED
        elif before.active and not after.active:
            action = Action.DEACTIVATED
        elif not before.active and after.active:
            action = Action.REACTIVATED
        else:
            action = Action.UPDATED
        self.out.users.append(
            UserChange(action=action, before=before, after=after, row=res.row)
        )

    def _omitted(self) -> list[User]:
        if self.policy.profile is not Profile.ENGAGE or self.policy.source is not Source.FILE:
            return []
        return [
            u for u in self.state.users.values()
            if u.active and u.uid not in self.results and u.key not in self.seen_keys
        ]

    def _within_termination_limit(self, count: int) -> bool:
        active_before = self.state.active_count()
        limit = self.policy.termination_limit
        if count <= limit * active_before:
            return True
        self.out = Outcome(refused=True)
        self.out.issues.append(
            Issue(
                code="TERMINATION_LIMIT",
                severity="error",
                row=None,
                message=(
                    f"This file would terminate {count} of {active_before} active users "
                    f"({count / active_before:.0%}), more than the sandbox's safety limit of "
                    f"{limit:.0%}. Nothing in the file was applied. In the engage profile every user "
                    "left out of the file is terminated: send the full roster."
                ),
            )
        )
        return False

    def _terminate(self, omitted: list[User]) -> None:
        for user in omitted:
            fields_ = dict(user.fields)
            fields_["deactivation_date"] = self.policy.today
            after = replace(user, fields=fields_, active=False)
            self.out.users.append(
                UserChange(
                    action=Action.TERMINATED, before=user, after=after, row=None
                )
            )

    def _departments_on_first_use(self) -> None:
        known = set(self.state.departments)
        for change in self.out.users:
            name = change.after.fields.get("department_name", "")
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
    """A department file (SPEC §3): `name`, optional `parent`, optional `is_active`."""
    out = Outcome()
    active_departments = {
        u.fields.get("department_name", "").lower() for u in state.users.values() if u.active
    }
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
            if not active and name.lower() in active_departments:
                out.issues.append(
                    Issue(
                        code="DEPARTMENT_HAS_ACTIVE_USERS",
                        severity="error",
                        row=arow.row,
                        column="is_active",
                        value=arow.values["is_active"],
                        message=f"Department {name} has active users and cannot be deactivated.",
                    )
                )
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
    """Future deactivation dates the sandbox clock has now reached (SPEC §3)."""
    out = Outcome()
    for user in state.users.values():
        date = user.fields.get("deactivation_date", "")
        if user.active and date and date <= today:
            after = replace(user, active=False)
            out.users.append(
                UserChange(
                    action=Action.DEACTIVATED, before=user, after=after, row=None,
                )
            )
            out.count("deactivated")
    return out

