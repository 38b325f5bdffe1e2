"""The rules of a file that need the directory, a part of `apply.py`'s
applier: names a new user needs, identities another user holds, manager
links (found, by id, renamed, loops) and departments users may be moved
into. What the file then does to each user is `changes.py`.

This is the one home of every directory-aware rule: the worker, `bwsandbox
validate` (against a tenant, a JSON directory, or none: an empty one) and the
HTTP API's plan all reach them through `ingest/plan.py`. The validator judges
only what the file alone shows.

Each runs once every row is read, as SQL over the workspace
(`workspace.py`): `w_pend`, the users as the file leaves them, and `w_dir`,
the directory before it. Only what a rule refuses comes back to Python, to be
said as a `Finding`, as production would (docs/production.md §3, §4): the
row, or only the value, is not applied. The manager loops are `loops.py`'s.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from bwsandbox.ingest import workspace
from bwsandbox.ingest.records import Outcome, Policy, email_key
from bwsandbox.spec import messages
from bwsandbox.spec.fields import Profile
from bwsandbox.validator.findings import finding

IN_UIDS = "uid IN (SELECT value FROM json_each(?))"
_FOLLOWER_ORD = 2_000_000_000_000  # users a renamed manager adds come after every row
# Set with every change of a user's fields: `_changes` decides the action
# again (a change of status stays what it is).
_RECONSIDER = "action = CASE WHEN action IN ('unchanged', 'updated') THEN NULL ELSE action END"
# Users the file does not touch: the directory's, less the file's.
UNTOUCHED = "w_dir AS d WHERE NOT EXISTS (SELECT 1 FROM w_pend AS p WHERE p.uid = d.uid)"


def uids_param(uids: Iterable[int]) -> tuple[str]:
    return (json.dumps(list(uids)),)


class LinkRules:
    """The cross-user rules, mixed into the applier (which fills these in)."""

    conn: sqlite3.Connection
    policy: Policy
    out: Outcome
    identity_by_employee_id: bool
    has_ids: bool  # the file has an employee id column
    rows_seen: int
    next_uid: int
    empty: bool  # the directory before the file has no user (a first load)
    all_columns: str  # the columns a NULL `w_pend.cols` stands for

    # -- small steps ---------------------------------------------------------------
    def _value(self, uid: int, name: str) -> str:
        """A field of a user as the file leaves them so far (or as stored)."""
        row = self.conn.execute(
            "SELECT coalesce(json_extract(coalesce((SELECT fields FROM w_pend WHERE uid = ?1),"
            f" (SELECT fields FROM w_dir WHERE uid = ?1)), '$.{name}'), '')",
            (uid,),
        ).fetchone()
        return str(row[0])

    def _refresh(self, name: str, uids: list[int]) -> None:
        """After a rule changed field `name` of these users in SQL: the column that
        repeats it (`workspace.DERIVED`), and their fields spelled as Python
        writes JSON again (`bw_json`), as the store keeps them: a re-sent row is
        known unchanged by its text (`quick.py`)."""
        column = workspace.DERIVED[name][0]
        self.conn.execute(
            f"UPDATE w_pend SET {column} = {workspace.derived(name, 'fields')}, fields = bw_json(fields)"
            f" WHERE {IN_UIDS}",
            uids_param(uids),
        )

    def _set(self, uids: list[int], name: str, values: list[str]) -> None:
        self.conn.executemany(
            f"UPDATE w_pend SET fields = json_set(fields, '$.{name}', ?), {_RECONSIDER} WHERE uid = ?",
            zip(values, uids, strict=True),
        )
        self._refresh(name, uids)

    def _drop(self, uids: list[int], name: str) -> None:
        self.conn.execute(
            f"UPDATE w_pend SET fields = json_remove(fields, '$.{name}'), {_RECONSIDER} WHERE {IN_UIDS}",
            uids_param(uids),
        )
        self._refresh(name, uids)

    def _keep_stored(self, uids: list[int], name: str) -> None:
        """A value the file may not set: the user keeps the stored one (or none)."""
        if not uids:
            return
        stored = f"(SELECT json_extract(s.fields, '$.{name}') FROM w_dir AS s WHERE s.uid = w_pend.uid)"
        self.conn.execute(
            f"UPDATE w_pend SET fields = CASE WHEN new OR coalesce({stored}, '') = ''"
            f" THEN json_remove(fields, '$.{name}') ELSE json_set(fields, '$.{name}', {stored}) END,"
            f" {_RECONSIDER} WHERE {IN_UIDS}",
            uids_param(uids),
        )
        self._refresh(name, uids)

    def _refuse_rows(self, uids: list[int]) -> None:
        """The rows create or change nobody: row-scope errors."""
        if uids:
            self.conn.execute(f"DELETE FROM w_pend WHERE {IN_UIDS}", uids_param(uids))
            self.out.count("skipped", len(uids))

    def _refuse_links(self, uids: list[int]) -> None:
        """The file may not set these users' manager: the stored one stays."""
        self._keep_stored(uids, "manager_email")
        self.conn.execute(f"UPDATE w_pend SET link_refused = 1 WHERE {IN_UIDS}", uids_param(uids))

    # -- rows refused --------------------------------------------------------------
    def _new_users_have_names(self) -> None:
        """Core: a new user needs a first and a last name (docs/production.md
        §3); the row is skipped. An update may leave them out or empty: a
        required field is never cleared (REQUIRED_VALUE_KEPT, said per row)."""
        if self.policy.profile is not Profile.CORE:
            return
        refused = []
        for uid, row, blank in self.conn.execute(
            "SELECT uid, row, blank FROM w_pend WHERE new AND blank IS NOT NULL ORDER BY ord"
        ).fetchall():
            for name in json.loads(blank):
                self.out.findings.append(finding(
                    "REQUIRED_VALUE_MISSING", row,
                    f"{name} is required to create a user; the row is skipped.", column=name, value="",
                ))  # fmt: skip
            refused.append(uid)
        self._refuse_rows(refused)

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
            refused = self.conn.execute(
                "SELECT p.uid, p.row, coalesce(json_extract(p.fields, '$.email'), ''),"
                " (SELECT s.eid FROM w_dir AS s WHERE s.active AND s.key = p.key ORDER BY s.uid LIMIT 1)"
                " FROM w_pend AS p WHERE p.active"
                " AND (p.new OR p.key != (SELECT s.key FROM w_dir AS s WHERE s.uid = p.uid))"
                # another active holder, of the file's users or of those it leaves alone
                " AND (EXISTS (SELECT 1 FROM w_pend AS q WHERE q.key = p.key AND q.active AND q.uid != p.uid)"
                f" OR EXISTS (SELECT 1 FROM {UNTOUCHED} AND d.key = p.key AND d.active))"
                " ORDER BY p.ord"
            ).fetchall()
            if not refused:
                return
            for _uid, row, email, held in refused:
                who = f"the employee id {held}" if held else "no employee id"
                self.out.findings.append(finding(
                    "EMAIL_TAKEN", row,
                    f"{messages.SHARED_EMAIL} ({email} belongs to an active user in Betterworks, with {who}; "
                    "refusing another employee id onto it is the sandbox's rule, since production documents "
                    "the message but not this case.)",
                    column="email", value=email,
                ))  # fmt: skip
            self._refuse_rows([r[0] for r in refused])

    def _licence_limit(self, terminating: int) -> None:
        created = int(self.conn.execute("SELECT count(*) FROM w_pend WHERE new").fetchone()[0])
        if not created or self.policy.licenses is None:
            return
        # Licences in use once the file's other rows (deactivations, engage
        # terminations) are applied: what the file frees, it may reuse.
        in_use = (
            int(
                self.conn.execute(
                    f"SELECT (SELECT count(*) FROM {UNTOUCHED} AND d.active)"
                    " + (SELECT count(*) FROM w_pend WHERE NOT new AND active)"
                ).fetchone()[0]
            )
            - terminating
        )
        available = max(self.policy.licenses - in_use, 0)
        if created <= available:
            return
        # Every creation row gets production's message, as `validate --context`
        # gives it (row scope: those rows are skipped, docs/production.md §4).
        text = messages.license_limit(created, available)
        refused = self.conn.execute("SELECT uid, row FROM w_pend WHERE new ORDER BY ord").fetchall()
        for _uid, row in refused:
            self.out.findings.append(finding("LICENSE_LIMIT", row, text))
        self._refuse_rows([r[0] for r in refused])

    # -- values refused ------------------------------------------------------------
    def _unique_ids(self) -> None:
        """Identity by email: an employee id another user holds once the file
        is applied is not applied to this one (EMPLOYEE_ID_TAKEN, a sandbox
        decision, docs/production.md §6); the rest of the row is. A holder
        whose own row moves them to another id frees it, so the order of the
        rows never matters. Only a file with ids sets one."""
        if self.identity_by_employee_id or not self.has_ids:
            return
        # Another holder: of the file's users (the ids `w_pend` holds twice, found once in its
        # id index, not searched for each row), or (a directory not empty) of those it leaves alone.
        held = "p.eid IN (SELECT eid FROM w_pend WHERE eid != '' GROUP BY eid HAVING count(*) > 1)"
        if not self.empty:
            held += f" OR EXISTS (SELECT 1 FROM {UNTOUCHED} AND d.eid = p.eid)"
        while True:
            refused = self.conn.execute(
                "SELECT p.uid, p.row, p.eid FROM w_pend AS p WHERE p.eid != ''"
                " AND (p.new OR p.eid != (SELECT s.eid FROM w_dir AS s WHERE s.uid = p.uid))"
                f" AND ({held}) ORDER BY p.ord"
            ).fetchall()
            if not refused:
                return
            for uid, row, eid in refused:
                owner = self._id_owner(eid, uid)
                self.out.findings.append(finding(
                    "EMPLOYEE_ID_TAKEN", row,
                    f'The employee id "{eid}" already belongs to {owner} in '
                    "Betterworks; it is not applied, and the rest of the row is. Production does not "
                    "document this case; refusing the id is the sandbox's rule.",
                    column="employee_id", value=eid,
                ))  # fmt: skip
            self._keep_stored([r[0] for r in refused], "employee_id")

    def _id_owner(self, eid: str, uid: int) -> str:
        """The address of the first other holder of `eid` as the file leaves
        them: a stored user (lowest uid first), else a user the file creates."""
        row = (
            self.conn.execute(  # +d.uid: the stored holders searched by id, not walked in uid order
                "SELECT uid FROM (SELECT uid FROM w_pend WHERE eid = ?1 AND NOT new AND uid != ?2"
                " UNION ALL SELECT +d.uid FROM w_dir AS d WHERE d.eid = ?1 AND d.uid != ?2"
                " AND NOT EXISTS (SELECT 1 FROM w_pend AS p WHERE p.uid = d.uid))"
                " ORDER BY uid LIMIT 1",
                (eid, uid),
            ).fetchone()
            or self.conn.execute(
                "SELECT uid FROM w_pend WHERE new AND eid = ? AND uid != ? ORDER BY ord LIMIT 1", (eid, uid)
            ).fetchone()
        )
        return self._value(int(row[0]), "email") if row else ""

    @property
    def _final(self) -> str:
        """The table of who holds each address once the file is applied
        (key, uid, active): `w_final`; into an empty directory `w_pend`
        itself, where each user is a row's new one, one to an address
        (`apply._Applier._one_user_each`), and no rule after
        `_final_addresses` moves an address or drops a row."""
        return "w_pend" if self.empty else "w_final"

    def _final_addresses(self, *, every: bool = False) -> None:
        """Who holds each address once the file is applied, and whether they
        are active then: the manager rules resolve links here. A user the
        file reaches holds their address over one it leaves alone. Only a
        file that names managers needs them, and only the addresses its
        rows name as managers (`_managers_exist`), unless `every`: the loop
        check's graph of every user (`loops.LoopRules._manager_graph`)."""
        conn = self.conn
        names = "SELECT 1 FROM w_pend WHERE has_mgr OR mgr_eid IS NOT NULL LIMIT 1"
        if self.empty or conn.execute(names).fetchone() is None:
            return  # into an empty directory: `w_pend` itself (`_final`)
        named = "" if every else " AND {}key IN (SELECT mkey FROM w_pend)"
        # Every user in uid order as the directory is walked; the named ones searched, then sorted (+).
        order = "uid" if every else "+uid"
        # The file's users are its rows' (`ord` below the followers of a renamed manager,
        # whom `_follow_renamed_managers` adds later: users the file leaves alone, here too).
        rows = f"ord < {_FOLLOWER_ORD}"
        conn.execute("DELETE FROM w_final")
        conn.execute(
            "INSERT OR REPLACE INTO w_final SELECT key, uid, active AND uid NOT IN (SELECT uid FROM w_leave)"
            f" FROM w_dir AS d WHERE NOT EXISTS (SELECT 1 FROM w_pend AS p WHERE p.uid = d.uid AND p.{rows})"
            f"{named.format('d.')} ORDER BY {order}"
        )
        conn.execute(
            "INSERT OR REPLACE INTO w_final SELECT key, uid, active FROM w_pend"
            f" WHERE {rows}{named.format('')} ORDER BY ord"
        )

    def _resolve_manager_ids(self) -> None:
        """manager_id names the manager by employee id (docs/production.md §3);
        the directory links managers by email, so resolve once every row is
        in. An id nobody holds (or whose row was refused) is not set."""
        conn = self.conn
        if "manager_id" not in self.policy.columns:
            return  # a file without the column names no manager by id
        if conn.execute("SELECT 1 FROM w_pend WHERE mgr_eid IS NOT NULL LIMIT 1").fetchone() is None:
            return
        conn.execute(
            "INSERT OR REPLACE INTO w_ids SELECT eid, uid, active AND uid NOT IN (SELECT uid FROM w_leave)"
            f" FROM {UNTOUCHED} AND d.eid != '' ORDER BY uid"
        )
        conn.execute(
            "INSERT OR REPLACE INTO w_ids SELECT eid, uid, active FROM w_pend WHERE eid != ''"
            f" ORDER BY {workspace.file_order(self.empty)}"
        )
        conn.execute(
            "UPDATE w_pend SET mgr_uid ="
            " (SELECT i.uid FROM w_ids AS i WHERE i.eid = w_pend.mgr_eid AND i.active)"
            " WHERE mgr_eid != ''"
        )
        missing = conn.execute(
            "SELECT uid, row, mgr_eid FROM w_pend WHERE mgr_eid != '' AND mgr_uid IS NULL ORDER BY ord"
        ).fetchall()
        # Each user's manager, by address; set where it is not that already (as `Pending.set`).
        address = (
            "coalesce(json_extract(coalesce((SELECT q.fields FROM w_pend AS q WHERE q.uid = w_pend.mgr_uid),"
            " (SELECT s.fields FROM w_dir AS s WHERE s.uid = w_pend.mgr_uid)), '$.email'), '')"
        )
        conn.execute(
            f"UPDATE w_pend SET fields = json_set(fields, '$.manager_email', {address}), {_RECONSIDER}"
            " WHERE mgr_eid != '' AND mgr_uid IS NOT NULL"
            f" AND json_extract(fields, '$.manager_email') IS NOT {address}"
        )
        conn.execute(
            f"UPDATE w_pend SET fields = json_remove(fields, '$.manager_email'), {_RECONSIDER}"
            " WHERE mgr_eid = '' AND json_extract(fields, '$.manager_email') IS NOT NULL"
        )
        # SQLite's JSON spelling kept (not `_refresh`: a call into Python a row of a file
        # naming every manager by id); such a file's rows are never compared by text.
        mkey = workspace.derived("manager_email", "fields")
        conn.execute(f"UPDATE w_pend SET mkey = {mkey} WHERE mgr_eid IS NOT NULL")
        for _uid, row, eid in missing:
            self.out.findings.append(finding(
                "MANAGER_NOT_FOUND", row, messages.manager_id_not_found(eid), column="manager_id", value=eid,
            ))  # fmt: skip
        self._refuse_links([r[0] for r in missing])
        conn.execute(
            "UPDATE w_pend SET has_mgr = 1, cols = CASE WHEN EXISTS (SELECT 1"
            " FROM json_each(coalesce(cols, ?1)) WHERE value = 'manager_email') THEN cols"
            " ELSE json_insert(coalesce(cols, ?1), '$[#]', 'manager_email') END WHERE mgr_eid IS NOT NULL",
            (self.all_columns,),
        )

    def _managers_exist(self) -> None:
        """A manager address must be an active user once the file is applied
        (docs/production.md §4 "Could not find manager email"). A manager the
        file deactivates or terminates is not found, as one already
        deactivated is not (a sandbox decision, docs/production.md §6)."""
        refused = self.conn.execute(
            "SELECT p.uid, p.row, json_extract(p.fields, '$.manager_email') FROM w_pend AS p"
            f" LEFT JOIN {self._final} AS f ON f.key = p.mkey WHERE p.mgr_eid IS NULL AND p.has_mgr"
            " AND p.mkey != '' AND NOT coalesce(f.active, 0) ORDER BY p.ord"
        ).fetchall()
        for _uid, row, value in refused:
            self.out.findings.append(finding(
                "MANAGER_NOT_FOUND", row, messages.manager_not_found(value.strip()),
                column="manager_email", value=value,
            ))  # fmt: skip
        self._refuse_links([r[0] for r in refused])

    def _follow_renamed_managers(self) -> None:
        """A manager whose address the file changed (identity by employee id)
        stays everyone's manager: links are stored as addresses, so the users
        they manage follow the new one, in the file or not (the same person;
        no other field of theirs changes)."""
        conn = self.conn
        if self.empty or not self.identity_by_employee_id:
            # No stored user to rename; or identity by email, where a row reaches its address's
            # holder (`_Applier._find`), whose address it keeps (its letter case aside: the key).
            return
        renamed = conn.execute(
            "SELECT s.key, coalesce(json_extract(p.fields, '$.email'), json_extract(s.fields, '$.email'))"
            " FROM w_pend AS p CROSS JOIN w_dir AS s ON s.uid = p.uid"
            " WHERE NOT p.new AND p.key != s.key ORDER BY p.ord"
        ).fetchall()
        if not renamed:
            return
        target = dict(renamed)  # old key -> the new address (the last row renaming it)
        olds = json.dumps(list(target))
        # The users the file leaves alone follow too: they join the file's users, after its rows.
        conn.execute(
            "INSERT INTO w_pend (uid, ord, row, new, active, fields, key, eid, mkey, dept, ddate, cols,"
            f" has_mgr) SELECT uid, {_FOLLOWER_ORD} + uid, NULL, 0, active, fields, key, eid, mkey, dept,"
            " ddate, '[]', 0"
            f" FROM {UNTOUCHED} AND d.mkey IN (SELECT value FROM json_each(?))"
            " AND d.uid NOT IN (SELECT uid FROM w_leave)",
            (olds,),
        )
        following = conn.execute(
            "SELECT p.uid, p.mkey, p.key FROM w_pend AS p CROSS JOIN w_dir AS s ON s.uid = p.uid"
            " WHERE p.mkey IN (SELECT value FROM json_each(?)) AND NOT (p.has_mgr AND NOT p.link_refused)",
            (olds,),
        ).fetchall()
        own = [uid for uid, old, key in following if email_key(target[old]) == key]
        moved = [(uid, target[old]) for uid, old, key in following if email_key(target[old]) != key]
        self._drop(own, "manager_email")  # the address is now this user's own: no manager
        self._set([m[0] for m in moved], "manager_email", [m[1] for m in moved])

    # -- departments ---------------------------------------------------------------
    def _refuse_deactivated_departments(self) -> None:
        """Active users stay out of deactivated departments (docs/production.md
        §3: one with active users cannot be deactivated); a file moving a user
        into one is refused for that value (docs/production.md §6): the rest of
        the row applies."""
        conn = self.conn
        if conn.execute("SELECT 1 FROM w_dept WHERE NOT active LIMIT 1").fetchone() is None:
            return  # no deactivated department to keep anyone out of (a first load has none)
        drop: list[int] = []
        keep: list[int] = []
        for uid, row, new, name, department, was_active, before in conn.execute(
            "SELECT p.uid, p.row, p.new, p.dept, dp.name, s.active, s.dept FROM w_pend AS p"
            " JOIN w_dept AS dp ON dp.key = bw_lower(p.dept) LEFT JOIN w_dir AS s ON s.uid = p.uid"
            " WHERE p.dept != '' AND NOT dp.active AND p.active ORDER BY p.ord"
        ).fetchall():
            there = not new and before != "" and before.lower() == name.lower()
            if there and was_active:
                continue  # already there, and already active: not this file's doing
            self.out.findings.append(finding(
                "DEPARTMENT_INACTIVE", row,
                f'The department "{department}" is deactivated, so the user is not (or no '
                "longer) in it; reactivate it with a department file first.",
                column="department_name", value=name,
            ))  # fmt: skip
            (drop if there else keep).append(
                uid
            )  # reactivated: active, but out of the deactivated department
        self._drop(drop, "department_name")
        self._keep_stored(keep, "department_name")
