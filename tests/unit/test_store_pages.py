"""The store's page size (`store.PAGE_SIZE`): a new store and a file's work
tables are made with it; a store made before, with SQLite's default pages,
keeps its own and goes on taking files (SQLite fixes a file's page size once
it has a table)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ingest_env import Env

from bwsandbox import store
from bwsandbox.ingest import workspace

ROWS = "email,first_name,last_name,title\n" + "".join(f"u{i}@acme.com,A{i},B{i},T\n" for i in range(300))


def _page_size(conn: sqlite3.Connection, schema: str = "main") -> int:
    return int(conn.execute(f"PRAGMA {schema}.page_size").fetchone()[0])


def _users(env: Env) -> int:
    return int(env.conn.execute("SELECT count(*) FROM dir_users WHERE tenant = 'acme'").fetchone()[0])


def test_a_new_store_and_a_files_work_tables_have_the_stores_page_size(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "sandbox.db")
    try:
        assert _page_size(conn) == store.PAGE_SIZE != 4096
        workspace.prepare(conn)
        assert _page_size(conn, workspace.SCHEMA) == store.PAGE_SIZE
        workspace.drop(conn)
    finally:
        conn.close()


def test_a_store_made_with_sqlites_default_pages_keeps_them_and_takes_files(tmp_path: Path) -> None:
    db = tmp_path / "data" / "sandbox.db"
    db.parent.mkdir(parents=True)
    old = sqlite3.connect(db)
    old.execute("PRAGMA page_size = 4096")
    old.execute(store.SCHEMA[0])  # an earlier version's store: its tables made, its pages SQLite's
    old.close()
    env = Env(tmp_path)
    assert _page_size(env.conn) == 4096
    t = env.tenant("acme")
    env.worker.process_pending()
    first = env.put(t, "users.csv", ROWS)
    changed = env.put(t, "users-2.csv", ROWS.replace(",T\n", ",T2\n"))
    assert env.worker.process_pending() == [first, changed]
    assert [env.report(f)["applied"]["created"] for f in (first, changed)] == [300, 0]
    assert env.report(changed)["applied"]["updated"] == 300
    assert _users(env) == 300
    assert _page_size(env.conn) == 4096
    assert env.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
