"""The SQLite store in the data directory: one database, one schema list.

Each part of the sandbox registers its tables in SCHEMA (a tuple of
idempotent statements). Connections use WAL so the server, the ingest worker
and the CLI can read while one writes. Every multi-statement change goes
through `transaction()` so a crash leaves either all of it or none of it.
"""

from __future__ import annotations

import errno
import functools
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bwsandbox.errors import StoreError

log = logging.getLogger("bwsandbox.store")

# SQLite's INTEGER is a signed 64-bit number: a Python int outside this range
# cannot even be bound to a statement (OverflowError), so no stored id, count
# or seed lies outside it. Callers check with `fits` before they ask.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def fits(value: int) -> bool:
    """Whether `value` can be an INTEGER in the store."""
    return INT_MIN <= value <= INT_MAX


SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS tenants (
        name TEXT PRIMARY KEY,
        region TEXT NOT NULL CHECK (region IN ('us', 'eu')),
        profile TEXT NOT NULL CHECK (profile IN ('core', 'engage')),
        username TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        authorized_keys TEXT NOT NULL DEFAULT '',
        contact TEXT NOT NULL DEFAULT '',
        licenses INTEGER NOT NULL DEFAULT 1000,
        locale TEXT NOT NULL DEFAULT 'en-US',
        custom_keys TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        UNIQUE (region, username)
    )""",
    # Every upload seen (`bwsandbox files`); it is also the durable queue.
    # bwsandbox/ingest/files.py owns it: the states (FileState) and every
    # statement over it. The CHECK spells FileState's values out because the
    # store is below every layer (it imports none of them);
    # tests/unit/test_files_owner.py fails when the two differ.
    """CREATE TABLE IF NOT EXISTS files (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
        name TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        received_at TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('incomplete', 'waiting', 'queued', 'processing', 'done', 'failed')),
        verdict TEXT,
        stored_path TEXT,
        due_at TEXT,
        detail TEXT NOT NULL DEFAULT '',
        report_json TEXT,
        counts_json TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS files_queue ON files (state, id)",
    # A new upload is compared with earlier ones of the same name or content
    # (ingest/queue.py `_repeat_note`): two index lookups, not a table scan per file.
    "CREATE INDEX IF NOT EXISTS files_name ON files (name)",
    "CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256)",
    """CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    # --- the simulated vendor app (bwsandbox/ingest) ----------------------------
    # The user directory: users, departments, history, outstanding manual edits.
    """CREATE TABLE IF NOT EXISTS dir_users (
        tenant TEXT NOT NULL,
        uid INTEGER NOT NULL,
        email_key TEXT NOT NULL,
        active INTEGER NOT NULL,
        fields_json TEXT NOT NULL,
        -- The user's creation, while nothing has changed them since
        -- (ingest/directory.py "creations"): the batch, the history id kept
        -- for it, the file's row. NULL once it is a dir_history row.
        created_batch INTEGER,
        created_hid INTEGER,
        created_row INTEGER,
        -- The values the apply looks the user up by and the clock sweeps
        -- by, as ingest/workspace.py DERIVED reads them from fields_json,
        -- kept so that neither reads the JSON of every user; NULL in rows
        -- written before format 2.
        eid TEXT,
        mkey TEXT,
        dept TEXT,
        ddate TEXT,
        PRIMARY KEY (tenant, uid)
    )""",
    # A tenant's users by address, the last holder found in one search (max
    # uid) with their status (a manager's, read once per row of a re-sent
    # roster), and by employee id: the lookups of a file's apply, which reads
    # the directory in place (ingest/workspace.py). Before, (tenant, email_key) only.
    "CREATE INDEX IF NOT EXISTS dir_users_address ON dir_users (tenant, email_key, uid, active)",
    "DROP INDEX IF EXISTS dir_users_email",
    """CREATE TABLE IF NOT EXISTS dir_departments (
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        parent TEXT NOT NULL DEFAULT '',
        active INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (tenant, key)
    )""",
    # One row per change of one user or department: `before_json` holds the
    # replaced values of the changed fields (NULL when created), `after_json`
    # the new ones (all fields when created), `status` the status after it.
    """CREATE TABLE IF NOT EXISTS dir_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        at TEXT NOT NULL,
        subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'department')),
        subject TEXT NOT NULL,
        action TEXT NOT NULL,
        before_json TEXT,
        after_json TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT '',
        source_kind TEXT NOT NULL CHECK (source_kind IN ('file', 'admin', 'clock')),
        source TEXT NOT NULL,
        file_id INTEGER,
        row INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS dir_history_tenant ON dir_history (tenant, subject)",
    "CREATE INDEX IF NOT EXISTS dir_history_file ON dir_history (file_id)",
    # One row per write that created users: where they came from, said once
    # for all of them (their dir_users rows point here until they change).
    """CREATE TABLE IF NOT EXISTS dir_batches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        at TEXT NOT NULL,
        source_kind TEXT NOT NULL,
        source TEXT NOT NULL,
        file_id INTEGER
    )""",
    # Fields last set by the Admin module and not yet overwritten by a file.
    """CREATE TABLE IF NOT EXISTS dir_manual (
        tenant TEXT NOT NULL,
        uid INTEGER NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        at TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (tenant, uid, field)
    )""",
    # Technical Contact emails (docs/production.md §5): recorded in the transaction that
    # applies the file, delivered after it (state pending -> sent|outboxed|error).
    """CREATE TABLE IF NOT EXISTS emails (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        file_id INTEGER,
        created_at TEXT NOT NULL,
        to_addr TEXT NOT NULL,
        subject TEXT NOT NULL,
        attachments_json TEXT NOT NULL DEFAULT '[]',
        message BLOB NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        detail TEXT NOT NULL DEFAULT ''
    )""",
    # Per-file outputs kept with the file: the error CSV, and whether the
    # /reports copies were published (redone after a crash).
    """CREATE TABLE IF NOT EXISTS file_outputs (
        file_id INTEGER PRIMARY KEY,
        errors_csv BLOB,
        published INTEGER NOT NULL DEFAULT 0
    )""",
    # Per file, how often its processing was cut off by a crash, and how often
    # it was put back in the queue after a full disk (ingest/attempts.py).
    """CREATE TABLE IF NOT EXISTS file_attempts (
        file_id INTEGER PRIMARY KEY,
        crashes INTEGER NOT NULL DEFAULT 0,
        retries INTEGER NOT NULL DEFAULT 0
    )""",
    # Faults on demand (bwsandbox/faults.py): a tenant's, or an endpoint's (tenant NULL).
    """CREATE TABLE IF NOT EXISTS faults (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        region TEXT NOT NULL CHECK (region IN ('us', 'eu')),
        tenant TEXT REFERENCES tenants(name) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        after_bytes INTEGER NOT NULL DEFAULT 0,
        times INTEGER,
        delay_ms INTEGER NOT NULL DEFAULT 0,
        kbps INTEGER NOT NULL DEFAULT 0,
        probability REAL NOT NULL DEFAULT 1.0,
        seed INTEGER NOT NULL DEFAULT 0,
        draws INTEGER NOT NULL DEFAULT 0,
        fired INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS faults_region ON faults (region, id)",
)


# The store's format, kept in SQLite's `user_version`: 1 since users keep
# their creation, 2 since they keep the values the apply looks them up by
# and their deactivation date (ADDED_COLUMNS; an older sandbox writing users would leave those stale). A
# store of a higher format, written by a newer sandbox, is refused instead
# of being misread (stores made before formats were counted read as 0 and
# are brought up to date).
FORMAT = 2
# Columns added to a table after stores were made without them: added in
# place when such a store is opened (SQLite's ALTER TABLE ... ADD COLUMN).
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("dir_users", "created_batch", "INTEGER"),
    ("dir_users", "created_hid", "INTEGER"),
    ("dir_users", "created_row", "INTEGER"),
    ("dir_users", "eid", "TEXT"),
    ("dir_users", "mkey", "TEXT"),
    ("dir_users", "dept", "TEXT"),
    ("dir_users", "ddate", "TEXT"),
)


def _missing_columns(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return [
        (table, column, decl) for table, column, decl in ADDED_COLUMNS
        if column not in {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
    ]


# Indexes of added columns: made once the columns are (`connect`). The
# second holds only the users with a deactivation date, whom the clock's
# sweep before each file reads (ingest/directory.py `sweep`) instead of
# every user of the tenant.
_ADDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS dir_users_eid ON dir_users (tenant, eid)",
    "CREATE INDEX IF NOT EXISTS dir_users_due ON dir_users (tenant, ddate) WHERE ddate > ''",
)


def _add_columns(conn: sqlite3.Connection) -> None:
    if not _missing_columns(conn):
        return
    with transaction(conn):  # looked at again under the write lock: another process may be first
        for table, column, decl in _missing_columns(conn):
            conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {decl}')


def _tables(conn: sqlite3.Connection) -> dict[str, frozenset[str]]:
    """Each table of the database (SQLite's own left out) and its columns."""
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")]
    return {name: frozenset(r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')) for name in names}


@functools.cache
def _schema_tables() -> dict[str, frozenset[str]]:
    """The tables SCHEMA makes and their columns, read from a scratch database
    so the list is never written twice."""
    scratch = sqlite3.connect(":memory:")
    try:
        for statement in SCHEMA:
            scratch.execute(statement)
        return _tables(scratch)
    finally:
        scratch.close()


def _schema_problem(found: dict[str, frozenset[str]]) -> str | None:
    """Why a database of these tables is not a bwsandbox store (of this format
    or an older one), or None. Asked before anything is written to it: CREATE
    TABLE IF NOT EXISTS would skip a table of the same name that lacks our
    columns (the first query then fails with "no such column"), and would add
    our tables to another program's database."""
    if not found:
        return None  # a new store
    if "tenants" not in found:  # the first table every store had (SCHEMA's first)
        return f"it has no table tenants (its tables: {', '.join(sorted(found)[:8])})"
    added = {(table, column) for table, column, _ in ADDED_COLUMNS}  # brought up to date in place
    for table, columns in _schema_tables().items():
        missing = sorted(c for c in columns - found.get(table, columns) if (table, c) not in added)
        if missing:
            return f"table {table} lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    return None


# The page size of a new store (SQLite's default is 4,096 bytes). A big file's
# users are written as a few long runs into the tables and their indexes: 16 KiB
# pages make it a quarter as many B-tree pages to find, split and log (a
# million-user first load copied into the store 2.3 -> 1.8 s, a 10 % change's
# updates in place 1.1 -> 0.7 s, a re-send no slower: docs/benchmarks.md).
PAGE_SIZE = 16_384


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create) the store; apply the schema; never a traceback."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = _tables(conn)
        if found > FORMAT and ("tenants" in tables or not tables):
            conn.close()
            raise StoreError(
                f"the store at {path} was written by a newer bwsandbox (store format {found}; this "
                f"version reads up to {FORMAT}): run that version, or give this one another --data-dir"
            )
        if (problem := _schema_problem(tables)) is not None:
            conn.close()
            raise StoreError(f"{path} is not a bwsandbox store, or is damaged: {problem}; "
                             "use another --data-dir (nothing in this one was changed)")
        if not tables:  # fixed once the file has a table; a store made before keeps its own
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        for statement in SCHEMA:
            conn.execute(statement)
        _add_columns(conn)
        for statement in _ADDED_INDEXES:
            conn.execute(statement)
        if found < FORMAT:
            conn.execute(f"PRAGMA user_version = {FORMAT}")
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")  # may fail too (a deferred constraint): never left open
    except BaseException:
        # SQLite has already rolled back after some errors (SQLITE_FULL: a
        # full disk); a ROLLBACK then would raise "no transaction is active"
        # and hide the error that says what happened.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def checkpoint_held(conn: sqlite3.Connection) -> Iterator[None]:
    """Commits on `conn` within leave the WAL as it is, not checkpointed: SQLite's own
    rule has the commit that takes the WAL past its limit (1,000 pages, 16 MiB
    of `PAGE_SIZE`) copy it back into the database file before it returns,
    0.8 s of a 1,000,000-user first load's commit on 4 KiB pages
    (docs/benchmarks.md "Ingest at scale"). The caller runs `checkpoint`
    once the file's outcome is out."""
    limit = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA wal_autocheckpoint = {limit}")


def checkpoint(conn: sqlite3.Connection) -> None:
    """The WAL copied back into the database file as far as readers allow
    (PASSIVE: it waits for no reader or writer), as SQLite's own checkpoint
    after a commit does; a failure leaves the WAL as it is, which loses
    nothing (the next checkpoint copies it), so it is logged, not raised."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as exc:
        log.warning("the store's WAL was not checkpointed (%s); the next checkpoint will", exc)


_FULL = (errno.ENOSPC, errno.EDQUOT)


def retryable(exc: BaseException) -> str | None:
    """Why `exc` is worth retrying later ("the disk is full"...), else None.
    Looks through the chain of causes (a StoreError around a sqlite3 error).
    Here, below every layer, because the worker (ingest/attempts.py) and the
    pickup (server/pickup.py) both ask, and neither may import the other."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return "the disk is full"
        if isinstance(seen, sqlite3.OperationalError):
            code = getattr(seen, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None
            if primary == sqlite3.SQLITE_FULL or "disk is full" in str(seen):
                return "the disk is full (SQLite)"
            if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "database is locked" in str(seen):
                return "the store stayed locked"
        seen = seen.__cause__ or seen.__context__
    return None


def get_meta(conn: sqlite3.Connection, key: str, default: str = "") -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return str(row["value"]) if row else default


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
