"""One batch read ahead: the rows of the next batch read from the file's
bytes in a thread of their own while the apply compares this batch's rows
with the directory (`apply.py` `_Applier._records`; docs/benchmarks.md
"Ingest at scale").

SQLite lets go of Python's lock while it runs a statement, and the
comparison of a batch with the stored users is a few statements of a few
milliseconds each; reading a batch is the C module's work, which holds the
lock. So on a machine with a core to spare the two overlap. Nothing here
touches the store: the thread only reads (the items and what `work` makes
of them), and whatever `work` raises is raised to the caller in its place.
`work` shares with the caller only what both read, and caches either may
fill with the same value for a key (the apply's texts of a row's columns;
the validator's memories of normalised values and read dates, which a row
made of a record the C module leaves fills).
A first load's records are not read so: its inserts bind their values
holding the lock, and reading ahead gained nothing (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


class _Raised:
    """What the reading thread raised, handed over to be raised again."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class _Reader(Generic[T, R]):
    """The thread: `work` of each item in turn, at most one done and one in
    hand ahead of the caller."""

    def __init__(self, items: Iterable[T], work: Callable[[T], R]) -> None:
        self.items = items
        self.work = work
        self.out: queue.Queue[object] = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        # A daemon, as the queue worker is: an interpreter that exits does not wait for a read.
        self.thread = threading.Thread(target=self._run, name="bwsandbox-read-ahead", daemon=True)

    def _run(self) -> None:
        try:
            it = iter(self.items)
            while not self.stop.is_set() and (item := next(it, _END)) is not _END:
                self._hand_over((item, self.work(cast(T, item))))
        except BaseException as exc:  # handed to the caller, which raises it
            self._hand_over(_Raised(exc))
            return
        self._hand_over(_END)

    def _hand_over(self, got: object) -> None:
        """Put `got` in the queue, unless the caller has stopped taking."""
        while not self.stop.is_set():
            try:
                self.out.put(got, timeout=0.05)
                return
            except queue.Full:
                continue

    def results(self) -> Iterator[tuple[T, R]]:
        """What the thread hands over, in order, until the end or what it raised."""
        while True:
            got = self.out.get()
            if got is _END:
                return
            if isinstance(got, _Raised):
                raise got.exc
            yield cast(tuple[T, R], got)

    def close(self) -> None:
        """Stop the thread: it hands over nothing more, and what it handed over is dropped."""
        self.stop.set()
        self.thread.join()


@contextlib.contextmanager
def ahead(items: Iterable[T], work: Callable[[T], R]) -> Iterator[Iterator[tuple[T, R]]]:
    """`(item, work(item))` for each of `items`, in order, the next item's
    `work` done in a thread while the caller handles this one. The items are
    taken from their iterable in that thread only; leaving the block, by
    the end or by an exception, stops the thread before it goes on."""
    reader: _Reader[T, R] = _Reader(items, work)
    try:
        reader.thread.start()
    except RuntimeError:  # no thread to be had (an interpreter shutting down, on 3.12+): read here
        yield ((item, work(item)) for item in items)
        return
    try:
        yield reader.results()
    finally:
        reader.close()
