"""The quick yes: the rows of a batch known in SQL to leave their user as
they are, without reading the user into Python or merging (`apply.py`
`_Applier.rows`; docs/benchmarks.md "Ingest at scale").

A row is known unchanged when its fields as a new user's, written as the
store writes them (`stored.new_text`), are its user's stored text to the
byte, the status it gives its user is theirs, and its employee id, if any,
is theirs (`known_same`: an `INSERT … SELECT` over a VALUES list of the
batch's rows into `w_same`). `QuickRule.row` says what a row brings to that
comparison (its quick row), or that only the merge can judge it; the C
module writes the same row for the common row (`_rows.c` `quick_row`, a
property test holds the two to one answer), so a re-sent roster costs no
Python per row here.
Of the rows this does not, the quick change (`valuechange.py`) writes those
that change only values, and the merge decides the others.

`status_after` is the production rule for a row's deactivation date
(docs/production.md §3), for the merge and this alike.
"""

from __future__ import annotations

import functools
import itertools
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from bwsandbox.ingest import workspace
from bwsandbox.ingest.records import address_key
from bwsandbox.ingest.stored import CONTROL
from bwsandbox.validator import accel
from bwsandbox.validator.applicable import RecordBatch
from bwsandbox.validator.model import ApplicableRow
from bwsandbox.validator.values import NEVER, PLAIN_DATE_DMY, PLAIN_DATE_MDY

# A quick row: i (the row's place in its batch), row, key, text, want (the
# status the row gives its user; -1: theirs, the row does not say), eid ('' for
# none), cols, has_mgr. An int, not None: `sqlite3` binds None through its adapter
# lookup, 0.3 s slower per million rows than an int (docs/benchmarks.md).
Quick = tuple[int, int, str, str, int, str, str, int]
_DATE = "deactivation_date"
_DATE_KINDS = (PLAIN_DATE_MDY, PLAIN_DATE_DMY)  # how the C module reads a date column (`record_columns`)


def status_after(values: Mapping[str, str], active: bool, today: str) -> bool:
    """Whether a user who was `active` is active after their row: a
    deactivation date past or today deactivates now, a future one on that
    date, a blank one reactivates; no such column changes nothing."""
    if _DATE not in values:
        return active
    date = values[_DATE].strip()
    return date > today if date else True


def columns_text(names: tuple[str, ...] | frozenset[str]) -> str:
    """The columns a row gives its user, as `w_pend` and `w_same` hold them (JSON)."""
    return json.dumps(sorted(names))


@dataclass(frozen=True, slots=True)
class QuickRule:
    """What a row is compared with its user on, for one file.

    `kept`: the names a user must keep (core: an empty cell of one is a
    finding, the merge's); `engage`: the roster is employed, so a row says
    its user's status even without a date; `ids`: the file has employee
    ids; `columns`: the file's columns, a row's names when it has them all."""

    kept: tuple[str, ...]
    engage: bool
    today: str
    ids: bool
    columns: frozenset[str]
    text: Callable[[Mapping[str, str]], str]

    def row(self, i: int, row: int, key: str, values: Mapping[str, str], cols: str) -> Quick | None:
        """The row's quick row (`cols`: its columns' text), or None for a row only the merge can judge."""
        for name in self.kept:
            if not values.get(name, "").strip():
                return None  # a required name kept (a finding, unless its value was refused): the merge says
        # The user's status after the row where the row alone says it (else: theirs,
        # -1); in engage always: the roster is employed.
        ruled = self.engage or _DATE in values
        want = int(status_after(values, True, self.today)) if ruled else -1
        # An id as the apply reads it (untrimmed), not as stored.
        eid = values.get("employee_id", "") if self.ids else ""
        return (i, row, key, self.text(values), want, eid, cols, int("manager_email" in values))


Judge = Callable[[int, int, str, Mapping[str, str]], Quick | None]


