"""Structure: records, cells per record, blank rows, quotes.

The fast path never loops over rows in Python. One pass in C (`_scan.c`,
GIL released, 64 bytes at a time; numpy in `pure.py` where it is not built)
reads the raw bytes with the quote-parity rule of RFC 4180: a comma or
newline is structural iff an even number of `"` precede it. That gives
record boundaries (a quoted newline is inside a record), the cell count of
every record, blank rows and an unclosed quote. Values are then read
column-wise by polars, and the two are cross-checked (same record count) so
a row number is always a record number, never a physical line.

Files whose quoting the parity rule cannot model exactly (a `"` in the middle
of an unquoted field, a bare CR line ending) are read with the csv module
instead, and feed the very same column checks: one engine, two readers.
The csv module's field size limit is left as the host process has it: the
records it refuses are read by `csvrecords`, the same way.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bwsandbox.validator import accel, csvrecords, fastpath
from bwsandbox.validator.findings import finding, row_of
from bwsandbox.validator.model import Finding
from bwsandbox.validator.readers import parse_record, read_polars

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


@dataclass(slots=True)
class Table:
    """Data records of a file, whatever its format, ready for the column checks.

    `frame` holds the needed columns as `c<index>` String columns: "" is an
    empty cell, null an absent value (a JSON object without that key).
    `broken` marks records whose cells cannot be trusted (ragged, invalid
    JSON entry): they get their structure finding and no value findings.
    """

    header: tuple[str, ...]
    n_records: int
    frame: pl.DataFrame | None  # None: read on demand by full_frame()
    blank: np.ndarray[Any, Any]
    broken: np.ndarray[Any, Any]
    findings: list[Finding] = field(default_factory=list)
    fast: bool = False  # polars read every record (CsvRead.parts ran to the end)
    nested: dict[int, tuple[int, ...]] = field(default_factory=dict)  # JSON: record -> nested cells
    _text: bytes = b""
    _start0: int = 0  # offset of the first data record
    _ends: np.ndarray[Any, Any] | None = None
    _records: list[list[str | None]] | None = None
    _needed: tuple[int, ...] = ()

    def full_frame(self) -> pl.DataFrame:
        """The needed columns of every record in one frame (polars, else the csv module)."""
        import polars as pl

        if self.frame is None:
            frame = read_polars(self._text, len(self.header), self._needed)
            if frame is None or frame.height != self.n_records:
                cols = list(self._needed) or [0]
                records = list(self.iter_records())
                frame = pl.DataFrame(
                    {f"c{i}": [r[i] if i < len(r) else "" for r in records] for i in cols},
                    schema={f"c{i}": pl.String for i in cols},
                )
            self.frame = frame
        return self.frame

    def iter_records(self) -> Iterator[Sequence[str | None]]:
        """Every data record in order, as the csv module reads it."""
        if self._records is not None:
            yield from self._records
            return
        ends = self._ends
        if ends is None or not len(ends):
            return
        # Read as a stream over the file's own bytes, decoded a chunk at a
        # time: the whole body as one str (and io.StringIO's copy of it, four
        # bytes a character) would hold five times the file while it is
        # applied (docs/benchmarks.md "Ingest at scale").
        raw = io.BytesIO(self._text)  # shares the bytes, no copy
        raw.seek(self._start0)
        done = 0
        try:
            for cells in csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline="")):
                yield cells
                done += 1
        except csv.Error:
            # A field over the csv module's limit: that record and the rest one
            # by one (the scan's records are the csv module's on this path).
            for rec in range(done, len(ends)):
                start = int(ends[rec - 1]) + 1 if rec else self._start0
                yield parse_record(self._text, start, int(ends[rec]))

    @property
    def text(self) -> bytes:
        """The body the records are read from (UTF-8)."""
        return self._text

    def spans(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None:
        """Where each data record starts in `text`, and where it ends (at
        its LF, or the end); None when the records were read otherwise (JSON,
        the pure engine's csv reading)."""
        import numpy as np

        ends = self._ends
        if ends is None or self._records is not None:
            return None
        starts = np.empty(len(ends), dtype=np.int64)
        if len(ends):
            starts[0] = self._start0
            starts[1:] = ends[:-1] + 1
        return starts, ends

    def record(self, rec: int) -> list[str]:
        """The cells of data record `rec` (from 0) of a file `spans` places, as the csv module reads it."""
        ends = self._ends
        assert ends is not None, "record() reads a file spans() places"
        start = int(ends[rec - 1]) + 1 if rec else self._start0
        return parse_record(self._text, start, int(ends[rec]))

    def originals(self, records: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """Original cells of some records, keyed by spreadsheet row."""
        out: dict[int, tuple[str, ...]] = {}
        for rec in records:
            if self._records is not None:
                if not 0 <= rec < len(self._records):
                    # A record another reader saw: the rules across rows run
                    # on polars' reading while the scan is joined, and polars
                    # can split a file into more records than the csv module
                    # (a quote after a bare CR); those findings are discarded.
                    out[row_of(rec)] = ()
                    continue
                cells = self._records[rec]
                out[row_of(rec)] = tuple("" if c is None else c for c in cells)
                continue
            if self._ends is None or rec >= len(self._ends):
                out[row_of(rec)] = ()  # a file stopped before its records were read
                continue
            start = int(self._ends[rec - 1]) + 1 if rec else self._start0
            out[row_of(rec)] = tuple(parse_record(self._text, start, int(self._ends[rec])))
        return out


@dataclass(slots=True)
class _Scan:
    ends: np.ndarray[Any, Any]  # end offset (exclusive, at the LF or EOF) of each record
    start0: int
    commas: np.ndarray[Any, Any]  # structural commas per record
    blank: np.ndarray[Any, Any]
    empty: np.ndarray[Any, Any]  # empty lines
    maybe_blank: np.ndarray[Any, Any]  # records short enough to be all `""` cells
    crlf: int
    unclosed_at: int | None = None  # offset of the quote that never closes
    stray_at: list[int] = field(default_factory=list)
    needs_fallback: bool = False


def _scan(text: bytes, start: int) -> _Scan:
    """One pass over the body: record ends and structural commas.

    In C (`_cscan`, GIL released) when built, one native pass instead of
    numpy's several over the same bytes (masks, positions, prefix sums); the
    buffers it returns are wrapped, not copied. Else numpy (`pure.scan`),
    which gives the same records.
    """
    import numpy as np

    if not accel.engines().cscan:
        from bwsandbox.validator import pure

        return _Scan(start0=start, **pure.scan(text, start))
    from bwsandbox.validator import _cscan

    got = _cscan.scan(text, start)
    return _Scan(
        ends=np.frombuffer(got["ends"], dtype=np.int64),
        start0=start,
        commas=np.frombuffer(got["commas"], dtype=np.int64),
        blank=np.frombuffer(got["blank"], dtype=np.bool_),
        empty=np.frombuffer(got["empty"], dtype=np.bool_),
        maybe_blank=np.frombuffer(got["maybe_blank"], dtype=np.int64),
        crlf=got["crlf"],
        unclosed_at=got["unclosed_at"],
        stray_at=got["stray_at"],
        needs_fallback=bool(got["stray_at"]) or got["bare_cr"],
    )


def _ragged_findings(
    n_cells: np.ndarray[Any, Any], blank: np.ndarray[Any, Any], width: int
) -> tuple[list[Finding], np.ndarray[Any, Any]]:
    import numpy as np

    broken = (n_cells != width) & ~blank
    findings: list[Finding] = []
    for rec in np.flatnonzero(broken).tolist():
        got = int(n_cells[rec])
        code = "ROW_TOO_FEW_CELLS" if got < width else "ROW_TOO_MANY_CELLS"
        findings.append(
            finding(
                code,
                row_of(rec),
                f"This row has {got} cells but the header has {width}; the row is skipped.",
                value=str(got),
            )
        )
    return findings, broken


_PART_BYTES = 8 << 20  # polars reads big bodies in parts of about this size (peak memory)


def split_points(text: bytes, start: int, parts: int) -> list[tuple[int, int]]:
    """Byte ranges of about `parts` runs of whole records, split at structural newlines.

    A newline is structural iff an even number of quotes precede it (RFC 4180);
    the quotes are counted in C (`_cells.c`), between candidate newlines only,
    with the GIL released; else by `bytes.count` (`pure.split`, same ranges).
    """
    if not accel.engines().ccells:
        from bwsandbox.validator import pure

        return pure.split(text, start, parts)
    from bwsandbox.validator import _ccells

    return _ccells.split(text, start, parts)


class CsvRead:
    """Reading a CSV body: the structure scan runs on a worker thread while
    polars reads the columns, part by part (both release the GIL). The engine
    runs the row rules on each part as it comes (`parts()`), speculatively,
    and `table()` joins the scan to confirm every record.
    """

    def __init__(
        self, text: bytes, header: tuple[str, ...], header_end: int, needed: Sequence[int], submit: Any
    ) -> None:
        self.text, self.header, self.header_end, self.needed = text, header, header_end, needed
        self._submit = submit
        self._scan = submit(_scan, text, header_end)
        self._height: int | None = None  # records polars read, when parts() ran to the end
        self._n_parts = max(1, (len(text) - header_end) // _PART_BYTES)
        # Split points are found on a worker while the first jobs start.
        self._splits = submit(split_points, text, header_end, self._n_parts) if self._n_parts > 1 else None

    @property
    def n_parts(self) -> int:
        """How many parts `parts()` yields (for a progress bar)."""
        return self._n_parts

    def parts(self) -> Iterator[pl.DataFrame]:
        """The needed columns (`c<index>`), in parts of whole records."""
        text, width = self.text, len(self.header)
        height = 0
        if self._n_parts == 1:
            df = read_polars(text, width, self.needed)
            if df is None:
                return
            self._height = df.height
            yield df
            return
        assert self._splits is not None
        for a, b in self._splits.result():
            df = read_polars(text[a:b], width, self.needed, skip=0)
            if df is None:
                return
            height += df.height
            yield df
            del df  # one part in memory at a time
        self._height = height

    def fast_parts(self, plan: fastpath.Plan) -> Iterator[fastpath.FastPart]:
        """The ruled cells judged by the C fast path, in parts of whole
        records; two parts are read at a time on the workers (no GIL)."""
        text = self.text
        if self._n_parts == 1:
            part = fastpath.unpack(fastpath.read_part(text, self.header_end, len(text), plan), plan)
            self._height = part.n
            yield part
            return
        assert self._splits is not None
        spans = iter(self._splits.result())
        pending: deque[Any] = deque()

        def submit_next() -> None:
            span = next(spans, None)
            if span is not None:
                pending.append(self._submit(fastpath.read_part, text, span[0], span[1], plan))

        submit_next()
        submit_next()
        height = 0
        while pending:
            got = pending.popleft().result()
            submit_next()
            part = fastpath.unpack(got, plan)
            height += part.n
            yield part
            del part
        self._height = height

    @property
    def complete(self) -> bool:
        """parts() read every part."""
        return self._height is not None

    def table(self) -> Table:
        """Join the scan and decide: the polars reading, or the exact csv-module path."""
        import numpy as np

        header, text, width = self.header, self.text, len(self.header)
        scan: _Scan = self._scan.result()
        self._scan = None  # the Table keeps what it needs of the scan, nothing more
        findings: list[Finding] = []
        if scan.unclosed_at is not None:
            rec = int(np.searchsorted(scan.ends, scan.unclosed_at))
            return _fatal(
                header,
                finding(
                    "UNCLOSED_QUOTE",
                    row_of(rec),
                    f"A quoted field opened on row {row_of(rec)} never closes, so the rest of the file "
                    "would be read as one value; nothing is processed.",
                ),
            )
        if scan.crlf and scan.crlf < len(scan.ends) - (0 if text.endswith(b"\n") else 1):
            findings.append(
                finding("MIXED_LINE_ENDINGS", None, "Some lines end with CRLF and others with LF.")
            )
        if scan.needs_fallback or (self._height is not None and self._height != len(scan.ends)):
            return _read_fallback(text, header, self.header_end, self.needed, findings, scan)
        n_cells = np.where(scan.empty, 0, scan.commas + 1)
        # A blank row is one whose cells are all empty. Only delimiters: blank
        # for sure; short enough to be all `""`: ask the csv module (few rows).
        blank = scan.blank.copy()
        for rec in scan.maybe_blank.tolist():
            start = int(scan.ends[rec - 1]) + 1 if rec else scan.start0
            blank[rec] = not any(parse_record(text, start, int(scan.ends[rec]), errors="replace"))
        ragged, broken = _ragged_findings(n_cells, blank, width)
        return Table(
            header=header,
            n_records=len(scan.ends),
            frame=None,
            blank=blank,
            broken=broken,
            findings=findings + ragged,
            fast=self._height is not None,
            _text=text,
            _start0=scan.start0,
            _ends=scan.ends,
            _needed=tuple(self.needed),
        )


def _now(fn: Any, *args: Any) -> Any:
    """A finished future: the sequential stand-in for small files."""
    from concurrent.futures import Future

    fut: Future[Any] = Future()
    fut.set_result(fn(*args))
    return fut


def _fatal(header: tuple[str, ...], f: Finding) -> Table:
    import numpy as np
    import polars as pl

    empty = np.zeros(0, dtype=bool)
    return Table(header=header, n_records=0, frame=pl.DataFrame(), blank=empty, broken=empty, findings=[f])


def _read_fallback(
    text: bytes,
    header: tuple[str, ...],
    header_end: int,
    needed: Sequence[int],
    findings: list[Finding],
    scan: _Scan,
) -> Table:
    import numpy as np
    import polars as pl

    width = len(header)
    body = text[header_end:].decode("utf-8")
    records: list[list[str | None]] = [list(r) for r in csvrecords.every(body)]
    for pos in scan.stray_at[:1]:
        rec = int(np.searchsorted(scan.ends, pos))
        findings.append(
            finding(
                "STRAY_QUOTE",
                row_of(rec),
                f"A quote appears inside an unquoted value on row {row_of(rec)} (or after a closing "
                "quote); it is kept as a character. Quote the whole field and double the inner quote.",
            )
        )
    n_cells = np.fromiter((len(r) for r in records), dtype=np.int64, count=len(records))
    blank = np.fromiter((all(not c for c in r) for r in records), dtype=bool, count=len(records))
    ragged, broken = _ragged_findings(n_cells, blank, width)
    frame = pl.DataFrame(
        {f"c{i}": [r[i] if i < len(r) else "" for r in records] for i in (list(needed) or [0])},
        schema={f"c{i}": pl.String for i in (list(needed) or [0])},
    )
    return Table(
        header=header,
        n_records=len(records),
        frame=frame,
        blank=blank,
        broken=broken,
        findings=findings + ragged,
        _records=records,
    )
