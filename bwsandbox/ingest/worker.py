"""The queue worker: takes queued files in arrival order and processes them.

Production processes files "as soon as possible" in arrival order, with a
delay that grows with the queue and the file size [doc, SPEC §5]; the Inbox
gives each file a `due_at`, the worker waits for it. Tests never sleep:

    worker.process_pending()          process every due file now, in order
    worker.process_pending(force=True)   ...ignoring due times
    worker.between_files()            return once the file in hand is finished
    with worker.paused(): ...         no file is processed, published or emailed

Exactly once (issue #4): a file is claimed (`queued` -> `processing`), then
applied and marked `done` in one transaction (`process.process`). On start,
`recover()` returns `processing` rows to `queued` (a crash lost nothing that
was committed, and nothing half-applied was committed), delivers emails that
were recorded but not sent, and republishes reports.

As a Sandbox service (`start(sandbox)` / `stop()`), it runs in one thread
with its own store connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bwsandbox import clock as clock_mod
from bwsandbox import layout, store
from bwsandbox import tenants as tenants_mod
from bwsandbox.clock import Clock
from bwsandbox.config import Settings
from bwsandbox.ingest import notify, reports
from bwsandbox.ingest.events import FileEvents
from bwsandbox.ingest.process import Processed, process
from bwsandbox.ingest.queue import Delay, Inbox
from bwsandbox.ingest.records import Source
from bwsandbox.store import transaction

if TYPE_CHECKING:
    from bwsandbox.sandbox import Sandbox

log = logging.getLogger("bwsandbox.ingest")

def delay_from(settings: Settings) -> Delay:
    return Delay(
        base=settings.queue_delay, per_mb=settings.queue_per_mb,
        jitter=settings.queue_jitter, seed=settings.queue_seed,
    )


class Worker:
    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self._base_clock = clock or Clock()
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one file at a time, in order
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.inbox: Inbox | None = None
        # Told when a file reaches a final state (the Sandbox's, when it runs as its service).
        self.events = FileEvents()

    # -- plumbing ---------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = store.connect(self.settings.db_path)
        return self._conn

    def clock(self) -> Clock:
        return clock_mod.load(self.conn, self._base_clock)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the worker between files: a file being processed is finished
        first, with its emails and published reports (the pytest plugin's reset
        wipes the data under this)."""
        with self._lock:
            yield

    def between_files(self) -> None:
        """Return once the worker holds no file. It marks a file done before it
        delivers the file's emails and publishes its reports: a file seen done
        is finished once this returns."""
        with self.paused():
            pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- recovery ---------------------------------------------------------------
    def recover(self) -> int:
        """After a crash: processing -> queued, pending emails out, reports republished."""
        with self._lock:
            with transaction(self.conn):
                cur = self.conn.execute("UPDATE files SET state = 'queued' WHERE state = 'processing'")
            requeued = cur.rowcount
            if requeued:
                log.warning("requeued %d file(s) interrupted by a crash", requeued)
            self._after_commit()
            for row in self.conn.execute(
                "SELECT f.id FROM files f JOIN file_outputs o ON o.file_id = f.id WHERE o.published = 0"
            ).fetchall():
                self._publish(int(row[0]))
            return requeued

    # -- the queue --------------------------------------------------------------
    def next_due(self) -> tuple[int | None, float | None]:
        """(file id to process now, or None; seconds until the next one is due)."""
        rows = self.conn.execute(
            "SELECT id, tenant, due_at FROM files WHERE state = 'queued' ORDER BY id"
        ).fetchall()
        now = self.clock().now()
        heads: set[str] = set()
        wait: float | None = None
        for row in rows:
            if row["tenant"] in heads:
                continue  # arrival order per tenant: only its oldest file may go
            heads.add(row["tenant"])
            due = dt.datetime.fromisoformat(row["due_at"]) if row["due_at"] else now
            if due <= now:
                return int(row["id"]), 0.0
            seconds = (due - now).total_seconds()
            wait = seconds if wait is None else min(wait, seconds)
        return None, wait

    def process_pending(self, *, force: bool = False) -> list[int]:
        """Process every due file, oldest first; `force` ignores due times (tests)."""
        return self._drain(force=force)[0]

    def _drain(self, *, force: bool = False) -> tuple[list[int], float | None]:
        """Process what is due; also return the seconds until the next file is
        due, from the same queue scan that found nothing more to do."""
        done: list[int] = []
        while True:
            wait: float | None = None
            if force:
                row = self.conn.execute(
                    "SELECT id FROM files WHERE state = 'queued' ORDER BY id LIMIT 1"
                ).fetchone()
                file_id = int(row[0]) if row else None
            else:
                file_id, wait = self.next_due()
            if file_id is None:
                return done, wait
            self.process_file(file_id)
            done.append(file_id)

    def process_file(self, file_id: int) -> str:
        """Claim, process and finish one file; returns its final state."""
        with self._lock:
            with transaction(self.conn):
                claimed = self.conn.execute(
                    "UPDATE files SET state = 'processing' WHERE id = ? AND state = 'queued'", (file_id,)
                ).rowcount
            if not claimed:
                row = self.conn.execute("SELECT state FROM files WHERE id = ?", (file_id,)).fetchone()
                return str(row[0]) if row else "missing"
            try:
                state = self._process(file_id)
            except Exception as exc:  # our bug or the disk: the file fails, the queue goes on
                log.exception("processing file #%d failed", file_id)
                with transaction(self.conn):
                    self.conn.execute(
                        "UPDATE files SET state = 'failed', detail = ? WHERE id = ?",
                        (f"internal error: {type(exc).__name__}: {exc}", file_id),
                    )
                state = "failed"
            self._after_commit()
            self._publish(file_id)
        self.events.notify()  # after the emails and reports are out: a waiter sees a finished file
        return state

    def _process(self, file_id: int) -> str:
        row = self.conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        tenant = tenants_mod.get(self.conn, row["tenant"])
        if tenant is None:
            raise RuntimeError(f"tenant {row['tenant']!r} no longer exists")
        data = Path(row["stored_path"]).read_bytes()
        clock = self.clock()
        extra: dict[str, object] = {
            "file_id": file_id, "tenant": tenant.name, "sha256": row["sha256"], "bytes": row["bytes"],
            "received_at": row["received_at"], "processed_at": clock.iso(),
            "repeat": row["detail"] or None,
        }

        def finalize(conn: sqlite3.Connection, done: Processed) -> None:
            report = done.report
            conn.execute(
                "UPDATE files SET state = 'done', verdict = ?, report_json = ?, counts_json = ?"
                " WHERE id = ?",
                (done.verdict, json.dumps(report), json.dumps(reports.counts(report)), file_id),
            )
            conn.execute(
                "INSERT OR REPLACE INTO file_outputs (file_id, errors_csv, published) VALUES (?, ?, 0)",
                (file_id, done.errors_csv),
            )
            if done.errors_csv is not None:
                msg = notify.build_message(
                    to=tenant.contact, tenant=tenant.name, file_name=row["name"],
                    report=report, attachment=done.errors_csv, names=done.names,
                )
                notify.record(conn, tenant=tenant.name, file_id=file_id, at=clock.iso(), msg=msg)

        done = process(
            self.conn, data_dir=self.settings.data_dir, tenant=tenant, name=row["name"], data=data,
            clock=clock, source=Source.FILE, label=f"file #{file_id} {row['name']}",
            termination_limit=self.settings.engage_termination_limit, extra=extra, finalize=finalize,
        )
        log.info("file #%d %s/%s: %s (%s)", file_id, tenant.name, row["name"], done.verdict,
                 reports.applied_text(done.report) or "nothing applied")
        return "done"

    def _after_commit(self) -> None:
        notify.deliver_pending(self.conn, smtp=self.settings.smtp, outbox=self.settings.data_dir / "outbox")

    def _publish(self, file_id: int) -> None:
        """Copies kept with the stored file and, if enabled, in the tenant's /reports."""
        row = self.conn.execute(
            "SELECT f.tenant, f.name, f.stored_path, f.report_json, o.errors_csv FROM files f"
            " JOIN file_outputs o ON o.file_id = f.id WHERE f.id = ?",
            (file_id,),
        ).fetchone()
        if row is None or row["report_json"] is None:
            return
        report = json.loads(row["report_json"])
        errors = bytes(row["errors_csv"]) if row["errors_csv"] is not None else None
        try:
            stored = Path(row["stored_path"])
            reports.publish(stored.parent, stored.name, report, errors)
            tenant = tenants_mod.get(self.conn, row["tenant"])
            if tenant is not None and self.settings.reports_folder:
                folder = layout.reports_dir(self.settings.data_dir, tenant)
                reports.publish(folder, row["name"], report, errors)
        except OSError:
            log.exception("publishing the report of file #%d failed", file_id)
            return
        with transaction(self.conn):
            self.conn.execute("UPDATE file_outputs SET published = 1 WHERE file_id = ?", (file_id,))

    # -- the background thread ------------------------------------------------------
    def run(self) -> None:
        """Loop until stop(): process what is due, sleep until the next due time."""
        lock = self._single_worker_lock()
        if lock is None:
            return
        try:
            self._loop()
        finally:
            lock.close()

    def _single_worker_lock(self) -> IO[bytes] | None:
        """One worker per data directory: `recover()` requeues `processing`
        files, which is only right if no other worker is processing them.
        (POSIX file locks: `fcntl` is imported here, where it is needed.)"""
        import fcntl

        path = self.settings.data_dir / "ingest.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = path.open("ab")
        while not self._stopping.is_set():
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fh
            except BlockingIOError:
                log.warning("another queue worker uses %s; waiting for it", self.settings.data_dir)
                self._stopping.wait(5.0)
        fh.close()
        return None

    def _loop(self) -> None:
        self.recover()
        while not self._stopping.is_set():
            try:
                _, wait = self._drain()
            except Exception:
                log.exception("queue worker loop")
                wait = 1.0
            self._wake.wait(0.5 if wait is None else min(wait, 0.5))
            self._wake.clear()

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run_thread, name="bwsandbox-ingest", daemon=True)
        self._thread.start()

    def _run_thread(self) -> None:
        try:
            self.run()
        finally:
            self.close()

    def stop_thread(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- Sandbox service protocol ----------------------------------------------------
    async def start(self, sandbox: Sandbox) -> None:
        self._base_clock = sandbox.clock
        self.events = sandbox.file_events
        if sandbox.inbox is not None:
            self.inbox = sandbox.inbox
            sandbox.inbox.set_delay(delay_from(self.settings))
            sandbox.inbox.add_listener(self._wake)
        self.start_thread()

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_thread)

