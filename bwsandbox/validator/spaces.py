"""Spaces around values (docs/production.md §6 [decided]): trimmed, with a warning.

Production does not document what it does with `" Ada "`; the sandbox trims
the spaces (values.SPACES: tab and Unicode's space separators) before any
rule reads the value, so `" ada@example.com"` is a valid address and
`" 00042"` the id `00042`, and says so once per column: how many values, on
which rows, and that trimming is the sandbox's rule. Every engine reaches the
same answer: the polars path trims each part here, and the C fast path sends
every value with such spaces to the exact rules (`_cells.c`, edge_space),
which trim it here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bwsandbox.spec.fields import SPACES
from bwsandbox.validator.findings import file_finding, row_of
from bwsandbox.validator.model import Finding

if TYPE_CHECKING:
    import polars as pl

_CLASS = "[" + "".join(f"\\x{{{ord(c):04X}}}" for c in SPACES) + "]"  # polars (Rust) regex syntax
EDGE = f"^{_CLASS}|{_CLASS}$"  # a value that starts or ends with a space
ROWS_NAMED = 5

RULE = ("Production does not document how it treats spaces around a value; "
        "trimming them is the sandbox's rule.")


@dataclass(slots=True)
class _Column:
    count: int = 0
    rows: list[int] = field(default_factory=list)  # the first ROWS_NAMED, in file order
    example: str | None = None


class SpaceTally:
    """The values with spaces around them, per column, over every part of a file."""

    def __init__(self) -> None:
        self._columns: dict[str, _Column] = {}

    def trim(self, df: pl.DataFrame) -> pl.DataFrame:
        """`df` with its values trimmed (column `i`: record index); tallies what changed."""
        import polars as pl

        names = [c for c, t in df.schema.items() if c != "i" and t == pl.String]
        if not names or not df.height:
            return df
        flags = df.select([pl.col(c).str.contains(EDGE).fill_null(False).alias(c) for c in names])
        spaced = [c for c in names if flags[c].any()]
        for c in spaced:
            hit = df.filter(flags[c]).select("i", c)
            column = self._columns.setdefault(c, _Column())
            column.count += hit.height
            if len(column.rows) < ROWS_NAMED:
                column.rows += [row_of(int(i)) for i in hit["i"].head(ROWS_NAMED - len(column.rows))]
            if column.example is None:
                column.example = hit[c][0]
        if not spaced:
            return df
        return df.with_columns([pl.col(c).str.strip_chars(SPACES) for c in spaced])

    def findings(self) -> list[Finding]:
        out = []
        for name, column in sorted(self._columns.items()):
            rows = sorted(column.rows)
            shown = ", ".join(map(str, rows))
            more = f" and {column.count - len(rows)} more" if column.count > len(rows) else ""
            what = "1 value" if column.count == 1 else f"{column.count} values"
            verb = "has" if column.count == 1 else "have"
            out.append(file_finding(
                "VALUE_WHITESPACE",
                f'{what} in "{name}" {verb} spaces before or after {"it" if column.count == 1 else "them"} '
                f"(row{'s' if column.count > 1 else ''} {shown}{more}): trimmed before being read and "
                f"applied. {RULE}",
                column=name, value=column.example,
            ))  # fmt: skip
        return out
