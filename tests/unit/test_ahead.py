"""One batch read ahead (`ingest/ahead.py`): the apply's next batch is read
in a thread of its own while this one is compared with the store. Its
results come in order, what the reading raises is raised to the caller in
its place, and leaving the block in any way stops the thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bwsandbox.ingest.ahead import ahead

NAME = "bwsandbox-read-ahead"


def _readers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == NAME}


@pytest.fixture(autouse=True)
def no_reader_left() -> Iterator[None]:
    """Every test leaves no reading thread of its own behind."""
    before = _readers()
    yield
    assert _readers() <= before


def test_each_item_with_its_work_in_order_read_in_another_thread() -> None:
    caller = threading.get_ident()
    taken: list[int] = []  # the thread each item was taken from its iterable in

    def items() -> Iterator[int]:
        for i in range(50):
            taken.append(threading.get_ident())
            yield i

    def work(i: int) -> tuple[int, int]:
        return i * i, threading.get_ident()

    with ahead(items(), work) as read:
        got = list(read)
    assert [(i, sq) for i, (sq, _) in got] == [(i, i * i) for i in range(50)]
    assert {ident for _, (_, ident) in got} == set(taken) and caller not in taken
    assert len(set(taken)) == 1


def test_the_next_item_is_read_while_the_caller_handles_this_one() -> None:
    """The work of item 1 is done while the caller still holds item 0."""
    second_read = threading.Event()

    def work(i: int) -> int:
        if i == 1:
            second_read.set()
        return i

    with ahead(range(3), work) as read:
        first = next(read)
        assert second_read.wait(10), "the next item was not read ahead"
        assert first == (0, 0)
        assert list(read) == [(1, 1), (2, 2)]


def test_what_the_reading_raises_is_raised_in_its_place() -> None:
    def work(i: int) -> int:
        if i == 3:
            raise ValueError("record 3 is bad")
        return i

    seen = []
    with pytest.raises(ValueError, match="record 3 is bad"), ahead(range(10), work) as read:
        seen.extend(i for i, _ in read)
    assert seen == [0, 1, 2]


def test_leaving_early_stops_the_thread_and_reads_no_further() -> None:
    """An exception in the caller's loop (a row that reaches a user twice)
    leaves the block: the thread stops, at most two items past the one held."""
    taken: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1000):
            taken.append(i)
            yield i

    with pytest.raises(RuntimeError, match="the caller's"), ahead(items(), lambda i: i) as read:
        for i, _ in read:
            if i == 5:
                raise RuntimeError("the caller's")
    assert max(taken) <= 7  # 6 handed over, 7 in hand; 8 never taken


def test_what_the_items_raise_is_raised_in_its_place() -> None:
    """The apply's batches come from the validator's generator, run in the thread."""

    def items() -> Iterator[int]:
        yield 0
        yield 1
        raise OSError("the file went away")

    seen = []
    with pytest.raises(OSError, match="the file went away"), ahead(items(), lambda i: i) as read:
        seen.extend(i for i, _ in read)
    assert seen == [0, 1]


def test_an_empty_iterable_gives_nothing() -> None:
    with ahead([], lambda i: i) as read:
        assert list(read) == []
