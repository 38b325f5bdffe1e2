"""A department file (docs/production.md §3): departments created, renamed
under a parent, deactivated or reactivated; a department with active users
is never deactivated. Applied to the directory in a workspace
(`workspace.py`), as a user file is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import replace

from bwsandbox.ingest import workspace
from bwsandbox.ingest.records import Action, Department, DepartmentChange, Outcome, Policy, State
from bwsandbox.validator.findings import finding
from bwsandbox.validator.model import ApplicableRow


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
