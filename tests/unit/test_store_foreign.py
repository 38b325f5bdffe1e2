"""A `sandbox.db` that is not a bwsandbox store (another program's SQLite
file) or is damaged (a table without one of its columns) is refused when
opened, in one line naming the file and what is wrong, by every command and
by serve; nothing in the file is changed."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bwsandbox import store
from bwsandbox.cli.main import main
from bwsandbox.errors import StoreError


def _make(db: Path, *statements: str) -> str:
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()
    return hashlib.sha256(db.read_bytes()).hexdigest()


def _damaged_tenants() -> str:
    """The tenants table with the columns store.SCHEMA gives it, but `region`."""
    scratch = sqlite3.connect(":memory:")
    scratch.execute(store.SCHEMA[0])
    columns = [r[1] for r in scratch.execute("PRAGMA table_info(tenants)") if r[1] != "region"]
    scratch.close()
    return f"CREATE TABLE tenants ({', '.join(columns)})"


def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    before = _make(db, "CREATE TABLE meta (key TEXT, value TEXT)", "CREATE TABLE urls (id INTEGER, url TEXT)")
    with pytest.raises(StoreError) as refused:
        store.connect(db)
    assert str(refused.value) == (
        f"{db} is not a bwsandbox store, or is damaged: it has no table tenants (its tables: meta, urls); "
        "use another --data-dir (nothing in this one was changed)")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sandbox.db"]  # not even a WAL file


def test_a_table_missing_a_column_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "sandbox.db"
    before = _make(db, _damaged_tenants())
    with pytest.raises(StoreError, match="table tenants lacks column region; use another --data-dir"):
        store.connect(db)
    assert main(["tenant", "list", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{db} is not a bwsandbox store, or is damaged: table tenants lacks column region" in err
    assert err.count("\n") == 1 and "internal error" not in err and "OperationalError" not in err
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_serve_refuses_a_damaged_store_in_one_line(tmp_path: Path) -> None:
    before = _make(tmp_path / "sandbox.db", _damaged_tenants())
    done = subprocess.run(
        [sys.executable, "-m", "bwsandbox.cli", "serve", "--data-dir", str(tmp_path), "--port", "0",
         "--eu-port", "0"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "table tenants lacks column region; use another --data-dir" in done.stderr
    assert hashlib.sha256((tmp_path / "sandbox.db").read_bytes()).hexdigest() == before


def test_an_older_store_still_opens(tmp_path: Path) -> None:
    """Tables added since (a store made before them) and ADDED_COLUMNS are
    brought up to date, not refused."""
    db = tmp_path / "sandbox.db"
    _make(db, store.SCHEMA[0], "CREATE TABLE dir_users (tenant TEXT NOT NULL, uid INTEGER NOT NULL,"
          " email_key TEXT NOT NULL, active INTEGER NOT NULL, fields_json TEXT NOT NULL)")
    store.connect(db).close()
    store.connect(db).close()
