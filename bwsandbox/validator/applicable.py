"""The rows ingest may apply (`Validation.applicable()`): every record the
file alone lets through, in file order, as an `ApplicableRow`; or, for a
CSV file whose records the structure scan placed, a batch at a time by
their place in the file's bytes (`Applicable.batches`), so the apply's
quick yes (`ingest/quick.py`) reads the common record in C and a row is
made only of the others (docs/benchmarks.md "Ingest at scale").

A row's values are its processed columns' cells through their normalisers
(`values.row_values`), without the values a value-scope error refused
(`dropped`, which the apply must not read as missing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bwsandbox.validator import values
from bwsandbox.validator.findings import row_of
from bwsandbox.validator.model import ApplicableRow

if TYPE_CHECKING:
    import numpy as np

    from bwsandbox.validator.structure import Table

_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Records the file lets through, in file order: each one by its number
    (`recs`, from 0) and its bytes (`text[starts[k]:ends[k]]`, ending at its
    LF), or as a row made already (`made`: a record with a value refused,
    by its place in the batch)."""

    text: bytes
    recs: list[int]
    starts: list[int]
    ends: list[int]
    made: Mapping[int, ApplicableRow]
    row: Callable[[int], ApplicableRow]  # the row of a record (`recs[k]`), parsed as every row is


class Applicable(Iterator[ApplicableRow]):
    """The applicable rows of one validation, one pass (`Validation.applicable()` makes a new one)."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[tuple[int, str]],
        template: Mapping[str, Any],
        locale: str,
        skipped: set[int],
        drops: Mapping[int, set[str]],
    ) -> None:
        self._table = table
        spec = [(i, n, template.get(n)) for i, n in columns]
        self._specs, self._whole = values.row_values(spec, locale)
        # Each column as the C record reader takes it (`_rows.c` quick_record).
        self.plain = values.plain_columns(spec, locale)
        self._width = max((i for i, _ in columns), default=-1) + 1
        self._skipped = skipped
        self._drops = drops
        self._rows: Iterator[ApplicableRow] | None = None

    def __iter__(self) -> Iterator[ApplicableRow]:
        # The generator itself (a row costs no call through __next__), on the one pass.
        if self._rows is None:
            self._rows = self._each()
        return self._rows

    def __next__(self) -> ApplicableRow:
        return next(iter(self))

    def _each(self) -> Iterator[ApplicableRow]:
        blank, skipped, row = self._table.blank.tolist(), self._skipped, self._row
        for rec, cells in enumerate(self._table.iter_records()):
            if not blank[rec] and rec not in skipped:
                yield row(rec, cells)

    def _row(self, rec: int, cells: Sequence[str | None]) -> ApplicableRow:
        dropped = self._drops.get(rec)
        if dropped is None and len(cells) >= self._width and None not in cells:  # the common row
            return ApplicableRow(row=row_of(rec), values=self._whole(cells), dropped=_NONE)  # type: ignore[arg-type]
        out = {}
        for idx, field_name, read in self._specs:
            cell = cells[idx] if idx < len(cells) else None
            if cell is None or (dropped is not None and field_name in dropped):
                continue
            value = read(cell)
            if value is not None:
                out[field_name] = value
        return ApplicableRow(row=row_of(rec), values=out, dropped=frozenset(dropped) if dropped else _NONE)

    def batches(self, size: int) -> Iterator[RecordBatch] | None:
        """The rows `size` records at a time, by their bytes; None for a
        file whose records the scan did not place (JSON, the pure engine's
        records), which gives its rows one by one."""
        spans = self._table.spans()
        if spans is None:
            return None
        return self._batches(size, *spans)

    def _batches(
        self, size: int, starts: np.ndarray[Any, Any], ends: np.ndarray[Any, Any]
    ) -> Iterator[RecordBatch]:
        import numpy as np

        keep = ~self._table.blank
        keep[sorted(r for r in self._skipped if 0 <= r < len(keep))] = False
        recs = np.flatnonzero(keep)
        for at in range(0, len(recs), size):
            chunk = recs[at : at + size]
            batch = chunk.tolist()
            made = {k: self.row(rec) for k, rec in enumerate(batch) if rec in self._drops}
            yield RecordBatch(text=self._table.text, recs=batch, starts=starts[chunk].tolist(),
                              ends=ends[chunk].tolist(), made=made, row=self.row)  # fmt: skip

    def row(self, rec: int) -> ApplicableRow:
        """The row of record `rec` (from 0), parsed alone."""
        return self._row(rec, self._table.record(rec))
