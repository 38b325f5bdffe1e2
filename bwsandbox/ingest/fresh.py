"""A file into an empty directory (a first load): every row with an address
creates its user, so the common record's `w_pend` row is made straight from
its bytes (`_rows.c` `plain_record`: its address's key, its fields' text as
the store writes them, and the few values the row's user is looked up by),
with no row, merge or Python dict per record (docs/benchmarks.md "Ingest at
scale"). Any other record (a value to normalise, one the validator refused)
is made a row and merged as every row is (`apply._Applier._merge_rows`),
under the uid kept for it in file order, so the directory is the one the
rows one by one would make (a property test).

What a created user's row holds is `apply._Applier._pending`'s rule for a
new user, for a row whose values are its cells as they are: active (its
deactivation date, if any, is empty), the fields `stored.new_fields` gives,
the names a new user needs and lacks (core), the manager id it names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from bwsandbox.ingest.quick import RecordColumn, columns_text, record_columns
from bwsandbox.ingest.records import Action, address_key, email_key
from bwsandbox.spec.fields import NEW_USER_NAMES
from bwsandbox.validator.applicable import RecordBatch
from bwsandbox.validator.findings import row_of
from bwsandbox.validator.model import ApplicableRow

_CREATED = str(Action.CREATED)
# The values `plain_record` picks, after the key and the text: those `w_pend` repeats
# (`workspace.DERIVED`), the manager id, and the names a new user needs.
_PICKS = ("employee_id", "manager_email", "department_name", "manager_id", *NEW_USER_NAMES)
PlainSpec = tuple[int, tuple[RecordColumn, ...], int, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class Fresh:
    """How one file's common records become created users' `w_pend` rows."""

    spec: PlainSpec  # `plain_record`'s: width, columns, the address's place, the picks' places
    cols: str  # the columns every such row gives its user (JSON)
    has_mgr: int
    has_mid: bool  # the file has a manager_id column
    core: bool  # a new user's missing names are noted (`blank`)

    def pending(self, got: tuple[str, ...], uid: int, row: int) -> tuple[object, ...]:
        """The `w_pend` row of `plain_record`'s answer `got`, the file's row `row` creating user `uid`."""
        key, text, eid, manager, dept, mid, *names = got
        blank = None
        if self.core and (empty := [n for n, v in zip(NEW_USER_NAMES, names, strict=True) if not v]):
            blank = json.dumps(empty)
        return (uid, row, row, 1, 1, text, key, eid, email_key(manager) if manager else "", dept, "",
                self.cols, self.has_mgr, mid if self.has_mid else None, blank, _CREATED)  # fmt: skip


def plan(plain: Sequence[tuple[int, str, int, bool]], columns: frozenset[str], *, core: bool) -> Fresh | None:
    """How the C module makes a file's created users (`plain`, `columns`: as
    `quick.record_columns` reads them); None where it does not."""
    got = record_columns(plain, columns)
    if got is None:
        return None
    width, cols, at = got
    spec = (width, cols, at["email"], tuple(at.get(name, -1) for name in _PICKS))
    return Fresh(spec=spec, cols=columns_text(columns), has_mgr=int("manager_email" in at),
                 has_mid="manager_id" in at, core=core)  # fmt: skip


def created(
    records: RecordBatch, fresh: Fresh, uid: int
) -> tuple[list[str], list[tuple[object, ...]], list[tuple[ApplicableRow, str]], list[int | None], int]:
    """A batch of a first load: the keys of its rows' addresses; the `w_pend`
    rows of its common records (users created, uids from `uid` on in file
    order); the other rows, to merge, with the uid kept for each (None: no
    address, so no user); and the next uid."""
    from bwsandbox.validator._ccells import plain_record

    text, starts, ends, made, make, spec = (
        records.text, records.starts, records.ends, records.made, records.row, fresh.spec
    )
    keys: list[str] = []
    out: list[tuple[object, ...]] = []
    rest: list[tuple[ApplicableRow, str]] = []
    uids: list[int | None] = []
    for k, rec in enumerate(records.recs):
        arow = made.get(k)
        got = NotImplemented if arow is not None else plain_record(text, starts[k], ends[k], spec)
        if got is NotImplemented:
            arow = arow or make(rec)
            key = address_key(arow.values)
            rest.append((arow, key))
            uids.append(uid if key else None)
            uid += bool(key)
        else:
            key = got[0]
            out.append(fresh.pending(got, uid, row_of(rec)))
            uid += 1
        keys.append(key)
    return keys, out, rest, uids, uid
