"""The history of changes when creations are kept on the users' rows
(ingest/directory.py "creations"): it reads exactly as one row per change
would, in the order of the changes, by address and by file, before and after
a created user first changes; stores made before the columns existed open and
keep their history."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from apply_helpers import policy, rows, stored_state, user
from ingest_env import Env

from bwsandbox import control, store
from bwsandbox.errors import StoreError
from bwsandbox.ingest import apply, directory, workspace
from bwsandbox.ingest.apply import due_deactivations
from bwsandbox.ingest.records import Action, Outcome, Source
from bwsandbox.spec.fields import Profile

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
    old.execute(store.SCHEMA[0])  # the tenants table, which every store had (the rest comes later)
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
    assert {"created_batch", "created_hid", "created_row", "eid", "mkey", "dept"} <= columns
    [h] = directory.history(conn, "acme")
    assert (h["action"], h["subject"], h["file_id"]) == ("created", "ada@acme.com", 1)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.FORMAT  # brought up to date
    conn.close()
    store.connect(db).close()  # and opens again, nothing left to add


# -- the history against a plain model of it -------------------------------------------------------
# The model is the layout before creations were kept on the users' rows: one
# entry per change, written in the order of the write's changes, departments
# after the users. Whatever the store does, `history()` must read as that.


def _model_entries(outcome: Outcome, origin: directory.Provenance) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    common = {
        "at": origin.at, "source_kind": str(origin.kind), "source": origin.label, "file_id": origin.file_id,
    }
    for c in outcome.users:
        if c.action is Action.UNCHANGED:
            continue
        changes = {name: [old, new] for name, old, new in c.diff if name != "status"}
        entries.append({
            **common, "kind": "user", "subject": c.after.key, "action": str(c.action), "changes": changes,
            "status": "active" if c.after.active else "deactivated", "row": c.row,
        })  # fmt: skip
    for d in outcome.departments:
        before = {} if d.before is None else {"name": d.before.name, "parent": d.before.parent,
                                                "active": d.before.active}
        after = {"name": d.after.name, "parent": d.after.parent, "active": d.after.active}
        changes = {k: [before.get(k, ""), v] for k, v in after.items()}
        entries.append({
            **common, "kind": "department", "subject": d.after.name, "action": str(d.action),
            "changes": changes, "status": "active" if d.after.active else "deactivated", "row": d.row,
        })  # fmt: skip
    return entries


def _ordered(entry: dict[str, object]) -> dict[str, object]:
    keys = ("at", "kind", "subject", "action", "changes", "status", "source_kind", "source", "file_id", "row")
    return {k: entry[k] for k in keys}


@pytest.mark.parametrize("chunk", [1, 2, 50_000])
def test_history_reads_as_a_plain_list_of_every_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(directory, "CHUNK", chunk)  # the clock's changes a chunk at a time
    monkeypatch.setattr(workspace, "BATCH", chunk)  # a file's, read a batch at a time
    conn = store.connect(tmp_path / "s.db")
    model: list[dict[str, object]] = []
    writes = 0

    def write(records: list[dict[str, str]], *, kind: Source = Source.FILE, profile: Profile = Profile.CORE,
              today: str = "2026-03-15") -> None:
        nonlocal writes
        writes += 1
        arows = rows(*records)
        pol = replace(policy(arows, source=kind, profile=profile, termination_limit=1.0), today=today,
                      source_label=f"{kind} #{writes}")
        workspace.prepare(conn)
        workspace.from_store(conn, "acme")
        outcome = apply.run(conn, arows, pol)
        origin = directory.Provenance(kind=kind, label=f"{kind} #{writes}", at=f"T{writes:02}",
                                      file_id=writes if kind is Source.FILE else None)
        # Read before the write, as the worker reads them: a change's `before` is the directory as it was.
        entries = _model_entries(outcome, origin)
        with store.transaction(conn):
            directory.write(conn, "acme", outcome, origin)
        model.extend(entries)
        workspace.drop(conn)

    def sweep(today: str) -> None:
        nonlocal writes
        writes += 1
        outcome = due_deactivations(stored_state(conn, "acme"), today)  # what the sweep will do
        with store.transaction(conn):
            assert directory.sweep(conn, "acme", today, f"T{writes:02}") == len(outcome.users) > 0
        origin = directory.Provenance(kind=Source.CLOCK, label="clock: deactivation date reached",
                                      at=f"T{writes:02}")
        model.extend(_model_entries(outcome, origin))

    ids = {"employee_id": "", "manager_id": ""}
    write([user("a@x.com", department_name="Ops"), user("b@x.com", title="T"), user("c@x.com"),
           user("d@x.com", deactivation_date="2026-04-01")])
    write([user("e@x.com"), user("b@x.com", title="U"), user("f@x.com", department_name="Sales")])
    write([user("a@x.com", title="Admin's")], kind=Source.ADMIN)
    sweep("2026-04-02")  # d's date is reached: a clock change, d created three writes before
    write([{**user("c@x.com"), **ids, "employee_id": "7"}])  # c gets an id
    write([{**user("c2@x.com"), **ids, "employee_id": "7"}])  # identity by id: c's address changes
    write([user("g@x.com"), user("b@x.com", title="U")], profile=Profile.ENGAGE)  # the rest terminated
    write([user("e@x.com", first="E", deactivation_date="")])  # reactivated after its termination

    assert [_ordered(h) for h in directory.history(conn, "acme")] == [_ordered(h) for h in model]
    for address in ("a@x.com", "c@x.com", "c2@x.com", "d@x.com", "e@x.com"):
        assert list(directory.history(conn, "acme", address)) == [h for h in model if h["subject"] == address]
    for file_id in range(1, writes + 1):
        assert list(directory.history(conn, "acme", file_id=file_id)) == [
            h for h in model if h["file_id"] == file_id
        ]
    assert len({h["action"] for h in model}) >= 5  # created, updated, deactivated, terminated, reactivated


WRITES_USERS = re.compile(r"\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|REPLACE\s+INTO)\s+\"?dir_users\b", re.I)
PACKAGE = Path(directory.__file__).resolve().parents[1]


def test_only_directory_write_writes_users() -> None:
    """A user's kept creation is their stored fields: a statement writing
    `dir_users` anywhere but `directory.write` would change it unseen."""
    assert WRITES_USERS.search('INSERT INTO dir_users (tenant) VALUES (?)')
    assert WRITES_USERS.search('update "dir_users" SET active = 0')
    assert not WRITES_USERS.search("SELECT fields_json FROM dir_users")
    owner = PACKAGE / "ingest" / "directory.py"
    hits = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py")) if path != owner
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WRITES_USERS.search(line)
    ]
    assert hits == []
    assert WRITES_USERS.search(owner.read_text(encoding="utf-8"))


def test_a_store_of_a_newer_format_is_refused_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store.connect(data / "sandbox.db").close()
    check = sqlite3.connect(data / "sandbox.db")
    assert check.execute("PRAGMA user_version").fetchone()[0] == store.FORMAT  # recorded when made
    check.execute(f"PRAGMA user_version = {store.FORMAT + 1}")  # as a newer sandbox would leave it
    check.close()
    with pytest.raises(StoreError, match="written by a newer bwsandbox"):
        store.connect(data / "sandbox.db")
    done = subprocess.run(
        [sys.executable, "-m", "bwsandbox.cli", "files", "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "written by a newer bwsandbox" in done.stderr and done.stderr.count("\n") == 1
    with sqlite3.connect(data / "sandbox.db") as again:  # and nothing was changed in it
        assert again.execute("PRAGMA user_version").fetchone()[0] == store.FORMAT + 1
