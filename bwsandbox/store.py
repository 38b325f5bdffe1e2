"""The SQLite store in the data directory: one database, one schema list.

Each part of the sandbox registers its tables in SCHEMA (a tuple of
idempotent statements). Connections use WAL so the server, the ingest worker
and the CLI can read while one writes. Every multi-statement change goes
through `transaction()` so a crash leaves either all of it or none of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bwsandbox.errors import StoreError

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
    # Every upload seen (issue #3 `bwsandbox files`); it is also the durable
    # queue (issue #4): state moves incomplete|queued -> processing -> done|failed.
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
    """CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
)


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create) the store; apply the schema; never a traceback."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        for statement in SCHEMA:
            conn.execute(statement)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def get_meta(conn: sqlite3.Connection, key: str, default: str = "") -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return str(row["value"]) if row else default


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
