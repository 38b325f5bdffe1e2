"""Dialect: the header record, the delimiter and line endings (docs/validation.md).

The delimiter is decided from the header line against the names production
knows (docs/validation.md: EU Excel writes semicolons), never by a statistical sniffer:
a header that splits into known names on `;` but not on `,` is a semicolon file.
"""

from __future__ import annotations

from dataclasses import dataclass

from bwsandbox.spec.fields import (
    CORE_FIELDS,
    DEPARTMENT_FIELDS,
    ENGAGE_FIELDS,
    HEADER_ALIASES,
    normalise_header,
)
from bwsandbox.validator import csvrecords
from bwsandbox.validator.findings import file_finding
from bwsandbox.validator.model import Finding

_KNOWN = frozenset(
    normalise_header(n) for n in (*CORE_FIELDS, *ENGAGE_FIELDS, *DEPARTMENT_FIELDS)
) | frozenset(HEADER_ALIASES)
_OTHER = {";": "semicolons", "\t": "tabs", "|": "pipes"}


@dataclass(frozen=True, slots=True)
class HeaderRecord:
    cells: tuple[str, ...]
    end: int  # byte offset just after the header record's line ending


def header_end(text: bytes) -> int:
    """Byte offset after the first record (quotes respected; header is short)."""
    in_quote = False
    for i, b in enumerate(text):
        if b == 0x22:
            in_quote = not in_quote
        elif in_quote:
            continue
        elif b == 0x0A or (b == 0x0D and text[i + 1 : i + 2] != b"\n"):  # LF, CRLF, or a bare CR
            return i + 1
    return len(text)


def read_header(text: bytes) -> HeaderRecord:
    end = header_end(text)
    line = text[:end].decode("utf-8", errors="replace")
    # As the records are read: a header cell over the csv module's field limit
    # is read all the same (csvrecords), and the limit is left as it is.
    cells = tuple(csvrecords.first(line))
    return HeaderRecord(cells=cells, end=end)


def _known(line: str, sep: str) -> int:
    return sum(1 for cell in line.split(sep) if normalise_header(cell.strip().strip('"')) in _KNOWN)


def delimiter_findings(text: bytes, header_end: int) -> list[Finding]:
    """Reject files whose header is delimited by something other than commas."""
    line = text[:header_end].decode("utf-8", errors="replace").rstrip("\r\n")
    scores = {sep: _known(line, sep) for sep in (",", *_OTHER)}
    best = max(scores, key=lambda s: (scores[s], s == ","))
    if best == "," and scores[","] > 0:
        return []
    if best == "," and "," in line:
        return []  # no known names at all: header rules will say so
    if best == ",":
        # Nothing known anywhere: a single cell with another separator in it.
        best = next((s for s in _OTHER if s in line), ",")
        if best == ",":
            return []
    if best == ";":
        return [
            file_finding(
                "DELIMITER_SEMICOLON",
                "The file is separated by semicolons (';'), as European Excel writes it; production "
                "reads commas only, so nothing would be processed. Save it as 'CSV UTF-8 (Comma "
                "delimited)' or set the list separator to a comma.",
            )
        ]
    return [
        file_finding(
            "DELIMITER_OTHER",
            f"The file is separated by {_OTHER[best]}, not commas; production reads commas only. "
            "Export it with commas as the delimiter.",
        )
    ]
