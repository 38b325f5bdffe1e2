"""The manager loop check, a part of `apply.py`'s applier: a link a file
makes that closes a loop is refused (`LoopRules._refuse_cycles`,
docs/production.md §4). The loops are found over integer arrays: which
users of a management graph lie on one, one array lookup per user and
step, numpy's, never a Python walk per user.
"""

from __future__ import annotations

import itertools
import sqlite3
from typing import TYPE_CHECKING

from bwsandbox.ingest import workspace
from bwsandbox.ingest.links import IN_UIDS, UNTOUCHED, LinkRules, uids_param
from bwsandbox.validator.findings import finding

if TYPE_CHECKING:  # numpy is imported where a file's managers are checked for loops
    import numpy as np
    from numpy.typing import NDArray

_FETCH = 10_000  # links read from SQLite at a time
_CHAIN_SHOWN = 6  # managers named in a MANAGER_CYCLE message


def read_links(cursor: sqlite3.Cursor, managers: NDArray[np.int64], makes: NDArray[np.bool_]) -> None:
    """The links `cursor` gives (user, manager, whether the file makes it:
    three integers a row) into the arrays, by user."""
    import numpy as np

    while links := cursor.fetchmany(_FETCH):
        got = np.fromiter(itertools.chain.from_iterable(links), dtype=np.int64, count=3 * len(links))
        managers[got[0::3]] = got[1::3]
        makes[got[0::3]] = got[2::3] != 0


def on_loops(managers: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Which users lie on a manager loop (`managers`: each user's manager,
    -1 for none). A chain followed for as many steps as there are users
    ends on a loop, or past the top of its tree, and each user of a loop is
    where some chain ends (a loop's own users end on each other): so the
    users those walks end on are the loops'. The steps are doubled each
    time (the manager's manager, then theirs ...): log2(users) array
    lookups in all, never a walk per user."""
    import numpy as np

    top = len(managers)  # past the top of a tree: a place that stays where it is
    step = np.append(np.where(managers < 0, top, managers), top)
    steps = 1
    while steps <= top:
        step = step[step]
        steps *= 2
    ends = np.zeros(top + 1, dtype=bool)
    ends[step] = True
    return ends[:top]


class LoopRules(LinkRules):
    """The loop check, on the other directory rules it asks (mixed into the applier)."""

    def _manager_graph(self) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Each user's manager (a uid, -1 for none) once the file is applied, and whether the file
        makes that link (`_MAKES_LINK`), read for the users someone has as manager: only they can
        lie on a loop (each manages the one before); the others' are most links (7 in 8 in a tree)."""
        import numpy as np

        self._final_addresses(every=True)
        managers = np.full(self.next_uid, -1, dtype=np.int64)
        makes = np.zeros(self.next_uid, dtype=bool)
        self.conn.execute(
            "INSERT OR IGNORE INTO w_heads SELECT f.uid FROM (SELECT mkey FROM w_pend UNION ALL SELECT mkey"
            f" FROM {UNTOUCHED}) AS c CROSS JOIN {self._final} AS f ON f.key = c.mkey WHERE c.mkey != ''"
        )
        self._read_links(managers, makes, "SELECT uid FROM w_heads")
        return managers, makes

    def _read_links(self, managers: NDArray[np.int64], makes: NDArray[np.bool_], users: str,
                    params: tuple[str, ...] = ()) -> None:  # fmt: skip
        """The links of `users` (SQL giving uids) into the graph's arrays."""
        own = f"SELECT uid, mkey, coalesce({self._MAKES_LINK}, 0) AS makes FROM w_pend WHERE uid IN ({users})"
        sql = (
            f"SELECT c.uid, f.uid, c.makes FROM ({own} UNION ALL SELECT uid, mkey, 0 FROM {UNTOUCHED} AND"
            f" d.uid IN ({users})) AS c CROSS JOIN {self._final} AS f ON f.key = c.mkey WHERE c.mkey != ''"
        )
        read_links(workspace.tuples(self.conn, sql, params * 2), managers, makes)

    _MAKES_LINK = (  # the file gives this user a manager other than the stored one
        "(has_mgr AND mkey != '' AND NOT link_refused"
        " AND (new OR mkey != (SELECT s.mkey FROM w_dir AS s WHERE s.uid = w_pend.uid)))"
    )

    def _refuse_cycles(self) -> None:
        """A manager chain must not loop (docs/production.md §4), whether the
        loop is among the file's rows or closes through users the file leaves
        as they are. A row whose new link (one the file makes, not one it
        repeats) lies on a loop keeps its old manager; the loops are found
        first, so the order of the rows never matters, and found again after
        the old managers are back, until none is left."""
        conn = self.conn
        if conn.execute(f"SELECT 1 FROM w_pend WHERE {self._MAKES_LINK} LIMIT 1").fetchone() is None:
            return
        import numpy as np

        managers, makes = self._manager_graph()  # a link to nobody closes no loop
        while refused := np.flatnonzero(makes & on_loops(managers)).tolist():
            for uid in refused:
                self._cycle_finding(uid, managers)
            self._refuse_links(refused)
            makes[refused] = False  # its link refused, the user keeps the old one
            for uid, manager in conn.execute(
                "SELECT p.uid, f.uid FROM w_pend AS p"
                f" LEFT JOIN {self._final} AS f ON f.key = p.mkey AND p.mkey != ''"
                f" WHERE p.{IN_UIDS}",
                uids_param(refused),
            ):
                managers[uid] = -1 if manager is None else manager
            # An old manager back whom nobody had as manager: their own link was not read.
            unread = [int(m) for m in set(managers[refused].tolist()) if m >= 0 and managers[m] < 0]
            if unread:
                self._read_links(managers, makes, "SELECT value FROM json_each(?)", uids_param(unread))

    def _cycle_finding(self, uid: int, managers: NDArray[np.int64]) -> None:
        row, manager_eid, manager_email = self.conn.execute(
            "SELECT row, mgr_eid, json_extract(fields, '$.manager_email') FROM w_pend WHERE uid = ?", (uid,)
        ).fetchone()
        by_id = manager_eid is not None  # the file named the manager by employee id
        chain: list[str] = []
        node = uid
        while node >= 0 and len(chain) < _CHAIN_SHOWN:
            pending = self.conn.execute("SELECT mgr_eid FROM w_pend WHERE uid = ?", (node,)).fetchone()
            eid = pending[0] if pending is not None else None
            chain.append(eid if by_id and eid else self._value(node, "manager_email"))
            node = int(managers[node])
            if node == uid:
                break
        loop = " -> ".join(v.strip() for v in chain) + ("" if node == uid else " -> ...")
        value = manager_eid if by_id else manager_email
        self.out.findings.append(finding(
            "MANAGER_CYCLE", row,
            f"The manager chain loops back to this user (managers: {loop}); the manager is not set.",
            column="manager_id" if by_id else "manager_email", value=value,
        ))  # fmt: skip
