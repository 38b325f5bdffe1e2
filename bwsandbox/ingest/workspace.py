"""The work tables a file is applied in: the directory as the rules read
it, and the users as the file leaves them (docs/benchmarks.md "Ingest at
scale").

A file of a million rows is applied without a million Python objects: the
directory is `w_dir` (its fields, and the values the rules look up as
columns: a view of the store's users, or a copy where the store's indexes
cannot serve), each row's user goes to `w_pend` as it is read, and the
rules of `links.py` are SQL over the two. The tables are in a database of
their own (SCHEMA), attached to the connection for one file: private to
it, it takes no lock of the store's and lives in a temporary file SQLite
deletes, not in this process's memory, and detaching it drops every table
at once. The worker's write copies the outcome into the store in its one
transaction (`directory.write`).

The same tables serve every caller: the worker and `validate --tenant` over
the store (`from_store`), and a directory given as records (`from_state`:
`validate --context`, the Admin module's pure tests) over a connection
of its own (`private`).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from bwsandbox.ingest.records import Action, State, User, UserChange, email_key
from bwsandbox.store import PAGE_SIZE

# The work tables' own database: attached to the connection for one file,
# private to it (a temporary file, never the store), detached at its end.
SCHEMA = "bw_work"
# The directory: each user's fields (JSON) and the values the rules look up.
# A table where the directory is copied (`from_state`, and `from_store` where
# a view cannot serve); a view of the store's `dir_users` otherwise
# (`_VIEW`). The rules read either the same way.
_DIR_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.w_dir (uid INTEGER PRIMARY KEY, key TEXT NOT NULL,"
    " eid TEXT NOT NULL, mkey TEXT NOT NULL, dept TEXT NOT NULL, ddate TEXT NOT NULL,"
    " active INTEGER NOT NULL, fields TEXT NOT NULL)"
)
_TABLES = (
    f"CREATE TABLE {SCHEMA}.w_dept (key TEXT PRIMARY KEY, name TEXT NOT NULL, parent TEXT NOT NULL,"
    " active INTEGER NOT NULL)",
    f"CREATE TABLE {SCHEMA}.w_manual (uid INTEGER NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,"
    " at TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (uid, field))",
    # The users the file touches, as it leaves them: `ord` is the order the
    # file first reached them in (its row; users the rules add come after),
    # `cols` the columns it gave them (JSON; NULL: the file's all, as most rows
    # give), `action` what it does to them.
    f"CREATE TABLE {SCHEMA}.w_pend (uid INTEGER PRIMARY KEY, ord INTEGER NOT NULL, row INTEGER,"
    " new INTEGER NOT NULL, active INTEGER NOT NULL, fields TEXT NOT NULL, key TEXT NOT NULL,"
    " eid TEXT NOT NULL, mkey TEXT NOT NULL, dept TEXT NOT NULL, ddate TEXT NOT NULL, cols TEXT,"
    " has_mgr INTEGER NOT NULL, mgr_eid TEXT, blank TEXT, link_refused INTEGER NOT NULL DEFAULT 0,"
    " mgr_uid INTEGER, action TEXT)",
    # The users a row reaches and leaves as they are, kept out of `w_pend`
    # unless a rule needs them there (`changes.ChangeRules._back_in`): a re-sent
    # roster is mostly these, and the rules then pass over the changes only.
    # `cols`: the columns the row gives them, as in `w_pend`;
    # `mkey`: their manager's key where their row names one, else ''; `n`: the row's
    # place among the file's rows (from 0) where `quick.known_same` sent it, else NULL.
    f"CREATE TABLE {SCHEMA}.w_same (uid INTEGER PRIMARY KEY, row INTEGER NOT NULL, cols TEXT,"
    " has_mgr INTEGER NOT NULL, mkey TEXT NOT NULL, n INTEGER)",
    f"CREATE TABLE {SCHEMA}.w_seen (key TEXT PRIMARY KEY) WITHOUT ROWID",  # engage: addresses in the file
    f"CREATE TABLE {SCHEMA}.w_leave (uid INTEGER PRIMARY KEY)",  # engage: the users the file terminates
    # Who holds each address, and each employee id, once the file is applied
    # (`links.py`), and whether they are active then.
    f"CREATE TABLE {SCHEMA}.w_final (key TEXT PRIMARY KEY, uid INTEGER NOT NULL, active INTEGER NOT NULL)"
    " WITHOUT ROWID",
    f"CREATE TABLE {SCHEMA}.w_ids (eid TEXT PRIMARY KEY, uid INTEGER NOT NULL, active INTEGER NOT NULL)"
    " WITHOUT ROWID",
    # The users someone has as manager once the file is applied (the loop check reads their links).
    f"CREATE TABLE {SCHEMA}.w_heads (uid INTEGER PRIMARY KEY)",
    # Each department a change names, spelled as at its first (least `ord`), and that row.
    f"CREATE TABLE {SCHEMA}.w_named (dept TEXT PRIMARY KEY, row INTEGER, ord INTEGER NOT NULL) WITHOUT ROWID",
    # The changes in the order the file makes them, numbered from 1 (their history ids follow it).
    f"CREATE TABLE {SCHEMA}.w_seq (n INTEGER PRIMARY KEY, uid INTEGER NOT NULL)",
    # Identity by employee id: each stored id with its letter case folded as
    # Python folds it (`index_ids`), which no index of the store holds.
    f"CREATE TABLE {SCHEMA}.w_leid (leid TEXT NOT NULL, uid INTEGER NOT NULL, eid TEXT NOT NULL)",
)
# The indexes the rules look users up by, each made only for a file whose
# rules read it (`index_ids`, `index_pending`): an index costs a sort of its
# table (about 0.1 s for 300,000 users) whether read or not. A rule that
# reads a table once (the users of a renamed manager, `links.py`) scans it.
_EXACT_IDS = f"CREATE INDEX IF NOT EXISTS {SCHEMA}.w_dir_eid ON w_dir (eid)"  # ids another user holds
_ANY_CASE_IDS = (  # identity by id
    "INSERT INTO w_leid SELECT bw_lower(eid), uid, eid FROM w_dir WHERE eid != ''",
    f"CREATE INDEX {SCHEMA}.w_leid_leid ON w_leid (leid)",
)
# `new` too, and unique with it: two new users of one address cannot both be in
# it (each other user's third value is their own uid), so the index made over
# a million users is also the check that refuses them (`apply._one_user_each`).
_PEND_KEY = (
    f"CREATE UNIQUE INDEX {SCHEMA}.w_pend_key ON w_pend (key, new, (CASE WHEN new THEN 0 ELSE uid END))"
)
_PEND_ORD = f"CREATE INDEX {SCHEMA}.w_pend_ord ON w_pend (ord)"
BATCH = 2_000  # users that go between Python and the work tables per round trip
# The columns a user's row into `w_pend` gives (the others are the rules'), in the order they are bound.
PEND_COLUMNS = (
    "uid", "ord", "row", "new", "active", "fields", "key", "eid", "mkey", "dept", "ddate", "cols",
    "has_mgr", "mgr_eid", "blank", "action",
)  # fmt: skip


def pend_insert(
    values: dict[str, str], bound: tuple[str, ...] = (), null_as_0: tuple[str, ...] = (), rows: int = 1
) -> str:
    """The insert of `rows` `w_pend` rows, each of `PEND_COLUMNS` given by its SQL in
    `values` (?N there: the row's Nth bound value), or bound: the columns `bound`, in
    that order (?1, ?2 ..., each row's after the row's before), those of `null_as_0`
    bound as 0 where NULL and made NULL by the statement (sqlite3 binds None through
    its adapter lookup, slower than an int: docs/benchmarks.md; a text is never 0)."""
    if set(values) | set(bound) != set(PEND_COLUMNS):
        raise ValueError(f"a w_pend row gives {sorted(PEND_COLUMNS)}, not {sorted({*values, *bound})}")

    def row(first: int) -> str:
        at = {c: f"nullif(?{i}, 0)" if c in null_as_0 else f"?{i}" for i, c in enumerate(bound, first)}
        own = {c: re.sub(r"\?(\d+)", lambda m: f"?{first - 1 + int(m[1])}", v) for c, v in values.items()}
        return ", ".join(at.get(c) or own[c] for c in PEND_COLUMNS)

    given = ", ".join(f"({row(1 + j * len(bound))})" for j in range(rows))
    return f"INSERT INTO w_pend ({', '.join(PEND_COLUMNS)}) VALUES {given}"


# The columns of `w_dir` and `w_pend` that repeat a field, and how each is
# read from the fields' JSON ({0}): the one place, for every table and rule.
DERIVED = {
    "email": ("key", "bw_key(coalesce(json_extract({0}, '$.email'), ''))"),
    "employee_id": ("eid", "coalesce(json_extract({0}, '$.employee_id'), '')"),
    "manager_email": ("mkey", "bw_key(coalesce(json_extract({0}, '$.manager_email'), ''))"),
    "department_name": ("dept", "coalesce(json_extract({0}, '$.department_name'), '')"),
    "deactivation_date": ("ddate", "coalesce(json_extract({0}, '$.deactivation_date'), '')"),
}


def derived(name: str, fields: str) -> str:
    """The SQL of the value of field `name` as its column holds it, read from `fields`."""
    return DERIVED[name][1].format(fields)


def derived_values(fields: Mapping[str, str]) -> tuple[str, str, str, str]:
    """eid, mkey, dept and ddate of a user's fields, as DERIVED reads them
    in SQL (the store keeps them too: `dir_users`)."""
    manager = fields.get("manager_email")
    mkey = email_key(manager) if manager else ""
    return (fields.get("employee_id", ""), mkey, fields.get("department_name", ""),
            fields.get("deactivation_date", ""))  # fmt: skip


def stored(name: str) -> str:
    """The SQL of a `dir_users` row's eid, mkey, dept ("employee_id",
    "manager_email", "department_name") or ddate ("deactivation_date"):
    its own, or read from its fields if an older sandbox wrote it (store
    format 1 has no such columns)."""
    return f"coalesce({DERIVED[name][0]}, {derived(name, 'fields_json')})"


# Swept: a date (an ISO date, never '': that is below '0') reached on ?2.
SWEPT = f"{stored('deactivation_date')} BETWEEN '0' AND ?2"
_FROM_STORE = (
    "INSERT INTO w_dir (uid, key, eid, mkey, dept, ddate, active, fields)"
    f" SELECT uid, email_key, {stored('employee_id')}, {stored('manager_email')},"
    f" {stored('department_name')}, {stored('deactivation_date')},"
    f" CASE WHEN active AND {SWEPT} THEN 0 ELSE active END, fields_json"
    " FROM dir_users WHERE tenant = ?1 ORDER BY uid"
)
_FROM_STATE = (
    "INSERT INTO w_dir (uid, key, eid, mkey, dept, ddate, active, fields)"
    f" SELECT ?1, ?2, {derived('employee_id', '?4')}, {derived('manager_email', '?4')},"
    f" {derived('department_name', '?4')}, {derived('deactivation_date', '?4')}, ?3, ?4"
)
# The directory read in place: the tenant's users as the store holds them,
# on the store's own indexes (address and uid, `dir_users_address`; employee
# id, `dir_users_eid`). A TEMP view, for it reads the store's table; its
# tenant is written in as a literal (a view takes no parameters). SQLite,
# without statistics, takes the users of one tenant (an equality on an
# index's first column) for a handful, so it would walk them all and look
# each up in a work table: a join of a work table with `w_dir` names the
# work table first in a CROSS JOIN, which SQLite keeps as the outer loop,
# and a lookup sorted by uid sorts after its search (`ORDER BY +uid`).
# `rid`: the store row's rowid, which the address index holds, so that a
# user found by address is read with one search less than by uid (the
# table's key is (tenant, uid), an index of its own: `quick.py`); valid
# within one statement only (a VACUUM may renumber rowids).
_VIEW = (
    "CREATE TEMP VIEW w_dir (uid, key, eid, mkey, dept, ddate, active, fields, rid) AS"
    f" SELECT uid, email_key, eid, {stored('manager_email')}, {stored('department_name')},"
    f" {stored('deactivation_date')}, active, fields_json, rowid"
    " FROM main.dir_users WHERE tenant = {tenant}"
)
# Users written before store format 2, whose looked-up values are only in
# their JSON: the store's id index cannot find them, so such a tenant's
# directory is copied (the view reads the other values as `stored` does,
# the column if there, else the JSON).
_OLDER = "SELECT 1 FROM dir_users WHERE tenant = ? AND eid IS NULL LIMIT 1"


def _lower(value: str) -> str:
    return value.lower()


def _python_json(text: str) -> str:
    return json.dumps(json.loads(text))


def prepare(conn: sqlite3.Connection) -> None:
    """Empty work tables on `conn` (any left by an interrupted apply are dropped),
    and the functions their SQL calls: Python's own letter case, so a key
    made in SQL equals one made in Python for every alphabet, and JSON
    spelled as Python writes it (a user's fields as the store keeps them)."""
    conn.create_function("bw_key", 1, email_key, deterministic=True)
    conn.create_function("bw_lower", 1, _lower, deterministic=True)
    conn.create_function("bw_json", 1, _python_json, deterministic=True)
    drop(conn)
    conn.execute("DROP VIEW IF EXISTS temp.w_dir")  # another file's directory, never read by this one
    conn.execute(f"ATTACH DATABASE '' AS {SCHEMA}")
    conn.execute(f"PRAGMA {SCHEMA}.page_size = {PAGE_SIZE}")  # as the store's, before its first table
    for statement in _TABLES:
        conn.execute(statement)


def drop(conn: sqlite3.Connection) -> None:
    """The work tables gone, at once: their database is detached, which
    discards its file whole (dropping a 300,000-user table one page at a
    time took 0.35 s). Not within a transaction, which SQLite refuses: one
    left open by a failure elsewhere must not hide that failure, and the
    next `prepare` detaches it."""
    if conn.in_transaction:
        return
    conn.execute("DROP VIEW IF EXISTS temp.w_dir")
    if any(row[1] == SCHEMA for row in conn.execute("PRAGMA database_list")):
        conn.execute(f"DETACH DATABASE {SCHEMA}")


def index(conn: sqlite3.Connection) -> None:
    """Once the directory is copied in (bulk first, then the index: faster):
    every file's rows find their users by address."""
    conn.execute(f"CREATE INDEX {SCHEMA}.w_dir_key ON w_dir (key)")


def viewed(conn: sqlite3.Connection) -> bool:
    """Whether the directory is read in place (`_VIEW`), not copied."""
    return conn.execute("SELECT 1 FROM sqlite_temp_master WHERE name = 'w_dir'").fetchone() is not None


def index_ids(conn: sqlite3.Connection, *, exact: bool, any_case: bool) -> None:
    """For a file with employee ids (`exact`: a copied directory indexed by
    them; the store's are already), and one whose users are found by them
    (`any_case`: the stored ids in any letter case too, `w_leid`, filled only then)."""
    if (exact or any_case) and not viewed(conn):
        conn.execute(_EXACT_IDS)
    if any_case:
        for statement in _ANY_CASE_IDS:
            conn.execute(statement)


def file_order(all_new: bool) -> str:
    """The column `w_pend` is in the file's order by: `ord`, or where `all_new` (a
    first load, `apply._Applier.empty`: every user the file's, given their uid as
    their row reaches them) the uid, the table's own order: no index, no sort."""
    return "uid" if all_new else "ord"


def index_pending(conn: sqlite3.Connection, *, ids: bool, all_new: bool) -> None:
    """Once every row is in `w_pend`, before the rules look across it (by
    employee id too for a file with ids; by `ord` unless `all_new`:
    `file_order`); sqlite3.IntegrityError: two new users of one address."""
    conn.execute(_PEND_KEY)
    if not all_new:
        conn.execute(_PEND_ORD)
    if ids:
        conn.execute(f"CREATE INDEX {SCHEMA}.w_pend_eid ON w_pend (eid)")


def in_both(conn: sqlite3.Connection, what: str) -> str:
    """SQL of `what` over the users in both `w_same` and `w_pend`: the smaller
    table walked, each of its users searched in the other by uid (a re-send's
    `w_pend` is nearly empty, a 10 % change's a tenth of `w_same`, a first
    load's `w_same` empty; counting either table reads none of its rows)."""
    counted = "SELECT (SELECT count(*) FROM w_same), (SELECT count(*) FROM w_pend)"
    same, pend = conn.execute(counted).fetchone()
    walked, searched = ("w_pend", "w_same") if pend <= same else ("w_same", "w_pend")
    return f"SELECT {what} FROM {walked} CROSS JOIN {searched} USING (uid)"


def tuples(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
    """`sql`'s rows as plain tuples, whatever the connection's row factory
    (the store's makes `sqlite3.Row`s: 300,000 rows of two ints took 1.5×
    as long to fetch and 4× as long to turn into an array, docs/benchmarks.md)."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor.execute(sql, params)


def older(conn: sqlite3.Connection, tenant: str) -> bool:
    """Whether the tenant has users written before store format 2 (by the store's id index):
    their eid, mkey, dept and ddate are all NULL, as every write since sets all four."""
    return conn.execute(_OLDER, (tenant,)).fetchone() is not None


def from_store(
    conn: sqlite3.Connection, tenant: str, *, swept_on: str | None = None, copy: bool = False
) -> None:
    """The tenant's directory from the store: read in place (a view, no
    copy: docs/benchmarks.md "The re-send floor"); with `swept_on`, as it
    is once the clock's deactivations due that day are applied (what the
    worker does before each file), without writing them: then copied, as
    is a directory with users written before store format 2, and any with
    `copy` (the reference the view is measured and tested against)."""
    if not copy and swept_on is None and not older(conn, tenant):
        conn.execute(_VIEW.format(tenant="'" + tenant.replace("'", "''") + "'"))
    else:
        conn.execute(_DIR_TABLE)
        conn.execute(_FROM_STORE, (tenant, swept_on))
        index(conn)
    conn.execute(
        "INSERT INTO w_dept SELECT key, name, parent, active FROM dir_departments WHERE tenant = ?", (tenant,)
    )
    conn.execute(
        "INSERT INTO w_manual SELECT uid, field, value, at, source FROM dir_manual WHERE tenant = ?",
        (tenant,),
    )


def from_state(conn: sqlite3.Connection, state: State) -> None:
    """A directory given as records."""
    conn.execute(_DIR_TABLE)
    conn.executemany(
        _FROM_STATE,
        (
            (uid, user.key, int(user.active), json.dumps(dict(user.fields)))
            for uid, user in sorted(state.users.items())
        ),
    )
    conn.executemany(
        "INSERT INTO w_dept VALUES (?, ?, ?, ?)",
        ((key, d.name, d.parent, int(d.active)) for key, d in state.departments.items()),
    )
    conn.executemany(
        "INSERT INTO w_manual VALUES (?, ?, ?, ?, ?)",
        ((m.uid, m.field, m.value, m.at, m.source) for m in state.manual.values()),
    )
    index(conn)


def load(conn: sqlite3.Connection, tenant: str, *, swept_on: str | None = None, copy: bool = False) -> None:
    """Empty work tables with the tenant's directory in them (`from_store`).
    Read in place, the directory is read by the apply's own transaction
    (`working`): the apply then holds a snapshot of the store, and the WAL
    is not checkpointed past it until the apply ends (other files' writes
    go on meanwhile; the write's version check catches a directory changed
    by them, `process.process`)."""
    prepare(conn)
    with working(conn):
        from_store(conn, tenant, swept_on=swept_on, copy=copy)


@contextmanager
def working(conn: sqlite3.Connection) -> Iterator[None]:
    """The work of one file in one transaction: SQLite then writes the work
    tables' pages out once, not at the end of each statement (a re-send of
    300,000 rows merged in 5 s instead of 8, docs/benchmarks.md). Nothing
    in the store is written."""
    conn.execute("BEGIN")
    try:
        yield
        conn.execute("COMMIT")  # may fail too (the temporary file's disk full): never left open
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def private() -> Iterator[sqlite3.Connection]:
    """A connection of its own, for a directory given as records (none until `from_state`)."""
    conn = sqlite3.connect("", isolation_level=None)  # "": a private file, not memory
    try:
        prepare(conn)
        conn.execute(_DIR_TABLE)
        yield conn
    finally:
        conn.close()


# A change as `Changes.others` reads it: its number (from 1), uid, action, row,
# fields (JSON), status, the stored fields and status (None: a new user), address
# key, the stored one, employee id, the stored one (the stored values as `w_dir` reads them).
StoredChange = tuple[
    int, int, str, int | None, str, int, str | None, int | None, str, str | None, str, str | None
]


class Changes:
    """The changes of an outcome, read from the workspace in the order the
    file made them, a batch at a time (a million changes are never a
    million objects at once). Valid while the workspace is; a change's
    `before` is read from the directory, which the write changes (read it
    before: `directory.write` does)."""

    def __init__(self, conn: sqlite3.Connection, *, all_new: bool = False) -> None:
        """`all_new`: every user in `w_pend` is one the file creates (`file_order`),
        so each is counted as created: a first load's million changes are
        neither sorted nor grouped to be counted, and, where none of its rows
        was refused, not numbered in a table either (`numbered`)."""
        self._conn = conn
        if conn.execute("SELECT 1 FROM w_seq LIMIT 1").fetchone() is not None:
            raise ValueError("this workspace's changes are numbered already")
        # The changes in order are `_key`'s values `_off` + 1 ... `_off` + `_len`: the uids of a
        # first load's users where they run without a gap (as they do unless a row was refused;
        # every one a creation: counted in an index), else the rows of `w_seq`, numbered as they
        # are inserted in order (SQLite gives each row the rowid after the last, from 1).
        counted = "SELECT min(uid), max(uid), count(*) FROM w_pend"
        lo, hi, n = conn.execute(counted).fetchone() if all_new else (0, 0, 0)
        if n and hi - lo + 1 == n:
            self._from, self._key, self._off, self._len = "w_pend AS p", "p.uid", int(lo) - 1, int(n)
        else:
            self._from, self._key, self._off = "w_seq AS q JOIN w_pend AS p ON p.uid = q.uid", "q.n", 0
            conn.execute(
                "INSERT INTO w_seq (uid) SELECT uid FROM w_pend WHERE action != 'unchanged'"
                f" ORDER BY {file_order(all_new)}"
            )
            self._len = int(conn.execute("SELECT coalesce(max(n), 0) FROM w_seq").fetchone()[0])
        # What the file does to the users in `w_pend` (unchanged too), counted, first met first.
        self.actions: dict[str, int]
        if all_new:
            self.actions = {str(Action.CREATED): self._len} if self._len else {}
        else:
            self.actions = {
                str(action): int(n)
                for action, n in conn.execute(
                    "SELECT action, count(*) FROM w_pend WHERE action IS NOT NULL GROUP BY action"
                    " ORDER BY min(ord)"
                )
            }

    def numbered(self, where: str, join: str = "") -> tuple[str, str]:
        """The changes in order, as SQL: each one's number (from 1), and `FROM`
        ... `ORDER BY` over those `where` holds of (`p`: their `w_pend` rows,
        `join`ed to more; `?`: the number the walk starts after)."""
        key, off = self._key, self._off
        return f"{key} - {off}", f"FROM {self._from}{join} WHERE {key} > ? + {off} AND {where} ORDER BY {key}"

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[UserChange]:
        return (change for _, change in self._numbered("1", ()))

    def others(self) -> Iterator[list[StoredChange]]:
        """Every change but the creations, a batch at a time, as the write stores
        them (`StoredChange`: their fields as the workspace holds them, no
        object made of them)."""
        if self.actions.get(str(Action.CREATED), 0) == self._len:
            return iter(())  # a first load's million creations are not walked to find none
        return self._batches("p.action != 'created'", ())

    def _batches(self, where: str, params: tuple[str, ...]) -> Iterator[list[StoredChange]]:
        n, rest = self.numbered(where, " LEFT JOIN w_dir AS s ON s.uid = p.uid")
        sql = (
            f"SELECT {n}, p.uid, p.action, p.row, p.fields, p.active, s.fields, s.active, p.key, s.key,"
            f" p.eid, s.eid {rest} LIMIT ?"
        )
        last = 0
        while True:
            rows = tuples(self._conn, sql, (last, *params, BATCH)).fetchall()
            if rows:
                yield rows
            if len(rows) < BATCH:
                return
            last = int(rows[-1][0])

    def _numbered(self, where: str, params: tuple[str, ...]) -> Iterator[tuple[int, UserChange]]:
        for rows in self._batches(where, params):
            for n, uid, action, row, fields, active, before, was_active, *_ in rows:
                yield (
                    n - 1,
                    UserChange(
                        action=Action(action),
                        uid=uid,
                        row=row,
                        fields=json.loads(fields),
                        active=bool(active),
                        before=None
                        if before is None
                        else User(uid=uid, fields=json.loads(before), active=bool(was_active)),
                    ),
                )

    def of(self, *actions: Action) -> Iterator[UserChange]:
        """The changes of these kinds, in order."""
        if not any(self.actions.get(str(a)) for a in actions):
            return iter(())
        wanted = json.dumps(sorted(str(a) for a in actions))
        return (c for _, c in self._numbered("p.action IN (SELECT value FROM json_each(?))", (wanted,)))
