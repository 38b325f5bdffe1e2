"""The two readers of CSV records, below everything that reads a body.

`structure` chooses between them for a whole file, and the C fast path
(`fastpath`) reads its slow records again with the first one: both see a
record the same way, so a row number is the same whichever path found it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bwsandbox.validator import csvrecords

if TYPE_CHECKING:
    import polars as pl


def parse_record(text: bytes, start: int, end: int, errors: str = "strict") -> list[str]:
    """The cells of the one record at text[start:end], as the csv module reads it.

    The csv module refuses fields over its limit (128 KiB by default, one
    global of the host process, never changed here); polars has no such limit,
    and both readers must see the same file (a huge cell is a finding of its
    own, not a crash): such records are read by `csvrecords`.
    """
    return csvrecords.first(text[start:end].decode("utf-8", errors=errors))


def read_polars(text: bytes, width: int, needed: Sequence[int], skip: int = 1) -> pl.DataFrame | None:
    """The `needed` columns (`c<index>`, all strings) of `text`, read by polars;
    None when polars cannot read it as the scan did (the csv module path then reads it)."""
    import polars as pl

    cols = list(needed) or [0]
    try:
        return pl.read_csv(
            text,
            has_header=False,
            skip_rows=skip,
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
