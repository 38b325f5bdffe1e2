"""The workspace a file is applied in (`ingest/workspace.py`): the keys it
reads are Python's, nothing is left behind, and rows the validator would
have refused are refused, never merged."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from apply_helpers import policy, rows, seeded, user
from ingest_env import T0

from bwsandbox import store, tenants
from bwsandbox.clock import Clock
from bwsandbox.ingest import apply, directory, reports, workspace
from bwsandbox.ingest.plan import validate
from bwsandbox.ingest.process import plan, process
from bwsandbox.ingest.records import Action, Source, State
from bwsandbox.validator import Context


def _upload(tmp_path: Path, data: bytes) -> sqlite3.Connection:
    """A store with tenant acme (5,000 licences), `data` uploaded to it (the worker's own `process`)."""
    conn = store.connect(tmp_path / "sandbox.db")
    with store.transaction(conn):
        tenant = tenants.add(conn, name="acme", username="acme", password="pw", created_at=T0.isoformat(),
                             licenses=5000)
    process(
        conn,
        data_dir=tmp_path,
        tenant=tenant,
        name="users_20260315.csv",
        data=data,
        clock=Clock(fixed=T0),
        source=Source.FILE,
        label="f",
        termination_limit=0.2,
    )
    return conn


def test_a_stored_directory_is_read_with_its_keys_and_the_clock_sweep(tmp_path: Path) -> None:
    conn = _upload(
        tmp_path,
        b"email,first_name,last_name,manager_email,deactivation_date\r\n"
        b"Ada@X.com,Ada,L,,\r\nbo@x.com,Bo,L,ADA@x.com,12/31/2030\r\n",
    )
    workspace.prepare(conn)
    workspace.from_store(conn, "acme")
    assert [tuple(r) for r in conn.execute("SELECT uid, key, mkey, active FROM w_dir ORDER BY uid")] == [
        (1, "ada@x.com", "", 1),
        (2, "bo@x.com", "ada@x.com", 1),
    ]
    workspace.prepare(conn)  # as `validate --tenant` on the day the date is reached
    workspace.from_store(conn, "acme", swept_on="2030-12-31")
    assert conn.execute("SELECT active FROM w_dir WHERE uid = 2").fetchone()[0] == 0
    workspace.drop(conn)


_AS_THE_FIELDS_SAY = ", ".join(
    workspace.derived(n, "fields_json")
    for n in ("employee_id", "manager_email", "department_name", "deactivation_date")
)


def test_the_store_keeps_the_values_users_are_looked_up_by_as_their_fields_say(tmp_path: Path) -> None:
    """eid, mkey, dept and the deactivation date of every stored user,
    written by a creation and by an update (both copied from the workspace),
    also where a rule changed the fields after the merge, are what
    `workspace.DERIVED` reads from their fields: copying the directory and
    the clock's sweep read them."""
    conn = _upload(tmp_path, b"email,first_name,last_name,employee_id,manager_email,department_name,"
                             b"deactivation_date\r\nada@x.com,Ada,L,E1,,Eng,\r\n"
                             b"bo@x.com,Bo,L,E2,ADA@x.com,Ops,12/31/2030\r\n")  # fmt: skip
    bo = conn.execute(f"SELECT eid, mkey, dept, ddate, {_AS_THE_FIELDS_SAY} FROM dir_users WHERE uid = 2")
    assert tuple(bo.fetchone()) == ("E2", "ada@x.com", "Ops", "2030-12-31") * 2
    t = tenants.get(conn, "acme")
    assert t is not None
    process(conn, data_dir=tmp_path, tenant=t, name="users_20260316.csv", data=(
        b"email,first_name,last_name,employee_id,manager_email,department_name,deactivation_date\r\n"
        b"bo@x.com,Bo,L,E2,,Sales,12/31/2031\r\nada@x.com,Ada,L,E1,Bo@x.com,Eng,\r\n"
    ), clock=Clock(fixed=T0), source=Source.FILE, label="g", termination_limit=0.2)  # fmt: skip
    read = f"SELECT email_key, eid, mkey, dept, ddate, {_AS_THE_FIELDS_SAY} FROM dir_users ORDER BY uid"
    assert [tuple(r) for r in conn.execute(read)] == [
        ("ada@x.com", "E1", "bo@x.com", "Eng", "", "E1", "bo@x.com", "Eng", ""),
        ("bo@x.com", "E2", "", "Sales", "2031-12-31", "E2", "", "Sales", "2031-12-31"),
    ]
    # A manager nobody is: the rules give Ada her stored one back (a change of
    # the fields in SQL), and the department the row sets stays set.
    process(conn, data_dir=tmp_path, tenant=t, name="users_20260317.csv", data=(
        b"email,first_name,last_name,employee_id,manager_email,department_name\r\n"
        b"ada@x.com,Ada,L,E1,ghost@x.com,Legal\r\n"
    ), clock=Clock(fixed=T0), source=Source.FILE, label="h", termination_limit=0.2)  # fmt: skip
    assert [tuple(r) for r in conn.execute(read)][0] == (
        "ada@x.com", "E1", "bo@x.com", "Legal", "", "E1", "bo@x.com", "Legal", ""
    )
    # Her fields spelled as Python writes JSON, as a re-sent row's text is (`quick.py`).
    text = conn.execute("SELECT fields_json FROM dir_users WHERE email_key = 'ada@x.com'").fetchone()[0]
    assert text == json.dumps(json.loads(text))
    last = list(directory.history(conn, "acme", "ada@x.com"))[-1]
    assert (last["action"], last["changes"]) == ("updated", {"department_name": ["Eng", "Legal"]})


@pytest.mark.parametrize("older", [False, True])
def test_every_change_is_written_whole_whichever_update_writes_it(tmp_path: Path, older: bool) -> None:
    """A change that keeps the user's address, status and id is written by
    an update that sets none of them, any other by the whole update
    (`directory._UPDATE_IN_PLACE`, `_UPDATE_MOVED`): after a file that
    changes a title, a status, an address (identity by employee id) and then
    an id, each stored row says what its fields say. `older`: every user
    stored before store format 2 (their looked-up values NULL), whose
    directory is copied, not read in place."""
    conn = _upload(tmp_path, b"email,first_name,last_name,employee_id,manager_id,title,deactivation_date\r\n"
                             b"ada@x.com,Ada,L,E1,,Eng,\r\nbo@x.com,Bo,L,E2,E1,Eng,\r\n"
                             b"cy@x.com,Cy,L,E3,E1,Eng,\r\ndi@x.com,Di,L,E4,E1,Eng,\r\n"
                             b"ed@x.com,Ed,L,E5,E1,Eng,\r\n")  # fmt: skip
    if older:
        conn.execute("UPDATE dir_users SET eid = NULL, mkey = NULL, dept = NULL, ddate = NULL")
    t = tenants.get(conn, "acme")
    assert t is not None
    process(conn, data_dir=tmp_path, tenant=t, name="users_20260316.csv", data=(
        b"email,first_name,last_name,employee_id,manager_id,title,deactivation_date\r\n"
        b"ada@x.com,Ada,L,E1,,CTO,\r\n"  # a title
        b"bo@x.com,Bo,L,E2,E1,Eng,01/01/2020\r\n"  # a status
        b"cy.new@x.com,Cy,L,E3,E1,Eng,\r\n"  # an address, found by the id
        b"di@x.com,Di,L,E4,E1,Ops,\r\n"  # a title, beside them
    ), clock=Clock(fixed=T0), source=Source.FILE, label="g", termination_limit=0.2)  # fmt: skip
    process(conn, data_dir=tmp_path, tenant=t, name="users_20260317.csv", data=(  # identity by address
        b"email,first_name,last_name,employee_id\r\ned@x.com,Ed,L,E9\r\n"  # an id
    ), clock=Clock(fixed=T0), source=Source.FILE, label="h", termination_limit=0.2)  # fmt: skip
    read = (f"SELECT email_key, active, json_extract(fields_json, '$.title'), eid, mkey, dept, ddate,"
            f" {workspace.derived('email', 'fields_json')}, {_AS_THE_FIELDS_SAY} FROM dir_users ORDER BY uid")
    got = [tuple(r) for r in conn.execute(read)]
    assert [r[:3] for r in got] == [
        ("ada@x.com", 1, "CTO"), ("bo@x.com", 0, "Eng"), ("cy.new@x.com", 1, "Eng"), ("di@x.com", 1, "Ops"),
        ("ed@x.com", 1, "Eng"),
    ]
    assert got[4][3] == "E9"
    assert all(r[0] == r[7] and r[3:7] == r[8:] for r in got), got


def test_a_user_stored_before_store_format_2_is_read_from_their_fields(tmp_path: Path) -> None:
    """A row an older sandbox wrote has no eid, mkey, dept or date of its own:
    copying and the clock's sweep read them from the JSON."""
    conn = _upload(tmp_path, b"email,first_name,last_name,employee_id,manager_email,department_name,"
                             b"deactivation_date\r\nada@x.com,Ada,L,,,,\r\n"
                             b"bo@x.com,Bo,L,E2,Ada@x.com,Ops,12/31/2030\r\n")  # fmt: skip
    conn.execute("UPDATE dir_users SET eid = NULL, mkey = NULL, dept = NULL, ddate = NULL")
    workspace.prepare(conn)
    workspace.from_store(conn, "acme", swept_on="2030-12-31")
    read = "SELECT key, eid, mkey, dept, active FROM w_dir ORDER BY uid"
    assert [tuple(r) for r in conn.execute(read)] == [
        ("ada@x.com", "", "", "", 1), ("bo@x.com", "E2", "ada@x.com", "Ops", 0)
    ]
    workspace.drop(conn)
    with store.transaction(conn):
        assert directory.sweep(conn, "acme", "2030-12-31", "2030-12-31T00:00:00+00:00") == 1


def test_the_clock_sweep_reads_only_users_with_a_date_and_writes_in_uid_order(tmp_path: Path) -> None:
    """The sweep finds its users by the store's index of those with a
    deactivation date (`dir_users_due`), and one written before store format
    2 by their fields; it deactivates those whose date is reached, in the
    order of their uids (their history's), not of their dates."""
    conn = _upload(tmp_path, b"email,first_name,last_name,deactivation_date\r\n"
                             b"ada@x.com,Ada,L,12/31/2030\r\nbo@x.com,Bo,L,\r\n"
                             b"cy@x.com,Cy,L,06/30/2030\r\ndi@x.com,Di,L,01/31/2031\r\n"
                             b"ed@x.com,Ed,L,03/31/2030\r\n")  # fmt: skip
    conn.execute("UPDATE dir_users SET eid = NULL, mkey = NULL, dept = NULL, ddate = NULL WHERE uid = 5")
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN " + directory._DUE.format("ddate > ''"), ("acme", "2030-12-31")))  # fmt: skip
    assert "USING INDEX dir_users_due" in plan, plan
    with store.transaction(conn):
        assert directory.sweep(conn, "acme", "2030-12-31", "2030-12-31T00:00:00+00:00") == 3
    assert [tuple(r) for r in conn.execute("SELECT email_key, active FROM dir_users ORDER BY uid")] == [
        ("ada@x.com", 0), ("bo@x.com", 1), ("cy@x.com", 0), ("di@x.com", 1), ("ed@x.com", 0)
    ]
    swept = [e["subject"] for e in directory.history(conn, "acme") if e["source_kind"] == "clock"]
    assert swept == ["ada@x.com", "cy@x.com", "ed@x.com"]


def test_an_upload_leaves_no_work_table_behind(tmp_path: Path) -> None:
    conn = _upload(tmp_path, b"email,first_name,last_name\r\nada@x.com,Ada,L\r\n")
    assert conn.execute("SELECT count(*) FROM dir_users").fetchone()[0] == 1
    assert _work_tables(conn) == []


def test_a_failed_apply_rolls_its_work_back(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    workspace.prepare(conn)
    with pytest.raises(RuntimeError), workspace.working(conn):
        workspace.from_state(conn, seeded(user("a@x.com")))
        raise RuntimeError("cut off")
    assert not conn.in_transaction
    # The directory's table is made by the work it holds: rolled back with it.
    tables = f"SELECT name FROM {workspace.SCHEMA}.sqlite_master WHERE type = 'table'"
    assert "w_dir" not in {r[0] for r in conn.execute(tables)}
    assert conn.execute("SELECT count(*) FROM w_dept").fetchone() == (0,)


def test_a_failed_commit_is_rolled_back_and_the_work_tables_still_go(tmp_path: Path) -> None:
    """A COMMIT that fails (here a deferred constraint) leaves no transaction
    open, and the work tables' database is detached after it, as after any
    file: SQLite refuses to detach one within a transaction."""
    conn = store.connect(tmp_path / "s.db")
    conn.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE c (pid INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)")
    workspace.prepare(conn)
    with pytest.raises(sqlite3.IntegrityError), store.transaction(conn):
        conn.execute("INSERT INTO c VALUES (1)")  # no parent: refused at COMMIT
    assert not conn.in_transaction
    workspace.drop(conn)
    assert _work_tables(conn) == []
    workspace.prepare(conn)
    conn.execute("BEGIN")
    workspace.drop(conn)  # within a transaction: no error (it would hide the one that left it open)
    conn.execute("ROLLBACK")
    assert _work_tables(conn) != []
    workspace.prepare(conn)  # the next file's: the old tables go, empty ones come
    assert conn.execute("SELECT count(*) FROM w_pend").fetchone()[0] == 0
    workspace.drop(conn)
    assert _work_tables(conn) == []


def test_two_rows_for_one_user_are_refused_not_merged() -> None:
    """The validator refuses a repeated address or id; should such rows reach
    the apply anyway, it says so instead of merging them silently."""
    state = seeded(user("a@x.com"))
    for records in (
        rows(user("a@x.com", title="A"), user("A@x.com", title="B")),
        rows(user("new@x.com"), user("NEW@x.com")),
    ):
        with pytest.raises(ValueError, match="validator refuses"):
            apply.apply_users(state, records, policy(records))
    assert apply.apply_users(State(), rows(user("b@x.com")), policy(rows(user("b@x.com")))).counts == {
        "created": 1
    }


def _work_tables(conn: sqlite3.Connection) -> list[str]:
    """Any table of the work's own database, or a temporary one, still there."""
    names = [str(r[1]) for r in conn.execute("PRAGMA database_list") if r[1] != "main"]
    return [f"{schema}.{r[0]}" for schema in names
            for r in conn.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'")]


def test_a_plan_keeps_the_changes_it_lists_and_counts_the_rest(tmp_path: Path) -> None:
    """A plan outlives its workspace with the changes a report lists, not
    every change: a million-row plan is not a million objects."""
    conn = _upload(tmp_path, b"email,first_name,last_name\r\nada@x.com,Ada,L\r\n")
    n = reports.CHANGES_SHOWN + 200
    body = "email,first_name,last_name\r\n" + "".join(f"u{i}@x.com,U,L\r\n" for i in range(n))
    tenant = tenants.get(conn, "acme")
    assert tenant is not None
    done = plan(conn, data_dir=tmp_path, tenant=tenant, name="users_20260316.csv", data=body.encode(),
                clock=Clock(fixed=T0), termination_limit=0.2)
    assert done.report["applied"]["created"] == n  # type: ignore[index]
    assert len(done.report["changes"]) == reports.CHANGES_SHOWN  # type: ignore[arg-type]
    assert done.report["changes_not_shown"] == 200
    assert len(done.outcome.users) == n and len(list(done.outcome.users)) == reports.CHANGES_SHOWN
    judged = validate(body.encode(), Context(), name="users.csv")  # the same, with no tenant
    assert judged.plan["applied"]["created"] == n  # type: ignore[index]
    assert len(judged.outcome.users) == n and len(list(judged.outcome.users)) == reports.CHANGES_SHOWN
    assert _work_tables(conn) == [] and conn.execute("SELECT count(*) FROM dir_users").fetchone()[0] == 1


@pytest.mark.parametrize("empty", [True, False], ids=["first-load", "stored-directory"])
def test_a_first_loads_changes_are_numbered_by_uid_with_no_index_of_the_file_order(empty: bool) -> None:
    """Into an empty directory every user is the file's, given a uid as its row
    reaches them: uid order is the file's order, so the changes are numbered by
    uid, `w_pend` gets no index of `ord` (0.28 s of a 1,000,000-user first
    load, docs/benchmarks.md) and each is counted as a creation without
    grouping them. A directory with users makes the index and numbers them by
    `ord`: its stored user (uid 1) changes after a user the file creates."""
    state = State() if empty else seeded(user("z@x.com"))
    f = rows(user("c@x.com"), user("z@x.com", title="T"), user("a@x.com"))
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, state)
        outcome = apply.run(conn, f, policy(f))
        indexes = f"SELECT name FROM {workspace.SCHEMA}.sqlite_master WHERE type = 'index'"
        made = {r[0] for r in conn.execute(indexes)}
        assert ("w_pend_ord" in made) is not empty
        assert [c.fields["email"] for c in outcome.users] == ["c@x.com", "z@x.com", "a@x.com"]
        assert outcome.counts == ({"created": 3} if empty else {"created": 2, "updated": 1})


@pytest.mark.parametrize("refused", [None, 1, 2])
def test_a_first_loads_changes_are_numbered_by_their_uids_unless_a_refused_row_leaves_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused: int | None
) -> None:
    """A first load's users are given uids in file order, so where no row was
    refused, or only rows after the last change, the uids of its changes run
    without a gap and number them (`Changes.numbered`), with no `w_seq` row
    written; a refused row's uid between two changes is a gap, and `w_seq`
    numbers them. Either way the changes are read in file order a batch at a
    time (one change a batch here), and each creation is stored under the
    history id kept for it, in file order, the departments' after them."""
    monkeypatch.setattr(workspace, "BATCH", 1)
    people = [("ada", "Eng"), ("bo", "Eng"), ("cy", "Ops")]
    lines = [f"{p}@x.com,{'' if i == refused else p.title()},L,{d}" for i, (p, d) in enumerate(people)]
    f = rows(*({"email": e, "first_name": fn, "last_name": ln, "department_name": d}
               for e, fn, ln, d in (line.split(",") for line in lines)))  # fmt: skip
    made = [f"{p}@x.com" for i, (p, _) in enumerate(people) if i != refused]
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, State())
        outcome = apply.run(conn, f, policy(f))
        assert conn.execute("SELECT count(*) FROM w_seq").fetchone()[0] == (2 if refused == 1 else 0)
        assert [c.fields["email"] for c in outcome.users] == made
        assert [c.row for c in outcome.users.of(Action.CREATED)] == [i + 2 for i in range(3) if i != refused]
    conn = _upload(tmp_path, ("email,first_name,last_name,department_name\r\n" + "\r\n".join(lines)).encode())
    assert [tuple(r) for r in conn.execute("SELECT email_key, created_hid FROM dir_users ORDER BY uid")] == [
        (e, n) for n, e in enumerate(made, 1)
    ]
    departments = len({d for i, (_, d) in enumerate(people) if i != refused})  # a refused row names none
    assert [r[0] for r in conn.execute("SELECT id FROM dir_history ORDER BY id")] == [
        len(made) + n for n in range(1, departments + 1)
    ]


