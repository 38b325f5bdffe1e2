"""The history of changes when creations are kept on the users' rows
(ingest/directory.py "creations"): it reads exactly as one row per change
would, in the order of the changes, by address and by file, before and after
a created user first changes; stores made before the columns existed open and
keep their history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ingest_env import Env

from bwsandbox import control, store
from bwsandbox.ingest import directory

HEADER = "email,first_name,last_name,title\r\n"


def _raw_creations(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT subject FROM dir_history WHERE action = 'created' ORDER BY id")
    return [r[0] for r in rows]


def test_history_reads_as_one_row_per_change_before_and_after_a_user_changes(tmp_path: Path) -> None:
    env = Env(tmp_path)
    t = env.tenant("acme")
    rows = "ada@acme.com,Ada,L,CEO\r\nBob@acme.com,Bob,M,\r\ncy@acme.com,Cy,N,Dev\r\n"
    first = env.put(t, "users.csv", HEADER + rows)
    assert env.worker.process_pending() == [first]
    before = list(directory.history(env.conn, "acme"))
    assert [(h["action"], h["subject"], h["row"], h["file_id"], h["status"]) for h in before] == [
        ("created", "ada@acme.com", 2, first, "active"),
        ("created", "bob@acme.com", 3, first, "active"),
        ("created", "cy@acme.com", 4, first, "active"),
    ]
    assert before[1]["changes"] == {
        "email": ["", "Bob@acme.com"], "first_name": ["", "Bob"], "last_name": ["", "M"],
    }
    assert {h["source"] for h in before} == {f"file #{first} users.csv"}
    assert _raw_creations(env.conn) == []  # kept on the users' rows, not one history row each

    second = env.put(t, "users.csv", HEADER + "dan@acme.com,Dan,O,\r\nbob@acme.com,Bob,M,CFO\r\n")
    assert env.worker.process_pending() == [second]
    after = list(directory.history(env.conn, "acme"))
    assert after[:3] == before  # bob's creation reads the same now that it is a row of its own
    assert _raw_creations(env.conn) == ["bob@acme.com"]
    assert [(h["action"], h["subject"], h["row"], h["file_id"]) for h in after[3:]] == [
        ("created", "dan@acme.com", 2, second),  # the file's order
        ("updated", "bob@acme.com", 3, second),
    ]
    assert after[4]["changes"] == {"email": ["Bob@acme.com", "bob@acme.com"], "title": ["", "CFO"]}
    bob = directory.history(env.conn, "acme", "BOB@acme.com")
    assert [h["action"] for h in bob] == ["created", "updated"]
    assert [h["subject"] for h in directory.history(env.conn, "acme", file_id=first)] == [
        "ada@acme.com", "bob@acme.com", "cy@acme.com",
    ]
    assert control.history_of_file(env.conn, "acme", second) == after[3:]

    # A later write gets ids after every one kept before, whatever its kind.
    third = env.put(t, "users.csv", HEADER + "ada@acme.com,Ada,L,Chair\r\n")
    assert env.worker.process_pending() == [third]
    assert [h["file_id"] for h in directory.history(env.conn, "acme")] == [first] * 3 + [second] * 2 + [third]


def test_a_tenant_purged_forgets_its_batches(tmp_path: Path) -> None:
    env = Env(tmp_path)
    t = env.tenant("acme")
    env.put(t, "users.csv", HEADER + "ada@acme.com,Ada,L,CEO\r\n")
    env.worker.process_pending()
    control.purge_tenant_data(env.conn, env.settings, t)
    assert env.conn.execute("SELECT COUNT(*) FROM dir_batches").fetchone()[0] == 0
    assert list(directory.history(env.conn, "acme")) == []


OLD_USERS = """CREATE TABLE dir_users (
    tenant TEXT NOT NULL, uid INTEGER NOT NULL, email_key TEXT NOT NULL, active INTEGER NOT NULL,
    fields_json TEXT NOT NULL, PRIMARY KEY (tenant, uid))"""


def test_a_store_made_before_the_creation_columns_opens_and_keeps_its_history(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old = sqlite3.connect(db)
    old.execute(OLD_USERS)
    ada = '{"email": "ada@acme.com"}'
    old.execute("INSERT INTO dir_users VALUES ('acme', 1, 'ada@acme.com', 1, ?)", (ada,))
    old.commit()
    old.close()
    conn = store.connect(db)  # the rest of the schema is created, the columns added
    conn.execute(
        "INSERT INTO dir_history (tenant, at, subject_kind, subject, action, before_json, after_json, status,"
        " source_kind, source, file_id, row) VALUES ('acme', 'T', 'user', 'ada@acme.com', 'created', NULL,"
        " '{\"email\": \"ada@acme.com\"}', 'active', 'file', 'file #1 u.csv', 1, 2)"
    )
    columns = {r[1] for r in conn.execute("PRAGMA table_info(dir_users)")}
    assert {"created_batch", "created_hid", "created_row"} <= columns
    [h] = directory.history(conn, "acme")
    assert (h["action"], h["subject"], h["file_id"]) == ("created", "ada@acme.com", 1)
    conn.close()
    store.connect(db).close()  # and opens again, nothing left to add
