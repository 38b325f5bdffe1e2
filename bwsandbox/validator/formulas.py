"""Cells a spreadsheet would run as formulas ("CSV injection", OWASP).

The Technical Contact opens the error file in Excel; a cell copied from the
feed that starts with `=`, `+`, `-` or `@` (or a tab or CR that Excel drops
first) is read there as a formula: `=HYPERLINK(...)`, or DDE such as
`=cmd|' /C calc'!A0`. So:

- `safe_cell()`: every CSV the sandbox writes passes each cell through it;
  a formula-leading cell gets OWASP's neutraliser, a leading `'`. Signed
  numbers and phone numbers (`-5`, `+1 (555) 010-2345`: digits, spaces and
  `( ) . , / + -` only) are left alone: without a letter or a quote there is
  no function, reference or DDE call to run;
- `formula_findings()`: the validator warns (`VALUE_FORMULA`) about such a
  value in a processed column of a feed; production's handling is not
  documented (docs/security.md "CSV injection" [decided]: the value is applied as sent).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from bwsandbox.validator.findings import finding
from bwsandbox.validator.model import Finding

if TYPE_CHECKING:
    from bwsandbox.validator.structure import Table

LEADERS = ("=", "+", "-", "@", "\t", "\r")
_HARMLESS = re.compile(r"[+\-][\d\s().,/+\-]*")  # a signed number or a phone number
# Where a cell of a CSV body may start with a formula leader (a superset:
# each record found is then read exactly). A CR before an LF is a line end;
# an unquoted sign followed by a number up to the end of the cell is not a
# candidate (a column of phone numbers would make every record one). No
# comma in that class: the look-ahead stops at the cell's end, so the pass
# stays linear. A quoted cell may hold a comma or a line end after a
# number ("-1,cmd|..."), so a quoted sign is always a candidate.
_CANDIDATE = re.compile(
    rb'(?:\A|[,\n\r])(?:"(?:[=@\t+\-]|\r(?!\n))|[=@\t]|\r(?!\n)|[+\-](?![\d \t().\/+\-]*"?(?:[,\r\n]|\Z)))'
)
_JSON_CANDIDATE = re.compile(rb'"(?:[=+\-@\t\r]|\\[tr])')  # a JSON string that may start with one
_SHOWN = 200  # characters of the value a finding quotes


def needs_prefix(cell: str) -> bool:
    """Whether a spreadsheet would read this cell as a formula (OWASP's
    leaders), signed numbers and phone numbers aside."""
    return cell.startswith(LEADERS) and not _HARMLESS.fullmatch(cell)


def safe_cell(cell: str) -> str:
    """The cell as the sandbox writes it into a CSV file: `'` before a formula."""
    return "'" + cell if needs_prefix(cell) else cell


def safe_row(cells: Iterable[str]) -> list[str]:
    return [safe_cell(c) for c in cells]


def looks_like_formula(value: str) -> bool:
    """What the validator warns about: a formula leader, once the tabs and
    CRs a spreadsheet drops are gone (a lone leading tab is only whitespace)."""
    return needs_prefix(value.lstrip("\t\r"))


def formula_findings(text: bytes | None, table: Table, columns: Mapping[int, str]) -> list[Finding]:
    """VALUE_FORMULA for each processed cell that looks like a formula.

    A CSV body is searched as bytes first (one regex pass, no record is
    parsed unless a cell in it may start with a leader); records read
    another way (JSON, the csv module's fallback) are checked cell by cell.
    """
    if not columns:
        return []
    if table._records is not None:
        if text is not None and not (_CANDIDATE.search(text) or _JSON_CANDIDATE.search(text)):
            return []  # no cell anywhere can start with a leader: no need to look at each
        records: Iterable[tuple[int, Sequence[str | None]]] = enumerate(table._records)
    elif text is not None and table._ends is not None and len(table._ends):
        records = _candidates(text, table)
    else:
        return []
    out: list[Finding] = []
    blank, broken = table.blank, table.broken
    for rec, cells in records:
        if rec >= len(blank) or blank[rec] or broken[rec]:
            continue  # a ragged row is skipped whole: its cells are not values
        for index, name in columns.items():
            cell = cells[index] if index < len(cells) else None
            if cell and looks_like_formula(cell):
                out.append(_finding(rec, name, cell))
    return out


def _candidates(text: bytes, table: Table) -> Iterable[tuple[int, Sequence[str]]]:
    import numpy as np

    assert table._ends is not None
    body = table._start0
    found = candidate_leaders(text, max(body - 1, 0))
    if not found:
        return []
    recs = np.unique(np.searchsorted(table._ends, np.asarray(found, dtype=np.int64), side="right"))
    recs = recs[recs < table.n_records]
    got = table.originals(recs.tolist())
    return [(int(r), got[int(r) + 2]) for r in recs]


_SCAN_PART = 4 * 1024**2  # bytes of the body classified at a time: bounded temporaries


def candidate_leaders(text: bytes, start: int = 0, *, part: int = _SCAN_PART) -> list[int]:
    """Where `_CANDIDATE` matches in `text` from `start` on, as
    `[m.end() - 1 for m in _CANDIDATE.finditer(text, start)]` gives them
    (the leader's position), found without trying the pattern at every
    comma: a match starts at the text's start or at a comma, LF or CR
    followed by a leader (after an optional quote), so those positions are
    found first (`match_starts`) and the pattern itself decides only there.
    The pattern tried at each of a 1,000,000-row feed's 11 million
    separators took 3.7 s; the C pass 0.07 s, numpy 0.5 s
    (docs/benchmarks.md "Ingest at scale")."""
    found: list[int] = []
    end = start
    for at in match_starts(text, start, part=part):
        if at < end:
            continue  # inside the previous match, as finditer resumes after it
        match = _CANDIDATE.match(text, at)
        if match is not None:
            found.append(match.end() - 1)
            end = match.end()
    return found


def match_starts(text: bytes, start: int = 0, *, part: int = _SCAN_PART) -> list[int]:
    """Every position from `start` on where `_CANDIDATE` may match, in order:
    the text's start (`\\A`), and each comma, LF or CR followed by a leader
    (= @ tab + -, or a CR without its LF), itself after an optional quote.
    One pass of the structure scan's C module (`_cscan.leaders`) when it is
    built; else numpy marks them a `part` of the bytes at a time (bounded
    temporaries). Both give the same list (a property test)."""
    import numpy as np

    from bwsandbox.validator import accel

    n = len(text)
    if not 0 <= start <= n:
        raise ValueError(f"start {start} is outside the text (0..{n})")
    starts: list[int] = [0] if start == 0 and n else []  # \A: only at the real start of the text
    if accel.engines().cscan:
        from bwsandbox.validator import _cscan

        found: list[int] = np.frombuffer(_cscan.leaders(text, start), dtype=np.int64).tolist()
        return starts + found
    table = _classes()
    for lo in range(start, n, part):
        hi = min(lo + part, n)
        # The part's bytes and the three after it (a start needs them), classified.
        cls = np.frombuffer(text[lo : hi + 3].translate(table), dtype=np.uint8)
        size = len(cls)
        lead = (cls & _LEAD) != 0
        # A CR is a leader when no LF follows it (the text's last byte included).
        lead[:-1] |= ((cls[:-1] & _CR) != 0) & ((cls[1:] & _LF) == 0)
        if lo + size == n and cls[-1] & _CR:
            lead[-1] = True
        width = hi - lo
        nxt = np.zeros(width, dtype=bool)  # a leader follows, after an optional quote
        m = min(width, size - 1)
        nxt[:m] = lead[1 : m + 1]
        m = min(width, size - 2)
        if m > 0:
            nxt[:m] |= ((cls[1 : m + 1] & _QUOTE) != 0) & lead[2 : m + 2]
        sep = (cls[:width] & _SEP) != 0
        starts.extend((np.flatnonzero(sep & nxt) + lo).tolist())
    return starts


@functools.cache
def _classes() -> bytes:
    """Each byte's class, as a `bytes.translate` table: bits for a separator
    a match may start at, a leader, CR, LF and the quote."""
    table = bytearray(256)
    for byte in b",\n\r":
        table[byte] |= _SEP
    for byte in b"=@\t+-":
        table[byte] |= _LEAD
    table[ord("\r")] |= _CR
    table[ord("\n")] |= _LF
    table[ord('"')] |= _QUOTE
    return bytes(table)


_SEP, _LEAD, _CR, _LF, _QUOTE = 1, 2, 4, 8, 16


def _finding(rec: int, column: str, value: str) -> Finding:
    shown = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
    return finding(
        "VALUE_FORMULA",
        rec + 2,
        f"'{shown}' starts like a spreadsheet formula: Excel or LibreOffice would run it when a CSV "
        "holding it is opened (CSV injection). It is applied as sent; the sandbox's own CSV files "
        "write it with a leading '.",
        column=column,
        value=shown,
    )