@pytest.mark.parametrize("uids", [(1, 2, 3), (2, 3, 4), (1, 2, 4)])
def test_uids_number_a_first_loads_changes_only_where_they_run_without_a_gap(uids: tuple[int, ...]) -> None:
    """A first load's users (every one a creation) are numbered by their uids
    where these run without a gap, from any first uid, and by `w_seq`
    otherwise: either way from 1, in uid order, a walk starting after any number."""
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, State())
        conn.executemany(
            "INSERT INTO w_pend (uid, ord, new, active, fields, key, eid, mkey, dept, ddate, has_mgr, action)"
            " VALUES (?, ?, 1, 1, '{}', ?, '', '', '', '', 0, 'created')",
            [(uid, uid, f"u{uid}@x.com") for uid in uids],
        )
        changes = workspace.Changes(conn, all_new=True)
        gapless = uids[-1] - uids[0] == len(uids) - 1
        assert conn.execute("SELECT count(*) FROM w_seq").fetchone()[0] == (0 if gapless else 3)
        assert (len(changes), [c.uid for c in changes]) == (3, list(uids))
        n, numbered = changes.numbered("1")
        assert [tuple(r) for r in conn.execute(f"SELECT {n}, p.uid {numbered}", (1,))] == [
            (2, uids[1]), (3, uids[2])
        ]


