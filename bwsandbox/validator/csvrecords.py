"""The csv module's reader, without its field size limit.

`csv.reader` refuses a field longer than `csv.field_size_limit()` (128 KiB
by default), and that limit is one global of the host process: the
validator, a guest in integrators' processes, must not change it. A huge
cell is not a reason to crash either (a value over the template's limit is
a finding of its own), so records the csv module refuses are read here
instead, exactly as `csv.reader(io.StringIO(text, newline=""))` reads them
with the default dialect (delimiter `,`, quote `"`, doubled quotes, not
strict) and no limit. The csv module stays the reader of every other
record: it is C, this is Python.

The reader's states (CPython's Modules/_csv.c), as they apply here: the
input is cut into lines at `\\r\\n`, `\\r` or `\\n`; outside quotes a line end
ends the record, an empty line is the record []; a quote opens a quoted
field only at the start of a field; inside one, a doubled quote is a quote,
line ends are kept, and a quote followed by anything but a delimiter, a
line end or a quote closes it and the rest of the field is read unquoted;
a quote inside an unquoted field is a character; input that ends inside
quotes ends the field and its record.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

_UNQUOTED_END = re.compile(r"[,\r\n]")


def read(text: str) -> Iterator[list[str]]:
    """Every record of `text`, as csv.reader reads it, however long its fields."""
    n = len(text)
    i = 0
    while i < n:
        if text[i] in "\r\n":  # an empty line
            i = _after_line_end(text, i)
            yield []
            continue
        fields: list[str] = []
        while True:  # one field per turn, i at its start
            parts: list[str] = []
            if i < n and text[i] == '"':
                i += 1
                while True:
                    close = text.find('"', i)
                    if close < 0:  # the input ends inside quotes: so do the field and the record
                        parts.append(text[i:])
                        fields.append("".join(parts))
                        yield fields
                        return
                    parts.append(text[i:close])
                    i = close + 1
                    if i < n and text[i] == '"':  # a doubled quote
                        parts.append('"')
                        i += 1
                        continue
                    break
                if i >= n or text[i] in ",\r\n":
                    stop = i
                else:  # text after the closing quote: kept, the field goes on unquoted
                    found = _UNQUOTED_END.search(text, i)
                    stop = found.start() if found else n
                    parts.append(text[i:stop])
            else:
                found = _UNQUOTED_END.search(text, i)
                stop = found.start() if found else n
                parts.append(text[i:stop])
            fields.append("".join(parts))
            if stop >= n:
                yield fields
                return
            if text[stop] == ",":
                i = stop + 1
                continue
            i = _after_line_end(text, stop)
            yield fields
            break


def _after_line_end(text: str, at: int) -> int:
    """The offset after the line end at `at` (`\\r\\n` is one line end)."""
    return at + 2 if text.startswith("\r\n", at) else at + 1


def first(text: str) -> list[str]:
    """The first record of `text` (the csv module's reading, unless it refuses)."""
    try:
        return next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error:  # a field over csv.field_size_limit()
        return next(read(text), [])


def every(text: str) -> list[list[str]]:
    """Every record of `text` (the csv module's reading, unless it refuses)."""
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:  # a field over csv.field_size_limit()
        return list(read(text))
