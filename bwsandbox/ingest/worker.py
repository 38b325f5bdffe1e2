"""The queue worker: takes queued files in arrival order and processes them.

Production processes files "as soon as possible" in arrival order, with a
delay that grows with the queue and the file size [doc, docs/production.md §5]; the Inbox
gives each file a `due_at`, the worker waits for it. Each tenant's files go
in arrival order, one at a time; between tenants the worker takes turns,
and a second lane takes only files up to `fast_lane_bytes` (`turns.py`).
Tests never sleep:

    worker.process_pending()          process every due file now, in order
    worker.process_pending(force=True)   ...ignoring due times
    worker.between_files()            return once the file in hand is finished
    with worker.paused(): ...         no file is processed, published or emailed

Exactly once: a file is claimed (`queued` -> `processing`), then
applied and marked `done` in one transaction (`process.process`, with
`outputs.finish`). On start, `recover()` returns `processing` rows to
`queued` (a crash lost nothing that was committed, and nothing half-applied
was committed), delivers emails that were recorded but not sent, and
republishes reports. A file cut off by
`max_processing_attempts` crashes is failed instead (`attempts.py`: a poison
file cannot crash every restart); one that meets a full disk goes back to
the queue with a backoff, never `failed` for it; one over `max_file_bytes`
on disk is refused before it is read.

As a Sandbox service (`start(host)` / `stop()`), it runs in one thread
per lane, each with its own store connection. The host is anything with an
`inbox` (the `Host` protocol below): this layer never imports the sandbox
that runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

from bwsandbox import clock as clock_mod
from bwsandbox import fsutil, store
from bwsandbox import tenants as tenants_mod
from bwsandbox.clock import Clock
from bwsandbox.config import Settings
from bwsandbox.ingest import attempts, files, notify, outputs, plan, reports
from bwsandbox.ingest.events import FileEvents
from bwsandbox.ingest.files import FileState
from bwsandbox.ingest.process import Bounds, Processed, process
from bwsandbox.ingest.queue import Delay, Inbox
from bwsandbox.ingest.records import Source
from bwsandbox.ingest.turns import Turns
from bwsandbox.store import transaction

log = logging.getLogger("bwsandbox.ingest")


class Refused(Exception):
    """A file the worker will not process at all; the message is the reason
    recorded with its `failed` state."""


class Host(Protocol):
    """What the worker needs from whatever runs it as a service (the
    Sandbox): the Inbox that records uploads, which wakes the worker. Once
    started, it is None only when the host records no uploads."""

    @property
    def inbox(self) -> Inbox | None: ...


# A file as small as a feed can be, judged once when the worker starts (`_warm_up`).
_WARM_UP = b"email,first_name,last_name\r\nwarm-up@example.com,Warm,Up\r\n"


def _warm_up() -> None:
    """A one-row file judged as an upload is (`plan.validate`, which writes
    nothing), so that what a first judgement loads (numpy, the C modules)
    is loaded before the first upload, not between its close and its
    `done` (about 0.1 s; docs/benchmarks.md "Ingest at scale"). A failure
    here would be the first file's too, and is left for it to report."""
    try:
        plan.validate(_WARM_UP)
    except Exception:
        log.debug("queue worker: warming up failed", exc_info=True)


def delay_from(settings: Settings) -> Delay:
    return Delay(
        base=settings.queue_delay, per_mb=settings.queue_per_mb,
        jitter=settings.queue_jitter, seed=settings.queue_seed,
    )


