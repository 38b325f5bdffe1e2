"""The quick change: rows the comparison of `quick.py` found changing their
user, whose merge is known without making the row or merging it
(`apply.py` `_Applier._settle`; docs/benchmarks.md "Ingest at scale").

A row that names exactly the fields its user holds, in the same order,
changes only values (a roster sent again with some titles changed). The
merge (`apply._Applier._merge`) then sets each of the row's values, trimmed,
in its place, and clears nothing (an empty cell of a held field would leave
that field out of the row's own fields, and the names would differ): the
user's fields become the row's fields as a new user's (`stored.new_fields`),
whose text (`stored.new_text`) the quick row holds already, and their
status the one the quick row says (`want`; -1: theirs). So such a row's
`w_pend` row is made from its quick row and its user's stored row, as the
merge would make it. The merge still decides any other row: one whose
address no user holds, whose fields differ in names or order from its
user's, whose employee id is not its user's (the merge skips or reports
it), whose user it reactivates (engage), or where a value it changes is
stored untrimmed (which the merge keeps when the row sends it as stored;
no file stores one, as the merge and `new_fields` trim every value). Tests
hold the outcome and the work tables this leaves to those the merge leaves
(`tests/unit/test_valuechange.py`). Whether a row changes only values is
read from the two JSON texts (`read_fields`), by the C module where it is
built, with no object made of either (`read_texts`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping

from bwsandbox.ingest import workspace
from bwsandbox.ingest.quick import Quick
from bwsandbox.ingest.records import Action, address_key
from bwsandbox.ingest.stored import Stored, decoded, prefetch, user_action
from bwsandbox.ingest.workspace import DERIVED, derived_values
from bwsandbox.validator import accel

_UNCHANGED = str(Action.UNCHANGED)
# A changed user's `w_pend` row: its values bound in this order (?1, ?2 ...; the row is its order
# too); what every such row holds alike written into the statement, not bound (as `fresh.py`'s):
# a stored user, no manager named by id, no name lacking. `cols` is bound as 0 where the row has
# the file's columns (most rows), made NULL by the statement (`workspace.pend_insert`).
_BOUND = ("uid", "row", "active", "fields", "key", "eid", "mkey", "dept", "ddate", "cols", "has_mgr",
          "action")  # fmt: skip
PEND_INSERT = workspace.pend_insert(
    {"ord": "?2", "new": "0", "mgr_eid": "NULL", "blank": "NULL"}, _BOUND, ("cols",)
)
Pend = tuple[object, ...]  # a changed user's `w_pend` row, its values in the order of `_BOUND`
Same = tuple[object, ...]  # a `w_same` row: uid, row, cols, has_mgr, mkey
# The fields the apply looks users up by (`workspace.DERIVED`): what a changed row's `w_pend` row repeats.
_LOOKED_UP = tuple(DERIVED)
# What `read_fields` makes of a user's stored fields and a row's: None, or (equal, the looked-up fields).
Read = tuple[bool, dict[str, str]] | None


def read_fields(old: Mapping[str, object], new: Mapping[str, str]) -> Read:
    """Whether the row's fields as a new user's (`new`) change only values of
    its user's stored fields (`old`): None where they name other fields or
    the same in another order, or change a value stored untrimmed (the merge
    keeps it when the row sends it as stored); else whether every value is
    the same (the stored fields then stay), and the new values of the fields
    the apply looks users up by."""
    if list(old) != list(new) or any(
        not isinstance(was, str) or was != was.strip() for name, was in old.items() if was != new[name]
    ):
        return None
    return old == new, {name: new[name] for name in _LOOKED_UP if name in new}


def read_texts() -> Callable[[list[str], list[str]], list[Read]]:
    """`read_fields` of pairs of JSON texts (stored, the row's): by the C module
    where it is built and not turned off (`validator/accel.py`), which reads
    the texts with no object made of them and leaves any text it does not
    read to Python (a property test holds the two to one answer); else both
    sides decoded in one `json.loads` each (`stored.decoded`). Chosen once per batch."""

    def in_python(olds: list[str], news: list[str]) -> list[Read]:
        return [read_fields(old, new) for old, new in zip(decoded(olds), decoded(news), strict=True)]

    if not accel.engines().ccells:
        return in_python
    from bwsandbox.validator._ccells import values_only

    def in_c(olds: list[str], news: list[str]) -> list[Read]:
        out: list[Read] = []
        for old, new in zip(olds, news, strict=True):
            got = values_only(old, new, _LOOKED_UP)
            out.append(read_fields(json.loads(old), json.loads(new)) if got is NotImplemented else got)
        return out

    return in_c


def settle(
    conn: sqlite3.Connection, missed: list[Quick], *, ids: bool, engage: bool, full: str
) -> tuple[list[Pend], list[Same], set[int]]:
    """The `w_pend` and `w_same` rows of the quick rows `missed` (rows the
    comparison found changing their user) that change only values, and their
    places in their batch (`ids`: the file has employee ids; `engage`: the
    engage profile; `full`: the file's columns, which a row's NULL `cols` stands for)."""
    found = prefetch(conn, [q[2] for q in missed], [])
    known: list[tuple[Quick, int, Stored]] = []
    for q in missed:
        uid = found.by_key.get(q[2])
        if uid is None:
            continue  # a creation
        before = found.users[uid]
        if (ids and q[5] not in ("", before.eid)) or (engage and not before.active):
            continue  # an id the merge checks; a user the engage roster reactivates
        known.append((q, uid, before))
    if not known:
        return [], [], set()
    read = read_texts()([before.text for _, _, before in known], [q[3] for q, _, _ in known])
    pend: list[Pend] = []
    same: list[Same] = []
    settled: set[int] = set()
    for (q, uid, before), got in zip(known, read, strict=True):
        if got is None:
            continue  # other fields, another order, an untrimmed value: the merge says
        equal, looked_up = got
        i, row, _, text, want, _, cols, has_mgr = q
        kept_cols = None if cols == full else cols  # the file's columns: NULL (`w_pend`)
        active = before.active if want < 0 else bool(want)
        action = user_action(before.active, active, changed=not equal)
        settled.add(i)
        if equal:  # the same fields (spelled otherwise): the stored ones stay as they are
            if action == _UNCHANGED:
                same.append((uid, row, kept_cols, has_mgr, before.mkey if has_mgr else ""))
                continue
            text, key, eid, mkey, dept, ddate = before.columns()
        else:
            key = address_key(looked_up)
            eid, mkey, dept, ddate = derived_values(looked_up)
        pend.append((uid, row, int(active), text, key, eid, mkey, dept, ddate, kept_cols or 0, has_mgr,
                     action))  # fmt: skip
    return pend, same, settled
