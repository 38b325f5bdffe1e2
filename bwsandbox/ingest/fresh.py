"""A file into an empty directory (a first load): every row with an address
creates its user, so the common record's `w_pend` row is made straight from
its bytes (`_rows.c` `plain_rows`, a run of records a call: its address's
key, its fields' text as the store writes them, and the few values the
row's user is looked up by), with no row, merge or Python object per
record (docs/benchmarks.md "Ingest at scale"). Any other record (a value to
normalise, one the validator refused) is made a row and merged as every row is (`apply._Applier._merge_rows`),
under the uid kept for it in file order, so the directory is the one the
rows one by one would make (a property test).

What a created user's row holds is `apply._Applier._pending`'s rule for a
new user, for a row whose values are its cells as they are (a deactivation
date: the ISO date `read_date` makes of it): the status its date gives on
the policy's today, the fields `stored.new_fields` gives, the names a new
user needs and lacks (core), the manager id it names. What every such row
holds alike (new, the file's columns, the action) is written into the
insert's SQL once, not bound on each row: a first load's million rows then
bind 11 values each, not 16 (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bwsandbox.ingest import workspace
from bwsandbox.ingest.quick import RecordColumn, left_to_python, record_columns
from bwsandbox.ingest.records import Action, address_key, email_key
from bwsandbox.spec.fields import NEW_USER_NAMES
from bwsandbox.validator.applicable import RecordBatch
from bwsandbox.validator.model import ApplicableRow

_CREATED = str(Action.CREATED)
# The values `plain_rows` picks, after the key and the text: those `w_pend` repeats
# (`workspace.DERIVED`), the manager id, and the names a new user needs.
_PICKS = ("employee_id", "manager_email", "department_name", "manager_id", *NEW_USER_NAMES)
PlainSpec = tuple[int, tuple[RecordColumn, ...], int, tuple[int, ...]]
# A `plain_rows` row into `w_pend`: its values bound in this order (?1, ?2 ...), the rest
# the same for every such row (has_mgr: whether the file has a manager column, set per file).
_BOUND = ("uid", "row", "fields", "key", "eid", "mkey", "dept", "mgr_eid", "blank", "ddate", "active")
_ALIKE = {"ord": "?2", "new": "1", "cols": "NULL", "action": f"'{_CREATED}'"}
# Values most rows leave NULL (no manager id column, no name lacking), bound as 0 and made
# NULL by the statement (`workspace.pend_insert`: about 0.3 s per million rows, docs/benchmarks.md).
_NULL_AS_0 = ("mgr_eid", "blank")
WIDTH = len(_BOUND)  # the values of a row
# Rows a statement: a statement of many rows, its values bound from one flat list, costs
# SQLite and the sqlite3 module less a row than one row a step of `executemany` (about
# 0.4 s per million rows, docs/benchmarks.md); the rest of a batch in smaller ones, and
# only sizes the connection allows (999 values a statement before SQLite 3.32: 50 rows).
_ROWS = (200, 50, 10, 1)


@dataclass(frozen=True, slots=True)
class Fresh:
    """How one file's common records become created users' `w_pend` rows."""

    spec: PlainSpec  # `plain_rows`'s: width, columns, the address's place, the picks' places
    # `plain_rows`'s: whether the file has a manager id, the names a new user lacks (JSON) by
    # the mask of the empty ones (core; 0, for NULL: none lacks, or engage), the key of an
    # address it cannot make itself (one past ASCII), and today (a date's status).
    tail: tuple[bool, tuple[str | int, ...], Callable[[str], str], str]
    inserts: tuple[tuple[int, str], ...]  # the statements that put its rows into `w_pend`, by their rows


def _blanks(core: bool) -> tuple[str | int, ...]:
    """`blank` of a created user's `w_pend` row by the mask of their empty
    names (bit j: `NEW_USER_NAMES[j]`), as `apply._Applier._pending` writes it
    (0: NULL, `_NULL_AS_0`)."""
    names = NEW_USER_NAMES
    return tuple(
        json.dumps(empty) if core and (empty := [n for j, n in enumerate(names) if mask >> j & 1]) else 0
        for mask in range(1 << len(names))
    )


def plan(
    plain: Sequence[tuple[int, str, int, bool]], columns: frozenset[str], *, core: bool, today: str,
    limit: int,
) -> Fresh | None:
    """How the C module makes a file's created users (`plain`, `columns`: as
    `quick.record_columns` reads them) on `today`, in statements of at most
    `limit` values (the connection's); None where it does not."""
    got = record_columns(plain, columns)
    if got is None or limit < WIDTH:
        return None
    width, cols, at = got
    spec = (width, cols, at["email"], tuple(at.get(name, -1) for name in _PICKS))
    tail = ("manager_id" in at, _blanks(core), email_key, today)
    alike = {**_ALIKE, "has_mgr": str(int("manager_email" in at))}
    inserts = tuple(
        (n, workspace.pend_insert(alike, _BOUND, _NULL_AS_0, rows=n)) for n in _ROWS if n * WIDTH <= limit
    )
    return Fresh(spec=spec, tail=tail, inserts=inserts)


def created(
    records: RecordBatch, fresh: Fresh, uid: int
) -> tuple[list[str], list[object], list[tuple[ApplicableRow, str]], list[int | None], int]:
    """A batch of a first load: the keys of its rows' addresses; the `w_pend`
    rows of its common records (users created, uids from `uid` on in file
    order; `plain_rows`, a run of them a call), their values one row after
    the other (`insert`); the other rows, to merge, with the uid kept for
    each (None: no address, so no user); and the next uid."""
    from bwsandbox.validator._ccells import plain_rows

    text, starts, ends, recs, spec, tail = (
        records.text, records.starts, records.ends, records.recs, fresh.spec, fresh.tail
    )
    keys: list[str] = []
    out: list[object] = []
    rest: list[tuple[ApplicableRow, str]] = []
    uids: list[int | None] = []
    next_uid = uid

    def read(k: int, stop: int) -> int:
        nonlocal next_uid
        made = len(out)
        k = plain_rows(text, starts, ends, recs, k, stop, next_uid, spec, tail, out, keys)
        next_uid += (len(out) - made) // WIDTH
        return k

    for k in left_to_python(records, read):
        arow = records.made.get(k) or records.row(recs[k])
        key = address_key(arow.values)
        rest.append((arow, key))
        uids.append(next_uid if key else None)
        next_uid += bool(key)
        keys.append(key)
    return keys, out, rest, uids, next_uid


def insert(conn: sqlite3.Connection, fresh: Fresh, values: list[object]) -> None:
    """The rows `created` made (their values one row after the other) into `w_pend`."""
    at = 0
    for rows, sql in fresh.inserts:  # the last of one row
        step = rows * WIDTH
        while len(values) - at >= step:
            conn.execute(sql, values[at : at + step])
            at += step
    if at != len(values):
        raise ValueError(f"{len(values)} values are not rows of {WIDTH}: the C module is not this version's")
