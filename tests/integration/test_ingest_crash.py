"""Exactly once after `kill -9`: a worker process is killed at
chosen moments (mid-processing, inside the applying transaction, after its
commit but before the email went out), restarted, and every file is applied
once, its history written once, its email sent once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import SandboxFactory, tenant_of, wait_until

from bwsandbox import layout, store, tenants
from bwsandbox.clock import Clock
from bwsandbox.config import Settings, load
from bwsandbox.ingest import directory
from bwsandbox.ingest.queue import Inbox
from bwsandbox.ingest.worker import Worker

# The worker in a child process; faults are injected with a tiny subclass
# (GUIDE: "tests inject faults with tiny server subclasses").
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from bwsandbox.config import load
    from bwsandbox.ingest import reports
    from bwsandbox.ingest.worker import Worker

    mode = sys.argv[2]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class Faulty(Worker):
        armed = False

        def _process(self, file_id):
            self.armed = True
            if mode == "poison" and file_id == 1:  # the file itself kills the worker (an OOM kill, say)
                die()
            return super()._process(file_id)

        def _after_commit(self):
            if mode == "after-commit" and self.armed:
                die()
            super()._after_commit()

    if mode == "in-transaction":
        counts = reports.counts

        def counts_then_die(report):  # runs inside the applying transaction
            counts(report)
            die()

        reports.counts = counts_then_die

    worker = Faulty(load({"data_dir": sys.argv[1]}, env={}))
    worker.run()
    """
)


def _setup(tmp_path: Path, rows: int) -> tuple[Settings, int, int]:
    settings = load({"data_dir": tmp_path / "data"}, env={})
    conn = store.connect(settings.db_path)
    with store.transaction(conn):
        tenant = tenants.add(
            conn, name="crash", username="crash", password="pw", contact="it@example.com",
            licenses=10**7, created_at="2026-01-01T00:00:00+00:00",
        )
    inbox = Inbox(conn, settings.data_dir, Clock())
    body = "email,first_name,last_name,title\n" + "".join(f"u{i}@x.com,U,{i},T\n" for i in range(rows))
    body += ",No,Email,T\n"  # one error: the file must send exactly one email
    first = tmp_path / "big.csv"
    first.write_text(body)
    big = inbox.received(tenant, "big.csv", first)
    second = tmp_path / "small.csv"
    second.write_text("email,first_name,last_name\nlast@x.com,L,Ast\n")
    small = inbox.received(tenant, "small.csv", second)
    conn.close()
    return settings, big, small


def _state(settings: Settings, file_id: int) -> str:
    conn = store.connect(settings.db_path)
    try:
        return str(conn.execute("SELECT state FROM files WHERE id = ?", (file_id,)).fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["mid-processing", "in-transaction", "after-commit"])
def test_kill_9_then_restart_applies_every_file_exactly_once(tmp_path: Path, mode: str) -> None:
    rows = 60_000 if mode == "mid-processing" else 2_000
    settings, big, small = _setup(tmp_path, rows)
    log = (tmp_path / "child.log").open("wb")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(settings.data_dir), mode], stdout=log, stderr=log,
    )
    try:
        if mode == "mid-processing":
            wait_until(lambda: _state(settings, big) == "processing", timeout=60, interval=0.005)
            os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=120) == -signal.SIGKILL, (tmp_path / "child.log").read_text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        log.close()
    if mode == "after-commit":
        assert _state(settings, big) == "done"  # committed, email not yet delivered
    else:
        assert _state(settings, big) == "processing"  # nothing of it committed

    worker = Worker(settings)  # the restart
    worker.recover()
    worker.process_pending()
    worker.close()

    conn = store.connect(settings.db_path)
    try:
        assert [r[0] for r in conn.execute("SELECT state FROM files ORDER BY id")] == ["done", "done"]
        assert len(directory.users_listing(conn, "crash")) == rows + 1
        per_file = {f: len(list(directory.history(conn, "crash", file_id=f))) for f in (big, small)}
        assert per_file == {big: rows, small: 1}
        assert len(list(directory.history(conn, "crash"))) == rows + 1  # nothing else, nothing twice
        emails = conn.execute("SELECT file_id, state FROM emails").fetchall()
        assert [tuple(e) for e in emails] == [(big, "outboxed")]
        counts = json.loads(conn.execute("SELECT counts_json FROM files WHERE id = ?", (big,)).fetchone()[0])
        assert counts["created"] == rows and counts["errors"] == 1
    finally:
        conn.close()
    assert len(list((settings.data_dir / "outbox").glob("*.eml"))) == 1


