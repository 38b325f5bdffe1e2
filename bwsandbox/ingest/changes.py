"""What a file does to each user it reaches, a part of `apply.py`'s
applier: the engage roster (the users a full-roster file leaves out, and
the safety net), the users a row leaves as they are whom the rules still
read, the action of each change, the manual edits a file takes over, and
the departments the changes name first.

SQL over the workspace (`workspace.py`), as the rules of `links.py` are;
what comes back to Python is what a report says (docs/production.md §3, §5).
"""

from __future__ import annotations

import json
import sqlite3

from bwsandbox.ingest import roster, workspace
from bwsandbox.ingest.records import (
    Action,
    Department,
    DepartmentChange,
    ManualEdit,
    Outcome,
    Overwrite,
    Policy,
    Source,
)


class ChangeRules:
    """Mixed into the applier (which fills these in)."""

    conn: sqlite3.Connection
    policy: Policy
    out: Outcome
    rows_seen: int
    full_roster: bool
    all_columns: str
    empty: bool  # the directory before the file has no user (a first load)

    # -- the engage roster ---------------------------------------------------------
    def _omitted(self) -> int:
        if not self.full_roster:
            return 0
        return self.conn.execute(
            "INSERT INTO w_leave SELECT uid FROM w_dir AS d WHERE active"
            " AND NOT EXISTS (SELECT 1 FROM w_pend AS p WHERE p.uid = d.uid)"
            " AND NOT EXISTS (SELECT 1 FROM w_seen AS s WHERE s.key = d.key)"
        ).rowcount

    def _within_termination_limit(self, omitted: int) -> bool:
        """docs/production.md §5 safety net, said up front either way (`ingest/roster.py`,
        the words `validate --context` predicts them with)."""
        active_before = int(self.conn.execute("SELECT count(*) FROM w_dir WHERE active").fetchone()[0])
        limit = self.policy.termination_limit
        if roster.within_limit(omitted, active_before, limit):
            shown = [
                str(r[0])
                for r in self.conn.execute(
                    "SELECT coalesce(json_extract(d.fields, '$.email'), '') AS e FROM w_leave AS l"
                    " CROSS JOIN w_dir AS d ON d.uid = l.uid ORDER BY e LIMIT ?",
                    (roster.NAMED,),
                )
            ]
            self.out.findings.append(roster.terminations(shown, active_before, count=omitted))
            return True
        self.out = Outcome(refused=True)
        self.out.count("skipped", self.rows_seen)  # nothing in the file applies
        self.out.findings.append(roster.termination_limit(omitted, active_before, limit))
        return False

    def _changes(self) -> None:
        """What the file does to each user it reached, and the manual edits it
        takes over (docs/production.md §5)."""
        conn = self.conn
        if self.policy.source is Source.FILE:
            self._overwritten()
        if self.policy.source is Source.ADMIN:
            self._manual_set()
        if self.empty:
            return  # every user is one the file creates: nothing left to decide
        # Left to decide: stored users whose fields a rule changed (the row set
        # every creation and change of status, which stays), and the users of
        # a renamed manager; unchanged if they hold the stored fields again.
        conn.execute(
            "UPDATE w_pend SET action = 'unchanged' WHERE action IS NULL"
            " AND (fields = (SELECT fields FROM w_dir AS s WHERE s.uid = w_pend.uid)"
            # a manager named by id is set by json_set, which writes JSON without spaces
            " OR json(fields) = (SELECT json(fields) FROM w_dir AS s WHERE s.uid = w_pend.uid))"
        )
        # The rest hold the stored fields in another spelling, or new ones: compared as values.
        last = -1
        while True:
            rows = conn.execute(
                "SELECT p.uid, p.fields, s.fields FROM w_pend AS p CROSS JOIN w_dir AS s ON s.uid = p.uid"
                " WHERE p.action IS NULL AND p.uid > ? ORDER BY p.uid LIMIT ?",
                (last, workspace.BATCH),
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
            "INSERT INTO w_pend (uid, ord, row, new, active, fields, key, eid, mkey, dept, ddate, cols,"
            " has_mgr, action)"
            " SELECT d.uid, 3000000000000 + d.uid, NULL, 0, 0, json_set(d.fields, '$.deactivation_date', ?1),"
            " d.key, d.eid, d.mkey, d.dept, ?1, '[]', 0, 'terminated'"
            " FROM w_leave AS l CROSS JOIN w_dir AS d ON d.uid = l.uid",
            (self.policy.today,),
        )

    def _departments_on_first_use(self) -> None:
        """A department a change names and the directory lacks is created, at
        its first change (docs/production.md §3); the first spelling names it."""
        known: set[str] = set()
        # Each spelling once, at its first change: kept in a table as the changes are read (a file
        # names a few departments: a search of it a change, not a sort of every change).
        self.conn.execute(
            "INSERT INTO w_named SELECT dept, row, ord FROM w_pend WHERE action != 'unchanged'"
            " AND dept != '' ON CONFLICT (dept) DO UPDATE SET row = excluded.row, ord = excluded.ord"
            " WHERE excluded.ord < ord"
        )
        for name, row in self.conn.execute("SELECT dept, row FROM w_named ORDER BY ord").fetchall():
            key = name.lower()
            if key in known or self.conn.execute("SELECT 1 FROM w_dept WHERE key = ?", (key,)).fetchone():
                continue
            known.add(key)
            self.out.departments.append(
                DepartmentChange(action=Action.CREATED, before=None, after=Department(name=name), row=row)
            )

    # -- the users a row leaves as they are ------------------------------------------
    def _back_in(self) -> None:
        """The users a row left as they are, whom a rule still reads as the
        file's (`links.py`, `changes.py`), join `w_pend` as they would have
        from the start; the rules read the others as users the file leaves
        alone, which for them comes to the same (docs/benchmarks.md "Ingest
        at scale"). A rule reads them as the file's when:
        - they have manual edits (the file takes over those of its columns);
        - their row names a manager who may not be an active user once the
          file is applied (MANAGER_NOT_FOUND): nobody, or someone inactive,
          leaving (engage), or whom the file deactivates.
        Their address needs nothing: with identity by email (the only one
        here) a row reaches its address's last holder, who holds it once
        the file is applied whether the rules read them as the file's or
        not, and no address changes hands. Bringing back more than these
        would be harmless: it is what every row did before."""
        # Who holds a manager's address once the file is applied: its last
        # holder, as `_final_addresses` says, active unless leaving, or as the file leaves them.
        holder = (
            "(SELECT h.active AND h.uid NOT IN (SELECT uid FROM w_leave) FROM w_dir AS h"
            " WHERE h.key = m.key ORDER BY h.uid DESC LIMIT 1)"
        )
        # Each address the rows name as a manager asked once (a roster names a
        # manager on most rows, and far fewer managers than rows).
        doubtful = (
            "SELECT m.key FROM (SELECT mkey AS key FROM w_same WHERE mkey != '' GROUP BY mkey) AS m"
            f" WHERE NOT coalesce({holder}, 0)"
            " OR EXISTS (SELECT 1 FROM w_pend AS q WHERE q.key = m.key AND NOT q.active)"
        )
        edited = self._edited()
        self.conn.execute(
            "INSERT INTO w_pend (uid, ord, row, new, active, fields, key, eid, mkey, dept, ddate, cols,"
            " has_mgr, action) SELECT d.uid, s.row, s.row, 0, d.active, d.fields, d.key, d.eid, d.mkey,"
            " d.dept, d.ddate, s.cols, s.has_mgr, 'unchanged'"
            " FROM w_same AS s CROSS JOIN w_dir AS d ON d.uid = s.uid"
            f" WHERE {'s.uid IN (SELECT uid FROM w_manual) OR ' if edited else ''}s.mkey IN ({doubtful})"
            " ORDER BY s.row"
        )

    # -- manual edits --------------------------------------------------------------
    def _edited(self) -> bool:
        """Whether the directory has manual edits (most have none)."""
        return self.conn.execute("SELECT 1 FROM w_manual LIMIT 1").fetchone() is not None

    def _overwritten(self) -> None:
        """Data in a file overrides earlier manual changes, each one recorded
        (docs/production.md §5): the edits of the fields the file's columns give."""
        if not self._edited():
            return
        for uid, row, email, name, manual, at, by, new in self.conn.execute(
            "SELECT p.uid, p.row, coalesce(json_extract(p.fields, '$.email'), ''), m.field, m.value, m.at,"
            " m.source, coalesce(json_extract(p.fields, '$.\"' || m.field || '\"'), '')"
            " FROM w_pend AS p JOIN w_manual AS m ON m.uid = p.uid WHERE NOT p.new"
            " AND EXISTS (SELECT 1 FROM json_each(coalesce(p.cols, ?)) AS c WHERE c.value = m.field)"
            " ORDER BY p.ord, m.field",
            (self.all_columns,),
        ).fetchall():
            self.out.manual_cleared.append((uid, name))
            if new != manual:
                self.out.overwritten.append(Overwrite(
                    email=email, field=name, manual_value=manual, file_value=new, edited_at=at, edited_by=by,
                    row=row,
                ))  # fmt: skip

    def _manual_set(self) -> None:
        """The Admin module's edits: manual until a file overwrites them."""
        assert self.policy.source is Source.ADMIN
        for uid, cols, fields in self.conn.execute(
            "SELECT uid, coalesce(cols, ?), fields FROM w_pend ORDER BY ord", (self.all_columns,)
        ).fetchall():
            values = json.loads(fields)
            for name in sorted(set(json.loads(cols)) - {"email", "manager_id"}):
                self.out.manual_set.append(
                    ManualEdit(
                        uid=uid,
                        field=name,
                        value=values.get(name, ""),
                        at=self.policy.now,
                        source=self.policy.source_label,
                    )
                )