def test_a_statement_of_many_pending_rows_numbers_each_rows_values_after_the_rows_before() -> None:
    """`pend_insert(rows=n)`: each row's bound values follow the row's before
    it, and a value's own ?N (here `ord`, the row's `row`) is its row's."""
    sql = workspace.pend_insert(
        {"ord": "?2", "new": "1", "active": "1", "fields": "'{}'", "eid": "''", "mkey": "''", "dept": "''",
         "ddate": "''", "cols": "NULL", "has_mgr": "0", "mgr_eid": "?4", "action": "'created'"},
        ("uid", "row", "key", "blank"), ("blank",), rows=3,
    )  # fmt: skip
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, State())
        conn.execute(sql, [7, 12, "a@x.com", 0, 8, 13, "b@x.com", "B", 9, 15, "c@x.com", 0])
        got = [tuple(r) for r in conn.execute("SELECT uid, ord, row, key, mgr_eid, blank FROM w_pend")]
    assert got == [(7, 12, 12, "a@x.com", "0", None), (8, 13, 13, "b@x.com", "B", "B"),
                   (9, 15, 15, "c@x.com", "0", None)]  # fmt: skip


@pytest.mark.parametrize(("same", "pend"), [(5, 1), (1, 5)])
def test_the_users_in_both_work_tables_are_found_by_walking_the_smaller(same: int, pend: int) -> None:
    """A re-send's `w_same` holds nearly every user and its `w_pend` almost none
    (a first load the other way round): the users in both are found by walking
    the smaller table and searching the other by uid, not by walking `w_same`."""
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, State())
        conn.executemany("INSERT INTO w_same (uid, row, has_mgr, mkey) VALUES (?, ?, 0, '')",
                         [(uid, uid) for uid in range(1, same + 1)])  # fmt: skip
        conn.executemany(
            "INSERT INTO w_pend (uid, ord, new, active, fields, key, eid, mkey, dept, ddate, has_mgr)"
            " VALUES (?, ?, 0, 1, '{}', ?, '', '', '', '', 0)",
            [(uid, uid, f"u{uid}@x.com") for uid in range(1, pend + 1)],
        )
        sql = workspace.in_both(conn, "count(*)")
        assert conn.execute(sql).fetchone()[0] == 1
        plan = " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        walked = "w_pend" if pend < same else "w_same"
        assert plan.startswith(f"SCAN {walked}"), plan