def test_a_poison_file_is_failed_after_max_processing_attempts_and_the_queue_goes_on(tmp_path: Path) -> None:
    """A file that kills the worker every time it is processed (the audit's
    OOM kill, in a loop: recovery put it back, every restart died the same
    way): each restart counts a crash; at max_processing_attempts (3) it is
    failed with the reason, and the next file is processed."""
    settings, poison, small = _setup(tmp_path, 10)
    assert poison == 1
    for run in (1, 2, 3):  # each start recovers the last crash, then dies on the file again
        log = (tmp_path / f"child{run}.log").open("wb")
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(settings.data_dir), "poison"],
                                 stdout=log, stderr=log)
        assert child.wait(timeout=120) == -signal.SIGKILL, (tmp_path / f"child{run}.log").read_text()
        log.close()
        assert _state(settings, poison) == "processing"
    assert "processing was cut off by a crash (2 of 3); back in the queue" in (
        tmp_path / "child3.log").read_text()
    worker = Worker(settings)
    assert worker.recover() == 0
    worker.process_pending()
    worker.close()
    conn = store.connect(settings.db_path)
    try:
        rows = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, state, detail FROM files")}
    finally:
        conn.close()
    assert rows[poison][0] == "failed" and rows[poison][1].startswith("processing crashed 3 times")
    assert rows[small][0] == "done"


