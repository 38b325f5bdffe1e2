"""What a Sandbox is made of, built in one place and handed to it.

The Sandbox owns the lifecycle (start, stop, the order of both); it does not
decide which clock, worker or store it runs with. `build(settings)` makes
the usual parts; a test or an embedding program can build its own `Parts`
(another clock, no worker, a worker subclass injecting a fault) and hand
them in:

    Sandbox(settings)                               parts = build(settings)
    Sandbox(settings, parts=build(settings, ingest=False))

The store connection and the Inbox are made at start, not here: they hold a
SQLite connection, whose life is the running sandbox's. So `Parts` holds how
to make them.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from bwsandbox import store
from bwsandbox.clock import Clock
from bwsandbox.config import Settings
from bwsandbox.ingest.events import FileEvents
from bwsandbox.ingest.queue import Inbox
from bwsandbox.ingest.worker import Worker


@dataclass(frozen=True, slots=True, kw_only=True)
class Parts:
    clock: Clock
    # Notified when an upload is recorded or reaches a final state: the
    # worker, the pickup and every waiter (plugin, certify, HTTP long polls) share it.
    file_events: FileEvents
    # The simulated vendor app's queue worker, the first service started;
    # None: uploads are recorded and stay queued (tests that drive the worker themselves).
    worker: Worker | None
    connect: Callable[[], sqlite3.Connection]  # a new store connection
    inbox: Callable[[sqlite3.Connection], Inbox]  # the queue's front door, over its own connection


def build(settings: Settings, *, clock: Clock | None = None, ingest: bool = True) -> Parts:
    """The usual parts: one clock and one event signal shared by the worker
    and the sandbox, the store in `settings.db_path`."""
    clock = clock or Clock()
    events = FileEvents()
    return Parts(
        clock=clock,
        file_events=events,
        worker=Worker(settings, clock=clock, events=events) if ingest else None,
        connect=functools.partial(store.connect, settings.db_path),
        inbox=lambda conn: Inbox(conn, settings.data_dir, clock),
    )
