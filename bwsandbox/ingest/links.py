"""The rules of a file that look across users (h11), a part of `apply.py`'s
applier: unique addresses, manager links (ids, renames, loops through the
directory, links to refused rows) and departments users may be moved into.

Each runs once every row is read, on the users as the file leaves them
(`Pending`), and says what it refuses as an `Issue`, as production would (SPEC
§3, §4): the row, or only the value, is not applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bwsandbox.ingest.records import Issue, Outcome, Policy, State, User, email_key
from bwsandbox.spec import messages

NONE: frozenset[str] = frozenset()


@dataclass(slots=True)
class Pending:
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


class LinkRules:
    """The cross-user rules, mixed into the applier (which fills these in)."""

    state: State
    policy: Policy
    out: Outcome
    results: dict[int, Pending]
    identity_by_employee_id: bool
    refused_ids: set[str]  # employee ids of creations the directory refused
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

    def _unique_addresses(self) -> None:
        """SPEC §4: two active users never share an address. With identity by
        employee id a row may give a user an address another active user holds
        (SPEC §7 [decided]: refused, EMAIL_TAKEN); decided on the whole file (a
        row freeing it later counts), so the order of the rows never matters.
        Whoever keeps their address keeps it; the row moving onto it is
        refused, with production's message. The validator refuses the same
        rows first when it sees the directory (`validator/users.py` _taken);
        this catches what follows from rows only the directory refuses."""
        if not self.identity_by_employee_id:
            return
        while True:
            owners: dict[str, list[int]] = {}
            for uid, user in self.state.users.items():
                if uid not in self.results and user.active:
                    owners.setdefault(user.key, []).append(uid)
            for res in self.results.values():
                if res.active:
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
                    Issue(code="EMAIL_TAKEN", severity="error", row=res.row, column="email",
                          value=res.fields.get("email", ""),
                          message=f"{messages.SHARED_EMAIL} (another active user holds this address; "
                          "refusing the row moving onto it is the sandbox's rule, since production "
                          "documents the message but not this case.)")
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
                pending = self.results[uid] = Pending(
                    uid=uid, fields=dict(user.fields), active=user.active, row=None, columns=NONE,
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

    def _keep_stored(self, res: Pending, name: str) -> None:
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
