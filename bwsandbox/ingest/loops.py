"""Manager loops over integer arrays: which users of a management graph
lie on a loop (`links.LinkRules._refuse_cycles` refuses the links a file
makes that close one, docs/production.md §4). One array lookup per user
and step, numpy's, never a Python walk per user.
"""

from __future__ import annotations

import itertools
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where a file's managers are checked for loops
    import numpy as np
    from numpy.typing import NDArray

_FETCH = 10_000  # links read from SQLite at a time


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