def test_kill_9_of_bwsandbox_serve_during_processing_then_restart(tmp_path: Path) -> None:
    """The whole product: `bwsandbox serve` in a subprocess, a real SFTP upload,
    kill -9 while the file is `processing`, `serve` again: applied once."""
    import paramiko

    data = tmp_path / "data"
    cli = [sys.executable, "-c", "from bwsandbox.cli.main import run; run()"]
    env = {**os.environ, "BWSANDBOX_HOME": str(data)}
    subprocess.run(
        [*cli, "tenant", "add", "acme", "--username", "acme", "--password", "pw",
         "--contact", "it@acme.com", "--licenses", "10000000"],
        check=True, env=env, capture_output=True,
    )
    rows = 60_000
    body = "email,first_name,last_name\n" + "".join(f"u{i}@x.com,U,{i}\n" for i in range(rows))
    settings = load({"data_dir": data}, env={})

    def serve(log_name: str) -> tuple[subprocess.Popen[bytes], int]:
        status = tmp_path / "status.json"
        status.unlink(missing_ok=True)
        log = (tmp_path / log_name).open("wb")
        proc = subprocess.Popen(
            [*cli, "serve", "--port", "0", "--eu-port", "0", "--http-port", "0",
             "--status-file", str(status)],
            env=env, stdout=log, stderr=log,
        )
        log.close()
        wait_until(status.exists, timeout=60)
        return proc, int(json.loads(status.read_text())["endpoints"]["us"]["port"])

    def state_of(conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT state FROM files WHERE name = 'users-1.csv'").fetchone()
        return None if row is None else str(row[0])

    proc, port = serve("serve1.log")
    try:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect("127.0.0.1", port, username="acme", password="pw", allow_agent=False,
                       look_for_keys=False)
        sftp = client.open_sftp()
        with sftp.open("incoming/users-1.csv", "wb") as remote:
            remote.write(body.encode())
        sftp.close()
        client.close()
        conn = store.connect(settings.db_path)
        try:
            wait_until(lambda: state_of(conn) == "processing", timeout=60, interval=0.005)
        finally:
            conn.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        conn = store.connect(settings.db_path)
        assert state_of(conn) == "processing"  # killed before its commit
        assert directory.users_listing(conn, "acme") == []
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    proc, _ = serve("serve2.log")
    try:
        conn = store.connect(settings.db_path)
        wait_until(lambda: state_of(conn) == "done", timeout=120)
        assert len(directory.users_listing(conn, "acme")) == rows
        [(file_id,)] = conn.execute("SELECT id FROM files WHERE name = 'users-1.csv'").fetchall()
        assert len(list(directory.history(conn, "acme", file_id=file_id))) == rows
        assert len(list(directory.history(conn, "acme"))) == rows  # and nothing else
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


# -- start-up never aborts on one entry (docs/security.md "No crash loop") ------------------

CSV = b"email,first_name,last_name\nann@x.com,Ann,Lee\n"


def test_names_of_any_length_survive_a_crash_and_never_stop_the_start(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A 244-byte name left in the drop folder, and a 250-byte one a killed
    server had spooled: the spool adds 33 bytes, past the file system's 255,
    which made `serve` refuse to start. Both are recorded under their real
    names and processed; their reports are published."""
    harness = sandbox_factory(ingest=True)
    account = harness.add_tenant(tmp_path / "home")
    tenant = harness.conn_tenant(tenant_of(account))
    data_dir, us = harness.settings.data_dir, harness.sandbox.port("us")
    harness.stop()
    dropped = "d" * 240 + ".csv"
    root = layout.ensure_tree(data_dir, tenant, reports_folder=True)
    (root / "incoming" / dropped).write_bytes(CSV)
    (root / "incoming" / dropped).chmod(layout.CLOSED_MODE)
    spooled = "s" * 246 + ".csv"
    stamp = "0" * 20 + "a" * 12
    spool = data_dir / "spool" / tenant.name
    (spool / "complete").mkdir(parents=True)
    (spool / "names").mkdir()
    (spool / "complete" / f"{stamp}-{layout.fit_name(spooled, 33)}").write_bytes(CSV.replace(b"ann", b"bob"))
    (spool / "names" / stamp).write_bytes(spooled.encode())
    harness = sandbox_factory(data_dir, port=us, ingest=True)
    rows = wait_until(lambda: [r for r in harness.files(tenant.name) if r["state"] == "done"] if len(
        [r for r in harness.files(tenant.name) if r["state"] == "done"]) == 2 else None, timeout=30)
    assert sorted(r["name"] for r in rows) == sorted([dropped, spooled])
    for row in rows:
        assert len(Path(row["stored_path"]).name.encode()) <= 255 - len(".report.json.tmp") - 1
    assert harness.sandbox.worker is not None
    harness.sandbox.worker.between_files()  # reports are published just after `done`
    published = sorted(p.name for p in layout.reports_dir(data_dir, tenant).iterdir())
    assert len(published) == 2 and all(len(n.encode()) <= 255 for n in published)
    assert list((spool / "complete").iterdir()) == [] and list((spool / "names").iterdir()) == []


def test_an_entry_that_cannot_be_recorded_is_quarantined_and_the_start_goes_on(
    sandbox_factory: SandboxFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two entries that fail for real: a drop-folder file that cannot be moved
    into the spool (the spool's folder is a file), and a spooled upload the
    store cannot take (the tenant's `received` folder is a file). Each is
    moved to DATA_DIR/quarantine/ with one log line; the server starts, and
    another tenant's file left in its drop folder is processed."""
    harness = sandbox_factory(ingest=True)
    bad = harness.conn_tenant(tenant_of(harness.add_tenant(tmp_path / "bad")))
    good = harness.conn_tenant(tenant_of(harness.add_tenant(tmp_path / "good")))
    data_dir, us = harness.settings.data_dir, harness.sandbox.port("us")
    harness.stop()
    for tenant in (bad, good):
        drop = layout.ensure_tree(data_dir, tenant, reports_folder=True) / "incoming"
        (drop / "users_20260301.csv").write_bytes(CSV)
        (drop / "users_20260301.csv").chmod(layout.CLOSED_MODE)
    spool = data_dir / "spool" / bad.name
    spool.mkdir(parents=True)
    (spool / "complete").write_bytes(b"")  # not a folder: the rename into it fails
    (spool / "incomplete").mkdir()
    (spool / "incomplete" / f"{'b' * 32}-cut.csv").write_bytes(b"c" * 5)
    (layout.tenant_home(data_dir, bad) / "incomplete").write_bytes(b"")  # the Inbox cannot store it
    with caplog.at_level("ERROR", logger="bwsandbox.server"):
        harness = sandbox_factory(data_dir, port=us, ingest=True)
    wait_until(lambda: [r["state"] for r in harness.files(good.name)] == ["done"], timeout=30)
    assert harness.files(bad.name) == []
    quarantined = sorted(p.name.split("-", 1)[1] for p in (data_dir / "quarantine" / bad.name).iterdir())
    assert quarantined == ["cut.csv", "users_20260301.csv"]
    assert caplog.text.count("cannot be recorded") == 2
    assert len(harness.audit_events("quarantined", tenant=bad.name)) == 2

