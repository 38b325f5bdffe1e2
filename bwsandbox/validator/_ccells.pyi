"""The value fast path in C (`_cells.c`); see `fastpath.py`."""

from collections.abc import Mapping, Sequence
from types import NotImplementedType
from typing import Any

def cells(
    text: bytes,
    start: int,
    end: int,
    width: int,
    cols: Sequence[tuple[int, int, int, bool, tuple[bytes, ...] | None]],
    /,
) -> dict[str, Any]: ...
def fields_text(values: dict[str, str], skip: frozenset[str], last: str, /) -> str | None: ...
def quick_row(
    i: int,
    row: int,
    key: str,
    values: Mapping[str, str],
    rule: tuple[tuple[str, ...], bool, str, bool, frozenset[str], str, frozenset[str], str, str, str],
    /,
) -> tuple[int, int, str, str, int, str, str, int] | None | NotImplementedType: ...
def quick_record(
    k: int, text: bytes, start: int, end: int, rec: int, spec: tuple[Any, ...], /
) -> tuple[int, int, str, str, int, str, str, int] | None | NotImplementedType: ...
def quick_records(
    text: bytes,
    starts: list[int],
    ends: list[int],
    recs: list[int],
    k: int,
    stop: int,
    spec: tuple[Any, ...],
    out: list[tuple[int, int, str, str, int, str, str, int]],
    keys: list[str],
    /,
) -> int: ...
def plain_rows(
    text: bytes,
    starts: list[int],
    ends: list[int],
    recs: list[int],
    k: int,
    stop: int,
    uid: int,
    spec: tuple[Any, ...],
    tail: tuple[Any, ...],
    out: list[object],
    keys: list[str],
    /,
) -> int: ...
def history_texts(old: str | None, new: str, /) -> tuple[str, str] | NotImplementedType: ...
def values_only(
    old: str, new: str, names: tuple[str, ...], /
) -> tuple[bool, dict[str, str]] | None | NotImplementedType: ...
def hash_strings(values: Sequence[str], /) -> bytearray: ...
def split(text: bytes, start: int, parts: int, /) -> list[tuple[int, int]]: ...
def values(
    cells: Sequence[str],
    cols: tuple[tuple[int, str, int, bool, dict[str, str | None], Any], ...],
    limit: int,
    /,
) -> dict[str, str]: ...
