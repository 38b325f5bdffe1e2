"""Value rules (docs/production.md §3 limits, docs/validation.md Excel damage):
lengths, booleans, mobile numbers and ids; dates are in `dates.py`, email
addresses in `emails.py`, the vectorised pass they share in `batch.py`.

Each rule is a vectorised polars mask over a whole column; only the flagged
rows come back to Python, where a precise per-value function writes the
message. The per-value functions are also the normalisers ingest applies
(`normaliser`), so the report and the applied data cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bwsandbox.spec.fields import BOOLEAN_FALSE, BOOLEAN_TRUE, SPACES, Field, ValueType
from bwsandbox.spec.fields import trim as trim  # re-exported: the rules trim as the normalisers do
from bwsandbox.validator import accel, ckinds
from bwsandbox.validator.batch import Batch, Post, by_value, rows_at
from bwsandbox.validator.dates import day_first, read_date
from bwsandbox.validator.findings import finding, row_of
from bwsandbox.validator.model import Finding

if TYPE_CHECKING:
    import numpy as np


SCIENTIFIC = r"^[0-9](?:[.,][0-9]+)?[Ee]\+?[0-9]+$"
MOBILE = r"^\+?[0-9]{6,15}$"  # docs/production.md §3 engage: `+` and digits [decided: 6-15 digits, E.164]


def read_bool(raw: str) -> str | None:
    """docs/production.md §3 `on_leave` [decided]: true/false, yes/no, 1/0, any case."""
    v = raw.strip().lower()
    if v in BOOLEAN_TRUE:
        return "true"
    if v in BOOLEAN_FALSE:
        return "false"
    return None


def normaliser(spec: Field | None, locale: str) -> Callable[[str], str | None]:
    """The value ingest applies from a cell of `spec`'s column; None means: do
    not apply this value. Trimmed (SPACES); a cell of only spaces is empty,
    which clears an optional field and is not applied to a required one. A
    custom key (no spec) keeps its trimmed cell as it is. Made once per
    column, so a million rows pay one small call per cell, and a cell seen
    before in the column (a department, a date) one dictionary lookup."""
    return _column(spec, locale)[0]


def _column(spec: Field | None, locale: str) -> Remembered:
    """`normaliser`, with its memory (`_remembered`)."""
    spaces = SPACES
    if spec is None:
        return _remembered(lambda raw: raw.strip(spaces))
    empty = None if spec.required else ""
    kind = spec.type
    if kind is ValueType.TEXT:
        return _remembered(lambda raw: value if (value := raw.strip(spaces)).strip() else empty)
    if kind is ValueType.EMAIL or kind is ValueType.MOBILE:
        return _remembered(lambda raw: raw.strip(spaces).strip() or empty)

    def value(raw: str) -> str | None:
        raw = raw.strip(spaces)
        if not raw.strip():
            return empty
        if kind is ValueType.DATE:
            return read_date(raw, locale).iso
        if kind is ValueType.BOOLEAN:
            return read_bool(raw)
        raw = raw.strip()  # ValueType.ID: without the apostrophe Excel users type
        return raw[1:] if raw.startswith("'") else raw

    return _remembered(value)


SHARED_VALUES = 16_384  # distinct values kept for sharing, per column or per directory load


class Shared:
    """One string object for each repeated value (departments, titles,
    locations, managers' addresses, names, dates): a big feed's users, or a
    big directory, then hold one copy of "Customer Support", not one per
    user. At most SHARED_VALUES distinct values are kept, so values that
    never repeat (addresses, ids) cost a bounded table."""

    __slots__ = ("_limit", "_seen")

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}
        self._limit = SHARED_VALUES

    def __call__(self, value: str) -> str:
        found = self._seen.get(value)
        if found is not None:
            return found
        if len(self._seen) < self._limit:
            self._seen[value] = value
        return value


_UNSEEN = object()


Remembered = tuple[Callable[[str], str | None], dict[str, str | None]]


def _remembered(read: Callable[[str], str | None]) -> Remembered:
    """`read`, remembering what it made of up to SHARED_VALUES distinct cells
    (a column's repeated cells are then one lookup) and handing out one
    string per repeated value (`Shared`: " Sales" and "Sales" give one);
    with that memory (cell -> value), which `row_values` shares."""
    share = Shared()
    made: dict[str, str | None] = {}
    limit = SHARED_VALUES

    def value(raw: str) -> str | None:
        found = made.get(raw, _UNSEEN)
        if found is not _UNSEEN:
            return found  # type: ignore[return-value]
        result = read(raw)
        if result is not None:
            result = share(result)
        if len(made) < limit:
            made[raw] = result
        return result

    return value, made


# How the C row pass (`_ccells.values`) may take a cell of each kind as it is;
# a date, never (its value is the ISO date `read_date` makes of it). The C
# record reader (`_rows.c`) reads a date as `read_date` does where it is
# d/d/yyyy in the tenant's order or yyyy/m/d: PLAIN_DATE_MDY or _DMY by the
# locale (`plain_columns`), which the row pass takes as NEVER.
PLAIN_TEXT, PLAIN_ID, PLAIN_BOOL, NEVER, PLAIN_DATE_MDY, PLAIN_DATE_DMY = 0, 1, 2, 3, 4, 5
_PLAIN = {ValueType.TEXT: PLAIN_TEXT, ValueType.EMAIL: PLAIN_TEXT, ValueType.MOBILE: PLAIN_TEXT,
          ValueType.ID: PLAIN_ID, ValueType.BOOLEAN: PLAIN_BOOL}

Column = tuple[int, str, Field | None]  # cell index, field name, its spec (None: a custom key)


def row_values(columns: Iterable[Column], locale: str) -> tuple[
    list[tuple[int, str, Callable[[str], str | None]]], Callable[[Sequence[str]], dict[str, str]]
]:
    """The normaliser of each column (index, name, function), and the
    values ingest applies from a record that has every column's cell:
    `{name: normaliser(cell)}` without the cells it does not apply (None).
    With the C value module (the `ccells` accelerator) a plain cell (ASCII,
    nothing to trim, an id without an apostrophe, a yes/no already "true" or
    "false") is taken as it is and only the others go through their
    normaliser: the same dicts (a property test), without a Python call per
    cell."""
    built = [(index, name, spec, *_column(spec, locale)) for index, name, spec in columns]
    reads = [(index, name, read) for index, name, _, read, _ in built]
    if accel.engines().ccells:
        from bwsandbox.validator import _ccells

        plain = plain_columns(((index, name, spec) for index, name, spec, _, _ in built), locale)
        cols = tuple((*p, memory, read) for p, (_, _, _, read, memory) in zip(plain, built, strict=True))
        c_values, limit = _ccells.values, SHARED_VALUES

        def in_c(cells: Sequence[str]) -> dict[str, str]:
            return c_values(cells, cols, limit)

        return reads, in_c

    def in_python(cells: Sequence[str]) -> dict[str, str]:
        return {name: value for index, name, read in reads if (value := read(cells[index])) is not None}

    return reads, in_python


def plain_columns(columns: Iterable[Column], locale: str) -> tuple[tuple[int, str, int, bool], ...]:
    """Each column's cell index, name, how the C row pass may take its cell
    as it is, and whether it is required (an empty cell is then not applied)."""
    return tuple((index, name, _plain_kind(spec, locale), spec is not None and spec.required)
                 for index, name, spec in columns)  # fmt: skip


def _plain_kind(spec: Field | None, locale: str) -> int:
    """How the C row pass may take a cell of this column as it is."""
    if spec is None:
        return PLAIN_TEXT  # a custom key, trimmed only
    if spec.type is ValueType.DATE:
        return PLAIN_DATE_DMY if day_first(locale) else PLAIN_DATE_MDY
    return _PLAIN.get(spec.type, NEVER)


def fast_text(index: int, spec: Field | None) -> ckinds.FastColumn:
    """How the C pass reads free text: within the field's byte limit (a
    custom key has none). Names a new user needs are the apply layer's rule
    (it knows who is new), so an empty cell is not slow here."""
    limit = spec.max_length if spec is not None else None
    return ckinds.column(index, ckinds.TEXT, limit=limit)


def check_length(b: Batch, spec: Field) -> Post:
    import polars as pl

    limit = spec.max_length or 0
    # Bytes >= characters: a cheap over-approximation, made exact on the few flagged rows.
    name = b.add(f"{spec.name}:length", pl.col(spec.name).str.len_bytes() > limit)

    def post() -> Iterable[Finding]:
        for i, value in b.rows(name, spec.name):
            if len(value) > limit:
                yield finding(
                    "VALUE_TOO_LONG",
                    row_of(i),
                    f"{spec.name} has {len(value)} characters; the limit is {limit}.",
                    column=spec.name,
                    value=value,
                )

    return post


_COMMON_BOOLEANS = sorted(
    {
        "",
        *BOOLEAN_TRUE,
        *BOOLEAN_FALSE,
        *(v.upper() for v in BOOLEAN_TRUE | BOOLEAN_FALSE),
        *(v.title() for v in BOOLEAN_TRUE | BOOLEAN_FALSE),
    }
)


def fast_bool(index: int) -> ckinds.FastColumn:
    """How the C pass reads a boolean: one of the common spellings passes."""
    return ckinds.column(index, ckinds.BOOL, vocabulary=tuple(v.encode() for v in _COMMON_BOOLEANS))


def check_bool(b: Batch, col: str) -> Post:
    import polars as pl

    name = b.add(f"{col}:bool", pl.col(col).is_not_null() & ~pl.col(col).is_in(_COMMON_BOOLEANS))

    def verdict(value: str) -> tuple[str, str] | None:
        if read_bool(value) is not None:
            return None
        return (
            "BOOLEAN_INVALID",
            f'"{value}" is not a yes/no value; use true/false, yes/no or 1/0. It is not applied.',
        )

    return lambda: by_value(b, name, col, verdict)


def check_mobile(b: Batch, col: str) -> Post:
    import polars as pl

    c = pl.col(col)
    mask = c.is_not_null() & (c.str.strip_chars() != "") & ~c.str.strip_chars().str.contains(MOBILE)
    name = b.add(f"{col}:mobile", mask)

    def post() -> Iterable[Finding]:
        for i, value in b.rows(name, col):
            yield finding(
                "MOBILE_INVALID",
                row_of(i),
                f'"{value}" is not a mobile number: use + and digits only, e.g. +15551234567. '
                "It is not applied.",
                column=col,
                value=value,
            )

    return post


@dataclass(slots=True)
class IdFlags:
    """Per-row facts of an id column, kept to judge lost zeros over the whole file."""

    numeric: np.ndarray[Any, Any]
    padded: np.ndarray[Any, Any]
    size: np.ndarray[Any, Any]


def fast_id(index: int, identity: bool) -> ckinds.FastColumn:
    """How the C pass reads an id: hashed as a key; empty is slow only when
    the id is the file's identity (both id columns present)."""
    return ckinds.column(index, ckinds.ID, required=identity)


def check_id(b: Batch, col: str) -> tuple[Post, IdFlags]:
    """Excel damage in an id column (docs/validation.md): apostrophe, 1.23E+13 (row-local);
    the flags for `leading_zeros` (file-wide) are filled when the batch has run."""
    import numpy as np
    import polars as pl

    c = pl.col(col)
    apostrophe = b.add(f"{col}:apostrophe", c.str.starts_with("'"))
    numeric = b.add(f"{col}:numeric", c.str.contains(r"^'?[0-9]+$"))
    zero = b.add(f"{col}:zero", c.str.starts_with("0") | c.str.starts_with("'0"))
    length = b.add(f"{col}:length", c.str.len_bytes())
    empty = np.zeros(0, dtype=bool)
    flags = IdFlags(numeric=empty, padded=empty, size=empty)

    def post() -> Iterable[Finding]:
        df = b.df
        for i, value in b.rows(apostrophe, col):
            yield finding(
                "EMPLOYEE_ID_APOSTROPHE",
                row_of(i),
                f'The leading apostrophe of "{value}" (Excel\'s text marker) is stripped.',
                column=col,
                value=value,
            )
        is_numeric = b.array(numeric)
        odd = np.flatnonzero(~is_numeric & df[col].is_not_null().to_numpy())
        for i, value in rows_at(df, odd, col):
            if re.match(SCIENTIFIC, value.strip()):
                yield finding(
                    "EXCEL_SCIENTIFIC",
                    row_of(i),
                    f'"{value}" looks like a number Excel turned into scientific notation; the real id '
                    "is lost. Format the column as text and export again.",
                    column=col,
                    value=value,
                )
        flags.numeric = is_numeric
        flags.padded = is_numeric & b.array(zero)
        flags.size = (b.array(length).astype(np.int32) - b.array(apostrophe)).astype(np.int32)

    return post, flags


def leading_zeros(
    fetch: Callable[[str, Any], list[str]],
    rec: np.ndarray[Any, Any],
    col: str,
    numeric: np.ndarray[Any, Any],
    padded: np.ndarray[Any, Any],
    size: np.ndarray[Any, Any],
) -> list[Finding]:
    """Ids shorter than the zero-padded norm of their column (docs/validation.md)."""
    import numpy as np

    n_padded = int(padded.sum())
    # Only when zero-padding is the column's norm (half its numeric ids or more).
    if not n_padded or n_padded * 2 < int(numeric.sum()):
        return []
    width = int(np.bincount(size[padded]).argmax())
    short = np.flatnonzero(numeric & ~padded & (size < width)).tolist()
    return [
        finding(
            "LEADING_ZEROS_LOST",
            row_of(int(rec[p])),
            f'"{value}" is shorter than the other ids, which are zero-padded to {width} digits; '
            "Excel may have dropped its leading zeros.",
            column=col,
            value=value,
        )
        for p, value in zip(short, fetch(col, short), strict=True)
    ]