class Worker:
    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, events: FileEvents | None = None
    ) -> None:
        self.settings = settings
        self._base_clock = clock or Clock()
        self._clock_warned: str | None = None  # a stored offset the clock ignores, logged
        self._conns: dict[int, sqlite3.Connection] = {}  # one per thread
        self._conns_lock = threading.Lock()
        self._lock = threading.Lock()  # the main lane: one file at a time
        self._fast_lock = threading.Lock()  # the fast lane (files up to fast_lane_bytes)
        self._mail_lock = threading.Lock()  # one delivery of pending emails at a time
        self._turns = Turns()  # which tenant's file goes next
        self._put_back = attempts.PutBack()  # files a full disk sent back to the queue
        self._catch_up_at: float | None = None  # when to retry emails/reports a full disk held back
        self._wake = threading.Event()
        self._fast_wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._fast_thread: threading.Thread | None = None
        self.inbox: Inbox | None = None
        # Told when a file reaches a final state (the Sandbox's own, handed in by bwsandbox/parts.py).
        self.events = events or FileEvents()

    # -- plumbing ---------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's store connection (each lane has its own)."""
        key = threading.get_ident()
        conn = self._conns.get(key)
        if conn is None:
            conn = store.connect(self.settings.db_path)
            with self._conns_lock:
                self._conns[key] = conn
        return conn

    def clock(self) -> Clock:
        clock = clock_mod.load(self.conn, self._base_clock)
        if clock.warning and clock.warning != self._clock_warned:  # once, not at every turn
            self._clock_warned = clock.warning
            log.warning("%s", clock.warning)
        return clock

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the worker between files: a file being processed is finished
        first, with its emails and published reports (the pytest plugin's reset
        wipes the data under this)."""
        with self._lock, self._fast_lock:
            yield

    def between_files(self) -> None:
        """Return once the worker holds no file. It marks a file done before it
        delivers the file's emails and publishes its reports: a file seen done
        is finished once this returns."""
        with self.paused():
            pass

    def close(self) -> None:
        with self._conns_lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()

    # -- recovery ---------------------------------------------------------------
    def recover(self) -> int:
        """After a crash: processing -> queued (or failed, after
        `max_processing_attempts` crashes), pending emails out, reports
        republished. Returns how many files went back to the queue."""
        with self.paused():
            requeued, failed = attempts.recover_crashed(self.conn, self.settings.max_processing_attempts)
            if requeued:
                log.warning("requeued %d file(s) interrupted by a crash", len(requeued))
            self._catch_up()
        if failed:
            self.events.notify()
        return len(requeued)

    def _catch_up(self) -> None:
        """Deliver pending emails and publish reports not yet published (a
        crash, or a full disk, held them back)."""
        self._after_commit()
        for file_id in files.unpublished(self.conn):
            outputs.publish(self.conn, self.settings, file_id)

    # -- the queue --------------------------------------------------------------
    def next_due(
        self, *, max_bytes: int | None = None, force: bool = False
    ) -> tuple[int | None, float | None]:
        """(file id to process now, or None; seconds until the next one is due):
        `Turns.pick` over the queue. `max_bytes`: only files up to that size
        (the fast lane); `force`: due times are ignored (tests)."""
        queued = files.in_state(self.conn, FileState.QUEUED)
        if not queued:
            return None, None
        busy = files.tenants_in_state(self.conn, FileState.PROCESSING)
        return self._turns.pick(queued, busy, self.clock().now(), max_bytes=max_bytes, force=force)

    def process_pending(self, *, force: bool = False) -> list[int]:
        """Process every due file, taking turns between tenants; `force`
        ignores due times (tests)."""
        return self._drain(force=force)[0]

    def _drain(self, *, force: bool = False, fast: bool = False) -> tuple[list[int], float | None]:
        """Process what is due; also return the seconds until the next file is
        due, from the same queue scan that found nothing more to do."""
        done: list[int] = []
        max_bytes = self.settings.fast_lane_bytes if fast else None
        while not (fast and self._stopping.is_set()):
            if not fast:
                self._put_back.retry_stranded(self.conn, base=self.settings.retry_backoff_seconds)
            file_id, wait = self.next_due(max_bytes=max_bytes, force=force)
            if file_id is None:
                return done, wait
            state = self._take(file_id, fast=fast)
            if state is not None:
                done.append(file_id)
            if state is FileState.QUEUED:  # put back (a full disk): the next turn, not this one
                return done, self.settings.retry_backoff_seconds
        return done, None

    def process_file(self, file_id: int) -> str:
        """Claim, process and finish one file; returns its final state
        (`queued` again after a full disk). A file that cannot be claimed
        (not queued, or another file of its tenant is being processed) is
        left alone; its state is returned."""
        state = self._take(file_id, fast=False)
        if state is None:
            current = files.state_of(self.conn, file_id)
            return str(current) if current is not None else "missing"
        return state

    def _take(self, file_id: int, *, fast: bool) -> FileState | None:
        """`process_file` in one lane; None when the file was not claimed."""
        # No commit of a lane copies SQLite's write-ahead log back into the store (a big file's
        # would, before the file is seen done: `store.checkpoint_held`); the lane does it after
        # the file, once whoever waits is told, before its own next file.
        with store.checkpoint_held(self.conn), self._fast_lock if fast else self._lock:
            with transaction(self.conn):
                tenant = files.claim(self.conn, file_id)
            if tenant is None:
                return None
            self._turns.served(tenant)
            state = self._finish(file_id)
        self._wake.set()  # the tenant's next file may go now, in either lane
        self._fast_wake.set()
        self.events.notify()  # after the emails and reports are out: a waiter sees a finished file
        store.checkpoint(self.conn)
        return state

    def _finish(self, file_id: int) -> FileState:
        """Process a claimed file, then deliver its emails and publish its reports."""
        try:
            state = self._process(file_id)
        except Refused as exc:
            log.warning("file #%d refused: %s", file_id, exc)
            state = self._fail(file_id, str(exc))
        except Exception as exc:  # our bug: the file fails (a full disk: later); the queue goes on
            why = attempts.retryable(exc)
            if why is not None:
                state = self._retry_later(file_id, why, exc)
            else:
                log.exception("processing file #%d failed", file_id)
                state = self._fail(file_id, f"internal error: {type(exc).__name__}: {exc}")
        try:
            self._after_commit()
            outputs.publish(self.conn, self.settings, file_id)
        except Exception as exc:
            if attempts.retryable(exc) is None:
                raise
            log.warning("file #%d: its email or report waits (%s); tried again shortly", file_id, exc)
            self._catch_up_at = time.monotonic() + max(self.settings.retry_backoff_seconds, 1.0)
        return state

    def _fail(self, file_id: int, detail: str) -> FileState:
        with transaction(self.conn):
            files.fail(self.conn, file_id, detail)
        return FileState.FAILED

    def _retry_later(self, file_id: int, why: str, exc: BaseException) -> FileState:
        """Back to the queue after the backoff (`attempts.PutBack`); the
        emails and reports a full disk held back are tried again then too."""
        delay = self._put_back.later(
            self.conn, file_id, why, exc, base=self.settings.retry_backoff_seconds,
            now=lambda: self.clock().now(),
        )
        self._catch_up_at = time.monotonic() + max(delay, 1.0)
        return FileState.QUEUED

    def _process(self, file_id: int) -> FileState:
        row = files.get(self.conn, file_id)
        if row is None:
            raise RuntimeError(f"file #{file_id} no longer exists")
        tenant = tenants_mod.get(self.conn, row.tenant)
        if tenant is None:
            raise RuntimeError(f"tenant {row.tenant!r} no longer exists")
        if row.stored_path is None:
            raise RuntimeError(f"file #{file_id} was never stored")
        data = read_bounded(Path(row.stored_path), self.settings.max_file_bytes)
        clock = self.clock()
        extra: dict[str, object] = {
            "file_id": file_id, "tenant": tenant.name, "sha256": row.sha256, "bytes": row.bytes,
            "received_at": row.received_at, "processed_at": clock.iso(),
            "repeat": row.detail or None,
        }

        def finalize(conn: sqlite3.Connection, done: Processed) -> None:
            outputs.finish(conn, done, file_id=file_id, tenant=tenant, file_name=row.name, clock=clock)

        done = process(
            self.conn, data_dir=self.settings.data_dir, tenant=tenant, name=row.name, data=data,
            clock=clock, source=Source.FILE, label=f"file #{file_id} {row.name}",
            termination_limit=self.settings.engage_termination_limit, extra=extra, finalize=finalize,
            bounds=Bounds.from_settings(self.settings),
        )
        log.info("file #%d %s/%s: %s (%s)", file_id, tenant.name, row.name, done.verdict,
                 reports.applied_text(done.report) or "nothing applied")
        return FileState.DONE

    def _after_commit(self) -> None:
        outbox = self.settings.data_dir / "outbox"
        with self._mail_lock:  # both lanes: an email is sent once
            notify.deliver_pending(self.conn, smtp=self.settings.smtp, outbox=outbox)

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
        if not self._stopping.is_set():
            _warm_up()
        if self.settings.fast_lane_bytes > 0:
            self._fast_thread = threading.Thread(
                target=self._fast_lane, name="bwsandbox-ingest-fast", daemon=True
            )
            self._fast_thread.start()
        try:
            self._lane(self._wake, fast=False)
        finally:
            if self._fast_thread is not None:
                self._fast_wake.set()
                self._fast_thread.join()
                self._fast_thread = None

    def _fast_lane(self) -> None:
        self._lane(self._fast_wake, fast=True)

    def _lane(self, wake: threading.Event, *, fast: bool) -> None:
        while not self._stopping.is_set():
            try:
                _, wait = self._drain(fast=fast)
                if not fast and self._catch_up_at is not None and time.monotonic() >= self._catch_up_at:
                    self._catch_up_at = None
                    with self._lock:
                        self._catch_up()
            except Exception as exc:
                if attempts.retryable(exc) is None:
                    log.exception("queue worker loop")
                else:
                    log.warning("queue worker: %s (%s); trying again in 1 s", attempts.retryable(exc), exc)
                wait = 1.0
            # Idle, the fast lane sleeps until woken (an upload, a finished
            # file): the idle sandbox checks its queue twice a second, as before.
            idle = 5.0 if fast else 0.5
            wake.wait(idle if wait is None else min(wait, 0.5))
            wake.clear()

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
        self._fast_wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- Sandbox service protocol ----------------------------------------------------
    async def start(self, host: Host) -> None:
        """Wake on every upload the host's Inbox records, which is given this
        worker's processing delay; then run. The clock and the events are
        the ones handed to the constructor (bwsandbox/parts.py gives the
        sandbox's own)."""
        inbox = host.inbox
        if inbox is not None:
            self.inbox = inbox
            inbox.set_delay(delay_from(self.settings))
            inbox.add_listener(self._wake)
            inbox.add_listener(self._fast_wake)
        self.start_thread()

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_thread)


def read_bounded(path: Path, limit: int) -> bytes:
    """The stored upload, refused (`Refused`) when it holds more than `limit`
    bytes: checked with stat before anything is read, and the read itself
    stops one byte past the limit (the file cannot grow in between unseen).
    A 28-byte upload stretched to 3 GiB by SFTP setstat is refused here, not
    read into memory (docs/security.md "Limits")."""
    try:
        return fsutil.read_bounded(path, limit)
    except fsutil.TooLarge as exc:
        raise Refused(_too_big(exc.size, limit)) from None


def _too_big(size: int | None, limit: int) -> str:
    if size is None:  # it grew past the limit after its stat: read only to one byte past it
        return (f"not processed: the stored file is more than {limit:,} bytes, over max_file_bytes "
                f"({limit:,}); it was read no further")
    return (f"not processed: the stored file is {size:,} bytes, over max_file_bytes ({limit:,}); "
            "it was never read")
