"""The durable queue's front door: the one narrow interface the SFTP server
hands uploads to (server -> ingest).

The server calls exactly two methods, from any thread:

    Inbox.received(tenant, name, path)    a COMPLETE upload; the inbox takes
                                          ownership of the file at `path`
                                          (moves it into the store) and
                                          returns the file id
    Inbox.incomplete(tenant, name, path, bytes_received, reason)
                                          a cut-off upload (docs/production.md §2: "a
                                          cut-off upload must never be
                                          processed"): recorded, never queued

What `received` decides (the rest is the worker's business):

- engage profile: `employees.YYYYMMDDHHMM.csv.pgp` waits (state `waiting`)
  until its empty marker `employees.YYYYMMDDHHMM.csv.done.pgp` arrives, in
  either order [doc, docs/production.md §1]; the marker itself is recorded and never applied;
  a marker whose data file never (or not yet) arrived is logged and listed
  with `marker_note()`, never passed off silently as a done file;
- a name or content this tenant already sent is noted in `detail` and still
  queued: applying it changes nothing, and the report says so (docs/production.md §5);
- `due_at`: production processes "as soon as possible", slower when the queue
  is long or the file big [doc]; the sandbox waits base + per-MB + jitter
  after the previous file's due time (seeded, so a run can be replayed).

Crash safety: the upload is hard-linked into `received/` inside the
transaction that inserts its row and only unlinked from the spool after the
commit, so after `kill -9` at any moment either the row and the stored file
both exist, or the spool still holds the upload.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import random
import re
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from bwsandbox import clock as clock_mod
from bwsandbox import layout
from bwsandbox.clock import Clock
from bwsandbox.ingest import files, reports
from bwsandbox.ingest.files import FileState
from bwsandbox.spec.fields import Profile
from bwsandbox.store import transaction
from bwsandbox.tenants import Tenant

# docs/production.md §1 engage file names [doc]; `.gpg` and an unencrypted `.csv` are
# recognised too, so the worker can say what is wrong with them.
ENGAGE_DATA = re.compile(r"^employees\.(\d{12})\.csv(\.pgp|\.gpg)?$")
ENGAGE_MARKER = re.compile(r"^employees\.(\d{12})\.csv\.done(\.pgp|\.gpg)?$")
MARKER_DETAIL = "marker"

log = logging.getLogger(__name__)


def sha256_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Delay:
    """Simulated processing delay (docs/production.md §5): base + per-MB cost + seeded jitter, seconds."""

    base: float = 0.0
    per_mb: float = 0.0
    jitter: float = 0.0
    seed: int = 0

    def seconds(self, file_id: int, size: int) -> float:
        jitter = random.Random(f"{self.seed}:{file_id}").uniform(0, self.jitter) if self.jitter else 0.0
        return self.base + self.per_mb * size / 1_000_000 + jitter


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


class Inbox:
    def __init__(
        self,
        conn: sqlite3.Connection,
        data_dir: Path,
        clock: Clock,
        *,
        delay: Delay | None = None,
    ) -> None:
        self._conn = conn
        self._data_dir = data_dir
        self._clock = clock
        self._delay = delay or Delay()
        self._lock = threading.Lock()
        self._listeners: list[threading.Event] = []

    def tenant_dir(self, tenant: Tenant) -> Path:
        return layout.tenant_home(self._data_dir, tenant)

    def add_listener(self, event: threading.Event) -> None:
        """`event` is set whenever a file is recorded; the worker waits on it."""
        self._listeners.append(event)

    def set_delay(self, delay: Delay) -> None:
        self._delay = delay

    def received(self, tenant: Tenant, name: str, path: Path) -> int:
        """Queue a complete upload; returns its file id."""
        return self._record(tenant, name, path, incomplete=None)

    def incomplete(
        self, tenant: Tenant, name: str, path: Path, bytes_received: int, reason: str
    ) -> int:
        """Record a cut-off upload; it is kept for inspection, never processed."""
        return self._record(tenant, name, path, incomplete=reason)

    def recover(self, tenant: Tenant, name: str, path: Path, incomplete: str | None) -> int | None:
        """An upload the server had handed over (in its spool) when it was
        killed: record it as `received` or `incomplete` would, unless it was
        recorded already (the crash came after the commit, before the spool
        copy was unlinked: that file is the stored one, hard-linked). Returns
        the new file id, or None when there was nothing to do."""
        with self._lock:
            stored_paths = files.stored_paths(self._conn, tenant.name, name)
        for stored in stored_paths:
            try:
                if os.path.samefile(stored, path):
                    path.unlink()
                    return None
            except OSError:
                continue
        return self._record(tenant, name, path, incomplete=incomplete)

    def _record(self, tenant: Tenant, name: str, path: Path, *, incomplete: str | None) -> int:
        size, digest = sha256_file(path)
        folder = self.tenant_dir(tenant) / ("received" if incomplete is None else "incomplete")
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            with transaction(self._conn):
                state, detail = self._classify(tenant, name, digest, incomplete)
                file_id = files.insert(
                    self._conn, tenant=tenant.name, name=name, size=size, sha256=digest,
                    received_at=self._now().iso(), state=state, detail=detail,
                )
                # Any name fits: the stored name leaves room for the id and for
                # `.report.json` beside it (the real name is in the row).
                prefix = f"{file_id:06d}-"
                stored = folder / (prefix + layout.fit_name(name, len(prefix) + reports.NAME_ROOM))
                _link(path, stored)
                due = self._due(file_id, size) if state is FileState.QUEUED else None
                files.set_stored(self._conn, file_id, stored_path=str(stored), due_at=due)
                orphan = detail == MARKER_DETAIL and not self._release(tenant, name)
            path.unlink(missing_ok=True)
        if orphan:
            log.info("tenant %s: marker %s arrived without its data file %s (#%d)",
                     tenant.name, name, data_name(name), file_id)
        self._wake()
        return file_id

    def _classify(
        self, tenant: Tenant, name: str, digest: str, incomplete: str | None
    ) -> tuple[FileState, str]:
        if incomplete is not None:
            return FileState.INCOMPLETE, incomplete
        if tenant.profile is Profile.ENGAGE:
            if ENGAGE_MARKER.match(name):
                return FileState.DONE, MARKER_DETAIL
            data = ENGAGE_DATA.match(name)
            if data and not self._marker_seen(tenant, data.group(1)):
                return FileState.WAITING, "waiting for " + _marker_name(name)
        return FileState.QUEUED, self._repeat_note(tenant, name, digest)

    def _marker_seen(self, tenant: Tenant, stamp: str) -> bool:
        return any(
            ENGAGE_MARKER.match(marker)
            for marker in files.names_with_detail(
                self._conn, tenant.name, detail=MARKER_DETAIL, like=f"employees.{stamp}.csv.done%"
            )
        )

    def _release(self, tenant: Tenant, marker: str) -> int:
        """A `.done` marker arrived: its data file may now be processed.
        Returns how many data files it released."""
        match = ENGAGE_MARKER.match(marker)
        assert match is not None
        released = 0
        for waiting in files.waiting(self._conn, tenant.name):
            data = ENGAGE_DATA.match(waiting.name)
            if data and data.group(1) == match.group(1):
                note = self._repeat_note(tenant, waiting.name, waiting.sha256, before=waiting.id)
                due = self._due(waiting.id, waiting.bytes)
                files.release(self._conn, waiting.id, due_at=due, detail=note)
                released += 1
        return released

    def _repeat_note(self, tenant: Tenant, name: str, digest: str, before: int | None = None) -> str:
        """docs/production.md §5 [decided]: a repeated name or content is reported as such."""
        earlier = files.latest_repeat(
            self._conn, tenant.name, name, digest, except_detail=MARKER_DETAIL, before=before
        )
        if earlier is None:
            return ""
        hits = (("name", earlier.name == name), ("content", earlier.sha256 == digest))
        same = [what for what, hit in hits if hit]
        return f"repeat of file #{earlier.id} ({earlier.name}): same {' and '.join(same)}"

    def _due(self, file_id: int, size: int) -> str:
        now = self._now().now()
        if self._delay.base or self._delay.per_mb or self._delay.jitter:
            # Queue length matters: a file waits for the one before it.
            last = files.last_due(self._conn)
            if last:
                now = max(now, dt.datetime.fromisoformat(last))
        return iso(now + dt.timedelta(seconds=self._delay.seconds(file_id, size)))

    def _now(self) -> Clock:
        """The sandbox clock as it is now, as the worker reads it: a `clock
        set`/`advance`/`reset` (CLI in another process, or the API) while the
        server runs applies to the next upload's `received_at` and `due_at`."""
        return clock_mod.load(self._conn, self._clock)

    def _wake(self) -> None:
        for event in list(self._listeners):
            event.set()