def rows(rule: QuickRule, columns: Callable[[Mapping[str, str]], str]) -> Judge:
    """`rule.row` for every row of a file (`columns`: a row's columns'
    text): by the C module where it is built and not turned off
    (`validator/accel.py`), which writes the common row and leaves any other
    to `rule.row`; chosen once per apply."""

    def in_python(i: int, row: int, key: str, values: Mapping[str, str]) -> Quick | None:
        return rule.row(i, row, key, values, columns(values))

    if not accel.engines().ccells:
        return in_python
    from bwsandbox.validator._ccells import quick_row

    spec = (rule.kept, rule.engage, rule.today, rule.ids, rule.columns, columns_text(rule.columns), CONTROL,
            _DATE, "employee_id", "manager_email")  # fmt: skip

    def in_c(i: int, row: int, key: str, values: Mapping[str, str]) -> Quick | None:
        got = quick_row(i, row, key, values, spec)
        return in_python(i, row, key, values) if got is NotImplemented else got

    return in_c


# A row's user, its address's last holder, is left as they are when their
# stored fields are the row's as a new user's (text), their status is what
# the row makes it (want; -1: theirs) and the row's id, if any, is theirs.
# The rows come as one VALUES list a statement, bound straight from their
# quick rows (no work table between: docs/benchmarks.md "The re-send floor"),
# in chunks of the sizes of `_CHUNKS` (each size's statement is prepared once,
# a batch of any size is a few of them).
_Q = ("SELECT column1 AS i, column2 AS row, column3 AS key, column4 AS text, column5 AS want,"
      " column6 AS eid, column7 AS cols, column8 AS has_mgr FROM (VALUES {rows})")  # fmt: skip
# The same user found by the store row's rowid where the directory is read in
# place (`workspace._VIEW` `rid`: one search less a row), by uid where copied.
_FOUND = {True: "d.rid = (SELECT rid FROM w_dir WHERE key = q.key ORDER BY uid DESC LIMIT 1)",
          False: "d.uid = (SELECT max(uid) FROM w_dir WHERE key = q.key)"}  # fmt: skip
_SAME = "d.fields = q.text AND (q.want < 0 OR d.active = q.want) AND q.eid IN ('', d.eid)"
# Each row gives `w_same` a row in the one statement: its user's where it
# leaves them as they are, else a note of the row under a uid below 0 (its n:
# -1 - n), which `known_same` reads and deletes at once (a second statement
# finding the rows the first left out searched the directory again for every
# row: over 1 s of a 1,000,000-row file changing 10 %, docs/benchmarks.md).
# ?1 (and ?2) come first in each statement's text, so that the VALUES list's
# parameters are numbered after them.
_QUICK_SAME = {
    viewed: "INSERT INTO w_same (uid, row, cols, has_mgr, mkey, n)"
    " SELECT coalesce(d.uid, -1 - ?1 - q.i), q.row, nullif(q.cols, ?2), q.has_mgr,"
    " CASE WHEN q.has_mgr AND d.uid IS NOT NULL THEN d.mkey ELSE '' END,"
    f" ?1 + q.i FROM ({_Q}) AS q LEFT JOIN w_dir AS d ON {found} AND {_SAME}"
    for viewed, found in _FOUND.items()
}
# The rows a statement above left for the merge, by their place in the batch.
_MISSED = "SELECT n - ? FROM w_same WHERE uid < 0"
_FORGET = "DELETE FROM w_same WHERE uid < 0"
_CHUNKS = (1024, 256, 64, 16, 4, 1)


@functools.lru_cache(maxsize=2 * len(_CHUNKS))  # each size of the two statements
def _statement(template: str, size: int, width: int) -> str:
    """`template` with its VALUES list made of `size` rows of `width` parameters
    (numbered after the statement's own)."""
    return template.format(rows=", ".join(["(" + ", ".join("?" * width) + ")"] * size))


def _chunks(rows: Sequence[Quick], limit: int) -> Iterator[Sequence[Quick]]:
    """`rows` in chunks of the sizes of `_CHUNKS`, largest first, each of at most
    `limit` rows (at least 1: as many as a statement's parameters allow)."""
    sizes = [size for size in _CHUNKS if size <= limit]
    at = 0
    while at < len(rows):
        size = next(size for size in sizes if size <= len(rows) - at)
        yield rows[at : at + size]
        at += size


