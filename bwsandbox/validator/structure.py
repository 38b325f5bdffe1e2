"""Structure: records, cells per record, blank rows, quotes (issue #2 "Structure").

The fast path never loops over rows in Python. It scans the raw bytes with
numpy, one cache-sized chunk at a time (bounded memory), using the quote-parity
rule of RFC 4180: a comma or newline is structural iff an even number of `"`
precede it. That gives record boundaries (a quoted newline is inside a record),
the cell count of every record, blank rows and an unclosed quote. Values are
then read column-wise by polars, and the two are cross-checked (same record
count) so a row number is always a record number, never a physical line.

Files whose quoting the parity rule cannot model exactly (a `"` in the middle
of an unquoted field, a bare CR line ending) are read with the csv module
instead, and feed the very same column checks: one engine, two readers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bwsandbox.validator.findings import finding
from bwsandbox.validator.model import Finding

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_CHUNK = 1 << 20
_NL, _CR, _COMMA, _QUOTE = 0x0A, 0x0D, 0x2C, 0x22


def row_of(record: int) -> int:
    """Spreadsheet row of a data record (0-based): the header is row 1."""
    return record + 2


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
    frame: pl.DataFrame
    blank: np.ndarray[Any, Any]
    broken: np.ndarray[Any, Any]
    findings: list[Finding] = field(default_factory=list)
    _text: bytes = b""
    _starts: np.ndarray[Any, Any] | None = None
    _ends: np.ndarray[Any, Any] | None = None
    _records: list[list[str | None]] | None = None

    def iter_records(self) -> Iterator[Sequence[str | None]]:
        """Every data record in order, as the csv module reads it."""
        if self._records is not None:
            yield from self._records
            return
        if self._starts is None or not len(self._starts):
            return
        body = self._text[int(self._starts[0]) :].decode("utf-8")
        yield from csv.reader(io.StringIO(body, newline=""))

    def originals(self, records: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """Original cells of some records, keyed by spreadsheet row."""
        out: dict[int, tuple[str, ...]] = {}
        for rec in records:
            if self._records is not None:
                cells = self._records[rec]
                out[row_of(rec)] = tuple("" if c is None else c for c in cells)
                continue
            assert self._starts is not None and self._ends is not None
            raw = self._text[int(self._starts[rec]) : int(self._ends[rec])].decode("utf-8")
            parsed = next(csv.reader(io.StringIO(raw, newline="")), [])
            out[row_of(rec)] = tuple(parsed)
        return out


@dataclass(slots=True)
class _Scan:
    ends: np.ndarray[Any, Any]  # end offset (exclusive, at the LF or EOF) of each record
    starts: np.ndarray[Any, Any]
    commas: np.ndarray[Any, Any]  # structural commas per record
    blank: np.ndarray[Any, Any]
    crlf: int
    unclosed_at: int | None = None  # offset of the quote that never closes
    stray_at: list[int] = field(default_factory=list)
    needs_fallback: bool = False


def _scan(text: bytes, start: int) -> _Scan:
    import numpy as np

    a = np.frombuffer(text, dtype=np.uint8)
    n = len(a)
    has_quotes = text.find(b'"', start) != -1
    buf = np.empty(_CHUNK, dtype=bool)
    ends_parts: list[np.ndarray[Any, Any]] = []
    count_parts: list[np.ndarray[Any, Any]] = []
    stray: list[int] = []
    carry = 0  # structural commas after the last structural newline so far
    quotes_before = 0
    crlf_all = 0
    last_open = -1
    for s in range(start, n, _CHUNK):
        ch = a[s : s + _CHUNK]
        b = buf[: len(ch)]
        np.equal(ch, _NL, out=b)
        nl = np.flatnonzero(b) + s
        np.equal(ch, _COMMA, out=b)
        cm = np.flatnonzero(b) + s
        if len(nl):
            crlf_all += int(np.count_nonzero(a[nl[nl > 0] - 1] == _CR))
        if has_quotes:
            np.equal(ch, _QUOTE, out=b)
            q = np.flatnonzero(b) + s
            if len(q):
                nl = nl[((quotes_before + np.searchsorted(q, nl)) & 1) == 0]
                cm = cm[((quotes_before + np.searchsorted(q, cm)) & 1) == 0]
                opening = ((quotes_before + np.arange(len(q))) & 1) == 0
                prev = a[q - 1]
                bad_open = opening & (prev != _COMMA) & (prev != _NL) & (prev != _QUOTE)
                nxt = a[np.minimum(q + 1, n - 1)]
                bad_close = (
                    ~opening & (q + 1 < n) & (nxt != _COMMA) & (nxt != _NL) & (nxt != _CR) & (nxt != _QUOTE)
                )
                bad = np.flatnonzero(bad_open | bad_close)
                if len(bad):
                    stray.extend(int(x) for x in q[bad[:100]])
                opens = q[opening]
                if len(opens):
                    last_open = int(opens[-1])
                quotes_before += len(q)
            elif quotes_before & 1:
                nl, cm = nl[:0], cm[:0]
        elif quotes_before & 1:
            nl, cm = nl[:0], cm[:0]
        if len(nl):
            idx = np.searchsorted(cm, nl)
            counts = np.diff(idx, prepend=0)
            counts[0] += carry
            carry = len(cm) - int(idx[-1])
            ends_parts.append(nl)
            count_parts.append(counts)
        else:
            carry += len(cm)
    ends = np.concatenate(ends_parts) if ends_parts else np.zeros(0, dtype=np.int64)
    commas = np.concatenate(count_parts) if count_parts else np.zeros(0, dtype=np.int64)
    tail_start = int(ends[-1]) + 1 if len(ends) else start
    if tail_start < n:  # a last record without a final newline
        ends = np.append(ends, n)
        commas = np.append(commas, carry)
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = start
        starts[1:] = ends[:-1] + 1
    content = ends - starts
    if len(ends):
        is_crlf = np.zeros(len(ends), dtype=bool)
        inner = (ends < n) & (content > 0)
        is_crlf[inner] = a[ends[inner] - 1] == _CR
        content = content - is_crlf
        crlf = int(np.count_nonzero(is_crlf))
    else:
        crlf = 0
    scan = _Scan(ends=ends, starts=starts, commas=commas, blank=content == commas, crlf=crlf)
    scan.stray_at = stray
    if quotes_before & 1:
        scan.unclosed_at = last_open
    cr_total = text.count(b"\r", start)
    scan.needs_fallback = bool(stray) or cr_total != crlf_all
    return scan


def _read_polars(text: bytes, width: int, needed: Sequence[int]) -> pl.DataFrame | None:
    import polars as pl

    cols = list(needed) or [0]
    try:
        return pl.read_csv(
            text,
            has_header=False,
            skip_rows=1,
            columns=cols,
            schema={f"c{i}": pl.String for i in range(width)},
            empty_string_is_null=False,
            truncate_ragged_lines=True,
            raise_if_empty=False,
            quote_char='"',
            comment_prefix=None,
        )
    except Exception:  # any reader disagreement falls back to the exact csv module path
        return None


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


def read_csv_table(text: bytes, header: tuple[str, ...], header_end: int, needed: Sequence[int]) -> Table:
    """Records of a CSV file (header already read), fast path or csv-module path."""
    import numpy as np

    width = len(header)
    scan = _scan(text, header_end)
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
        findings.append(finding("MIXED_LINE_ENDINGS", None, "Some lines end with CRLF and others with LF."))
    frame = None if scan.needs_fallback else _read_polars(text, width, needed)
    if frame is None or frame.height != len(scan.ends):
        return _read_fallback(text, header, header_end, needed, findings, scan)
    n_cells = np.where(scan.blank & (scan.ends == scan.starts), 0, scan.commas + 1)
    ragged, broken = _ragged_findings(n_cells, scan.blank, width)
    return Table(
        header=header,
        n_records=len(scan.ends),
        frame=frame,
        blank=scan.blank,
        broken=broken,
        findings=findings + ragged,
        _text=text,
        _starts=scan.starts,
        _ends=scan.ends,
    )


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
    records: list[list[str | None]] = [list(r) for r in csv.reader(io.StringIO(body, newline=""))]
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