def data_name(marker: str) -> str:
    """`employees.X.csv.done.pgp` -> `employees.X.csv.pgp`."""
    match = ENGAGE_MARKER.match(marker)
    assert match is not None
    return f"employees.{match.group(1)}.csv{match.group(2) or ''}"


def marker_note(conn: sqlite3.Connection, tenant: str, marker: str) -> str:
    """How `bwsandbox files` describes a `.done` marker: plain `marker` once
    its data file was received (complete, in either order; docs/production.md §1), else
    says the data file is missing, so a marker alone never looks done."""
    match = ENGAGE_MARKER.match(marker)
    if match is None:
        return MARKER_DETAIL
    received = files.received_names(conn, tenant, like=f"employees.{match.group(1)}.csv%",
                                    except_detail=MARKER_DETAIL)
    if any(ENGAGE_DATA.match(name) for name in received):
        return MARKER_DETAIL
    return f"marker without data file ({data_name(marker)} not received)"


def _marker_name(name: str) -> str:
    match = ENGAGE_DATA.match(name)
    assert match is not None
    return f"employees.{match.group(1)}.csv.done{match.group(2) or ''}"


def _link(source: Path, target: Path) -> None:
    """Put the upload at `target` without removing `source` (see module docstring)."""
    # An existing target is an orphan of a transaction that never committed.
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