def known_same(conn: sqlite3.Connection, quick: list[Quick], base: int, full: str) -> set[int]:
    """The rows of quick rows `quick` (their first value: the row's place in
    its batch; `base`: the batch's first row's place among the file's rows)
    that leave their user as they are, sent to `w_same` (their columns NULL
    where they are `full`, the file's: most rows, and the longest value)
    (sqlite3.IntegrityError: two of them reach one user). None of them
    where the connection allows a statement too few parameters for one row
    (all are then the merge's)."""
    if not quick:
        return set()
    limit = (conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 2) // len(quick[0])
    if limit < 1:
        return set()
    same = _QUICK_SAME[workspace.viewed(conn)]
    done = {q[0] for q in quick}
    for chunk in _chunks(quick, limit):
        flat: list[object] = [base, full]
        flat.extend(itertools.chain.from_iterable(chunk))
        conn.execute(_statement(same, len(chunk), len(chunk[0])), flat)
        if missed := conn.execute(_MISSED, (base,)).fetchall():
            done.difference_update(i for (i,) in missed)
            conn.execute(_FORGET)
    return done


# What becomes of the rows the comparison found changing their user: their
# places in the batch of those whose `w_pend` row it wrote (`valuechange.py`).
Settle = Callable[[list[Quick]], set[int]]


def _known(conn: sqlite3.Connection, quick: list[Quick], settle: Settle, base: int, full: str) -> set[int]:
    """The places of the quick rows `quick` that leave their user as they are
    (`known_same`), or whose change `settle` writes."""
    done = known_same(conn, quick, base, full)
    if len(done) < len(quick):
        done.update(settle([q for q in quick if q[0] not in done]))
    return done


def known_rows(
    conn: sqlite3.Connection,
    pairs: list[tuple[ApplicableRow, str]],
    judge: Judge,
    settle: Settle,
    base: int,
    full: str,
) -> list[tuple[ApplicableRow, str]]:
    """The rows of a batch (with the keys of their addresses) the merge must
    decide, in file order: all but those known to leave their user as they
    are (`judge` gives their quick rows), which go to `w_same` in SQL
    (`known_same`), and those whose change `settle` writes."""
    quick = [q for i, (r, key) in enumerate(pairs) if key and (q := judge(i, r.row, key, r.values))]
    if not quick:
        return pairs
    done = _known(conn, quick, settle, base, full)
    return [pair for i, pair in enumerate(pairs) if i not in done]


_MAX_CELLS = 256  # the cells the C module reads of a record, at most (`_rows.c` Q_MAX_CELLS)
# What the C record reader needs of a file (`_rows.c` quick_record): see `record_spec`.
RecordColumn = tuple[int, int, bool, bytes | None]  # cell index, plain kind, required, JSON name
RecordSpec = tuple[int, tuple[RecordColumn, ...], int, int, tuple[int, ...], int, str, int, str]


def record_columns(
    plain: Sequence[tuple[int, str, int, bool]], columns: frozenset[str]
) -> tuple[int, tuple[RecordColumn, ...], dict[str, int]] | None:
    """How the C module reads a file's records (`plain`: each column's cell
    index, name, plain kind and whether it is required, in the order of a
    row's values: `Applicable.plain`): the width it reads, the columns, and
    each name's place among them; None where it is not in use, or the
    columns are not the file's `columns`, or hold no address."""
    names = [name for _, name, _, _ in plain]
    if not accel.engines().ccells or len(names) != len(columns) or set(names) != columns:
        return None
    width = max((index for index, _, _, _ in plain), default=-1) + 1
    if "email" not in names or width > _MAX_CELLS or len(plain) > _MAX_CELLS:
        return None
    # A deactivation date the C module reads as a date (a date column's kinds,
    # by the locale: its value ISO, written last in the fields, its status on
    # `today`), or not at all but empty (a custom key of that name: its text is
    # a date to the apply). Any other date column (none yet) it does not read, as
    # it would write it last and take its status from it. The other column that
    # steers applying is not in the fields.
    cols = tuple((index, _record_kind(name, kind), required,
                  None if name in CONTROL and name != _DATE else json.dumps(name).encode("ascii"))
                 for index, name, kind, required in plain)  # fmt: skip
    return width, cols, {name: c for c, name in enumerate(names)}


