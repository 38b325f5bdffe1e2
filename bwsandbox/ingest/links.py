"""The rules of a file that need the directory, a part of `apply.py`'s
applier: names a new user needs, identities another user holds, manager
links (found, by id, renamed, loops) and departments users may be moved into.

This is the one home of every directory-aware rule: the worker, `bwsandbox
validate` (against a tenant, a JSON directory, or none: an empty one) and the
HTTP API's plan all reach them through `ingest/plan.py`. The validator judges
only what the file alone shows.

Each runs once every row is read, on the users as the file leaves them
(`Pending`), and says what it refuses as a `Finding`, as production would
(docs/production.md §3, §4): the row, or only the value, is not applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bwsandbox.ingest.records import Outcome, Policy, State, User, as_dict, email_key
from bwsandbox.spec import messages
from bwsandbox.spec.fields import Profile
from bwsandbox.validator.findings import finding
from bwsandbox.validator.model import Finding

NONE: frozenset[str] = frozenset()
_CHAIN_SHOWN = 6  # managers named in a MANAGER_CYCLE message


@dataclass(slots=True)
class Pending:
    """A user as the file leaves them, before it is turned into a change."""

    uid: int
    fields: Mapping[str, str]  # a dict once owned; before, the stored or packed fields
    active: bool
    row: int | None
    columns: frozenset[str]  # interned: rows of one file share one object
    new: bool
    manager_eid: str | None = None
    owned: bool = True  # False: `fields` are still the stored user's, or packed (copy on write)
    blank_names: tuple[str, ...] = ()  # required names the row left empty (or had no column for)

    def set(self, name: str, value: str) -> None:
        if self.fields.get(name) != value:
            self._own()[name] = value

    def drop(self, name: str) -> None:
        if name in self.fields:
            del self._own()[name]

    def _own(self) -> dict[str, str]:
        # A million unchanged rows must not copy a million dicts.
        fields = self.fields
        if not self.owned or not isinstance(fields, dict):
            fields = self.fields = as_dict(fields)
            self.owned = True
        return fields


class _Holders:
    """Who holds each value, kept only for values more than one user holds:
    a million distinct ids cost one dict entry each, not a list each."""

    __slots__ = ("first", "shared")

    def __init__(self) -> None:
        self.first: dict[str, int] = {}
        self.shared: dict[str, list[int]] = {}  # value -> every holder, when there are several

    def add(self, value: str, uid: int) -> None:
        holder = self.first.setdefault(value, uid)
        if holder != uid:
            self.shared.setdefault(value, [holder]).append(uid)

    def groups(self) -> list[tuple[str, list[int]]]:
        """The values several users hold, in the order they were first seen."""
        if not self.shared:
            return []
        return [(value, self.shared[value]) for value in self.first if value in self.shared]


class LinkRules:
    """The cross-user rules, mixed into the applier (which fills these in)."""

    state: State
    policy: Policy
    out: Outcome
    results: dict[int, Pending]
    identity_by_employee_id: bool
    leaving: set[int]  # engage: the users this file terminates
    link_refused: set[int]  # users whose manager the file may not set (they keep the stored one)
    final_by_email: dict[str, int]  # who holds each address once the file is applied
    _interned: dict[tuple[frozenset[str], tuple[str, ...]], frozenset[str]]

    def _union(self, columns: frozenset[str], more: tuple[str, ...]) -> frozenset[str]:
        key = (columns, more)
        found = self._interned.get(key)
        if found is None:
            found = self._interned[key] = columns.union(more)
        return found

    def _fields(self, uid: int) -> Mapping[str, str]:
        """A user's fields as the file leaves them so far (or as stored)."""
        res = self.results.get(uid)
        return res.fields if res is not None else self.state.users[uid].fields

    def _refuse_row(self, res: Pending) -> None:
        """The row creates or changes nobody: a row-scope error."""
        del self.results[res.uid]
        self.out.count("skipped")

    def _new_users_have_names(self) -> None:
        """Core: a new user needs a first and a last name (docs/production.md
        §3); the row is skipped. An update may leave them out or empty: a
        required field is never cleared (REQUIRED_VALUE_KEPT, said per row)."""
        if self.policy.profile is not Profile.CORE:
            return
        for res in [r for r in self.results.values() if r.new and r.blank_names]:
            for name in res.blank_names:
                self.out.findings.append(finding(
                    "REQUIRED_VALUE_MISSING", res.row,
                    f"{name} is required to create a user; the row is skipped.", column=name, value="",
                ))  # fmt: skip
            self._refuse_row(res)

    def _unique_addresses(self) -> None:
        """Two active users never share an address (docs/production.md §4).
        With identity by employee id a row may give a user an address another
        active user holds: refused, EMAIL_TAKEN (a sandbox decision,
        docs/production.md §6); decided on the whole file (a row freeing it
        later counts), so the order of the rows never matters. Whoever keeps
        their address keeps it; the row moving onto it is refused, with
        production's message."""
        if not self.identity_by_employee_id:
            return
        while True:
            owners = _Holders()
            for uid, user in self.state.users.items():
                if uid not in self.results and user.active:
                    owners.add(user.key, uid)
            for res in self.results.values():
                if res.active:
                    owners.add(email_key(res.fields.get("email", "")), res.uid)
            refused = [
                uid for key, uids in owners.groups()
                for uid in uids
                if uid in self.results and (uid not in self.state.users or self.state.users[uid].key != key)
            ]
            if not refused:
                return
            for uid in refused:
                res = self.results[uid]
                email = res.fields.get("email", "")
                holder = next(
                    (u for u in self.state.users.values() if u.active and u.key == email_key(email)), None
                )
                held = holder.fields.get("employee_id", "") if holder is not None else ""
                who = f"the employee id {held}" if held else "no employee id"
                self.out.findings.append(finding(
                    "EMAIL_TAKEN", res.row,
                    f"{messages.SHARED_EMAIL} ({email} belongs to an active user in Betterworks, with {who}; "
                    "refusing another employee id onto it is the sandbox's rule, since production documents "
                    "the message but not this case.)",
                    column="email", value=email,
                ))  # fmt: skip
                self._refuse_row(res)

    def _unique_ids(self) -> None:
        """Identity by email: an employee id another user holds once the file
        is applied is not applied to this one (EMPLOYEE_ID_TAKEN, a sandbox
        decision, docs/production.md §6); the rest of the row is. A holder
        whose own row moves them to another id frees it, so the order of the
        rows never matters."""
        if self.identity_by_employee_id:
            return
        while True:
            holders = _Holders()
            for uid in self.state.users:
                eid = self._fields(uid).get("employee_id", "")
                if eid:
                    holders.add(eid, uid)
            for res in self.results.values():
                if res.new and res.fields.get("employee_id"):
                    holders.add(res.fields["employee_id"], res.uid)
            refused = [
                (uid, eid) for eid, uids in holders.groups() for uid in uids
                if uid in self.results and (uid not in self.state.users
                                            or self.state.users[uid].fields.get("employee_id", "") != eid)
            ]
            if not refused:
                return
            for uid, eid in refused:
                res = self.results[uid]
                owner = next(u for u in holders.shared[eid] if u != uid)
                self.out.findings.append(finding(
                    "EMPLOYEE_ID_TAKEN", res.row,
                    f'The employee id "{eid}" already belongs to {self._fields(owner).get("email", "")} in '
                    "Betterworks; it is not applied, and the rest of the row is. Production does not "
                    "document this case; refusing the id is the sandbox's rule.",
                    column="employee_id", value=eid,
                ))  # fmt: skip
                self._keep_stored(res, "employee_id")

    def _final_addresses(self) -> None:
        """Who holds each address once the file is applied (links resolve here)."""
        final = {u.key: uid for uid, u in self.state.users.items() if uid not in self.results}
        for res in self.results.values():
            final[email_key(res.fields.get("email", ""))] = res.uid
        self.final_by_email = final

    def _resolve_manager_ids(self) -> None:
        """manager_id names the manager by employee id (docs/production.md §3);
        the directory links managers by email, so resolve once every row is
        in. An id nobody holds (or whose row was refused) is not set."""
        wanted = [res for res in self.results.values() if res.manager_eid is not None]
        if not wanted:
            return
        holders: dict[str, int] = {}  # employee id -> the user holding it once the file is applied
        for uid, user in self.state.users.items():
            if uid not in self.results and user.fields.get("employee_id"):
                holders[user.fields["employee_id"]] = uid
        for res in self.results.values():
            if res.fields.get("employee_id"):
                holders[res.fields["employee_id"]] = res.uid
        for res in wanted:
            assert res.manager_eid is not None
            manager = holders.get(res.manager_eid) if res.manager_eid else None
            if not res.manager_eid:
                res.drop("manager_email")
            elif manager is not None and self._active_user(manager):
                res.set("manager_email", self._fields(manager).get("email", ""))
            else:
                self.out.findings.append(finding(
                    "MANAGER_NOT_FOUND", res.row, messages.manager_id_not_found(res.manager_eid),
                    column="manager_id", value=res.manager_eid,
                ))  # fmt: skip
                self._refuse_link(res)
            res.columns = self._union(res.columns, ("manager_email",))

    def _active_after(self, address: str) -> bool:
        """Whether `address` belongs to an active user once the file is
        applied: the one test of "the manager exists", by address or by id.
        A manager the file deactivates or terminates is not found, as one
        already deactivated is not (a sandbox decision, docs/production.md §6)."""
        uid = self.final_by_email.get(email_key(address))
        return uid is not None and self._active_user(uid)

    def _active_user(self, uid: int) -> bool:
        if uid in self.leaving:
            return False
        res = self.results.get(uid)
        return res.active if res is not None else self.state.users[uid].active

    def _refuse_link(self, res: Pending) -> None:
        """The file may not set this user's manager: the stored one stays."""
        self._keep_stored(res, "manager_email")
        self.link_refused.add(res.uid)

    def _managers_exist(self) -> None:
        """A manager address must be an active user once the file is applied
        (docs/production.md §4 "Could not find manager email")."""
        found: dict[str, bool] = {}  # a manager of many users is looked up once
        for res in self.results.values():
            value = res.fields.get("manager_email", "")
            if res.manager_eid is not None or "manager_email" not in res.columns or not value:
                continue
            active = found.get(value)
            if active is None:
                active = found[value] = self._active_after(value)
            if active:
                continue
            self.out.findings.append(finding(
                "MANAGER_NOT_FOUND", res.row, messages.manager_not_found(value.strip()),
                column="manager_email", value=value,
            ))  # fmt: skip
            self._refuse_link(res)

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
            if pending is not None and "manager_email" in pending.columns and uid not in self.link_refused:
                continue  # the file says who this user's manager is
            fields = pending.fields if pending is not None else user.fields
            target = renamed.get(email_key(fields.get("manager_email", "")))
            if target is None:
                continue
            if pending is None:
                pending = self.results[uid] = Pending(
                    uid=uid, fields=as_dict(user.fields), active=user.active, row=None, columns=NONE,
                    new=False,
                )
            if email_key(target) == email_key(pending.fields.get("email", "")):
                pending.drop("manager_email")  # the address is now this user's own: no manager
            else:
                pending.set("manager_email", target)

    def _manager_of(self, uid: int) -> int | None:
        key = email_key(self._fields(uid).get("manager_email", ""))
        return self.final_by_email.get(key) if key else None

    def _refuse_cycles(self) -> None:
        """A manager chain must not loop (docs/production.md §4), whether the
        loop is among the file's rows or closes through users the file leaves
        as they are. A row whose new link (one the file makes, not one it
        repeats) lies on a loop keeps its old manager; the loops are found
        first, so the order of the rows never matters, and found again after
        the old managers are back, until none is left."""
        while True:
            on_loop = self._loop_members()
            refused = [self.results[uid] for uid in sorted(on_loop)
                       if uid in self.results and self._makes_link(self.results[uid])]
            if not refused:
                return
            for res in refused:
                self.out.findings.append(self._cycle_finding(res))
            for res in refused:
                self._refuse_link(res)

    def _makes_link(self, res: Pending) -> bool:
        """The file gives this user a manager other than the stored one."""
        value = res.fields.get("manager_email", "")
        if "manager_email" not in res.columns or not value or res.uid in self.link_refused:
            return False
        if res.new:
            return True
        return email_key(self.state.users[res.uid].fields.get("manager_email", "")) != email_key(value)

    def _loop_members(self) -> set[int]:
        """Users on a loop reached from a link the file makes; each chain is
        walked once (`done`: known to reach the top or a loop already seen)."""
        done: set[int] = set()
        on_loop: set[int] = set()
        for res in list(self.results.values()):
            if res.uid in done or not self._makes_link(res):
                continue
            path: list[int] = []
            index: dict[int, int] = {}
            node: int | None = res.uid
            while node is not None and node not in done and node not in index:
                index[node] = len(path)
                path.append(node)
                node = self._manager_of(node)
            if node is not None and node in index:
                on_loop.update(path[index[node]:])
            done.update(path)
        return on_loop

    def _cycle_finding(self, res: Pending) -> Finding:
        by_id = res.manager_eid is not None  # the file named the manager by employee id
        chain: list[str] = []
        node: int | None = res.uid
        while node is not None and len(chain) < _CHAIN_SHOWN:
            pending = self.results.get(node)
            eid = pending.manager_eid if pending is not None else None
            chain.append(eid if by_id and eid else self._fields(node).get("manager_email", ""))
            node = self._manager_of(node)
            if node == res.uid:
                break
        loop = " -> ".join(v.strip() for v in chain) + ("" if node == res.uid else " -> ...")
        value = res.manager_eid if by_id else res.fields["manager_email"]
        return finding(
            "MANAGER_CYCLE", res.row,
            f"The manager chain loops back to this user (managers: {loop}); the manager is not set.",
            column="manager_id" if by_id else "manager_email", value=value,
        )

    def _keep_stored(self, res: Pending, name: str) -> None:
        """A value the file may not set: the user keeps the stored one (or none)."""
        before = None if res.new else self.state.users[res.uid].fields.get(name)
        if before:
            res.set(name, before)
        else:
            res.drop(name)

    def _refuse_deactivated_departments(self) -> None:
        """Active users stay out of deactivated departments (docs/production.md
        §3: one with active users cannot be deactivated); a file moving a user
        into one is refused for that value (docs/production.md §6): the rest of
        the row applies."""
        if all(department.active for department in self.state.departments.values()):
            return  # no deactivated department to keep anyone out of (a first load has none)
        for res in self.results.values():
            name = res.fields.get("department_name", "")
            department = self.state.departments.get(name.lower()) if name else None
            if department is None or department.active or not res.active:
                continue
            stored = None if res.new else self.state.users[res.uid]
            before = stored.fields.get("department_name") if stored is not None else None
            if stored is not None and stored.active and before is not None and before.lower() == name.lower():
                continue  # already there, and already active: not this file's doing
            self.out.findings.append(finding(
                "DEPARTMENT_INACTIVE", res.row,
                f'The department "{department.name}" is deactivated, so the user is not (or no '
                "longer) in it; reactivate it with a department file first.",
                column="department_name", value=name,
            ))  # fmt: skip
            if stored is not None and not stored.active and before is not None \
                    and before.lower() == name.lower():
                res.drop("department_name")  # reactivated: active, but out of the deactivated department
                continue
            self._keep_stored(res, "department_name")
