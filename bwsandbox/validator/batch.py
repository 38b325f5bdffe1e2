"""The vectorised pass the value rules share.

A check registers its column expressions on a Batch and returns a `Post`
closure. The engine evaluates every expression of every check in ONE polars
`select` (polars runs them in parallel), then calls the closures, which
fetch only the flagged rows to write their messages. Columns with few
distinct values (dates, booleans) are judged once per distinct value
(`by_value`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bwsandbox.validator.findings import finding, row_of
from bwsandbox.validator.model import Finding

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


Post = Callable[[], Iterable[Finding]]


class Batch:
    """Column expressions evaluated together in one parallel polars pass."""

    def __init__(self, df: pl.DataFrame) -> None:
        self.df = df
        self._exprs: dict[str, pl.Expr] = {}
        self._out: pl.DataFrame | None = None

    def add(self, name: str, expr: pl.Expr) -> str:
        self._exprs[name] = expr
        return name

    def run(self) -> None:
        self._out = self.df.select([e.alias(n) for n, e in self._exprs.items()]) if self._exprs else None

    def array(self, name: str) -> np.ndarray[Any, Any]:
        assert self._out is not None, "Batch.run() first"
        out: np.ndarray[Any, Any] = self._out[name].to_numpy()
        return out

    def rows(self, name: str, col: str) -> list[tuple[int, str]]:
        import numpy as np

        return rows_at(self.df, np.flatnonzero(self.array(name)), col)


def rows_at(df: pl.DataFrame, positions: Any, col: str) -> list[tuple[int, str]]:
    if not len(positions):
        return []
    rows: list[tuple[int, str]] = df[positions].select("i", col).rows()
    return rows


def by_value(
    b: Batch, name: str, col: str, verdict: Callable[[str], tuple[str, str] | None]
) -> Iterable[Finding]:
    """Rows flagged by `name`, judged once per distinct value."""
    rows = b.rows(name, col)
    cache: dict[str, tuple[str, str] | None] = {}
    for i, value in rows:
        if value not in cache:
            cache[value] = verdict(value) if value.strip() else None
        got = cache[value]
        if got:
            yield finding(got[0], row_of(i), got[1], column=col, value=value)