def _record_kind(name: str, kind: int) -> int:
    """How the C module reads a column's cells: a date only as the deactivation date."""
    if name == _DATE:
        return kind if kind in _DATE_KINDS else NEVER
    return NEVER if kind in _DATE_KINDS else kind


def record_spec(rule: QuickRule, plain: Sequence[tuple[int, str, int, bool]]) -> RecordSpec | None:
    """How the C module reads a file's records into quick rows (`plain`:
    as `record_columns` reads it); None where it does not."""
    got = record_columns(plain, rule.columns)
    if got is None:
        return None
    width, cols, at = got
    # The status of a record the C module reads without a deactivation date: active (1) where
    # the row says it (the date's column, engage); a dated one's is its date's on `today`.
    want = 1 if rule.engage or _DATE in at else -1
    return (width, cols, at["email"], at.get("employee_id", -1) if rule.ids else -1,
            tuple(at.get(name, -1) for name in rule.kept), want, columns_text(rule.columns),
            int("manager_email" in at), rule.today)  # fmt: skip


def left_to_python(batch: RecordBatch, read: Callable[[int, int], int]) -> Iterator[int]:
    """The places of a batch's records the C module leaves to Python, in
    order: `read(k, stop)` reads records k, k + 1 ... before `stop` and
    returns the place of the first it does not (`stop` if none); a record
    the validator made a row of already (`batch.made`) is never read in C."""
    n, stops, s, k = len(batch.recs), sorted(batch.made), 0, 0
    while k < n:
        while s < len(stops) and stops[s] < k:
            s += 1
        k = read(k, stops[s] if s < len(stops) else n)
        if k < n:
            yield k
            k += 1


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """A batch's records as `read_records` reads them: the quick rows of those
    with one, the keys of every record's address (in order), and the rows made
    of the records the C module left (by their place in the batch)."""

    quick: list[Quick]
    keys: list[str]
    rows: dict[int, ApplicableRow]


def read_records(batch: RecordBatch, spec: RecordSpec, judge: Judge) -> ReadBatch:
    """A batch's records read: the common record by the C module from its
    bytes (`quick_records`, a run of them a call), and a row made only of
    the others (`judge` tells which of those have a quick row: the rule says
    None where the C module says the merge's). Reads nothing of the store,
    so the next batch's is read while this one is compared (`ahead.py`)."""
    from bwsandbox.validator._ccells import quick_records

    text, starts, ends, recs, made, make = (
        batch.text, batch.starts, batch.ends, batch.recs, batch.made, batch.row
    )
    read = ReadBatch(quick=[], keys=[], rows={})
    quick, keys, rows = read.quick, read.keys, read.rows

    def run(k: int, stop: int) -> int:
        return quick_records(text, starts, ends, recs, k, stop, spec, quick, keys)

    for k in left_to_python(batch, run):
        arow = rows[k] = made.get(k) or make(recs[k])
        key = address_key(arow.values)
        keys.append(key)
        if key and (q := judge(k, arow.row, key, arow.values)):
            quick.append(q)
    return read


def known_records(
    conn: sqlite3.Connection, batch: RecordBatch, read: ReadBatch, settle: Settle, base: int, full: str
) -> list[tuple[ApplicableRow, str]]:
    """The rows of a batch (`read`: its records as `read_records` read them)
    the merge must decide, in file order: all but those known to leave
    their user as they are, which go to `w_same` (`known_same`), and those
    whose change `settle` writes."""
    done = _known(conn, read.quick, settle, base, full)
    rows, keys, make, recs = read.rows, read.keys, batch.row, batch.recs
    return [(rows.get(k) or make(recs[k]), keys[k]) for k in range(len(recs)) if k not in done]
