"""Rules across rows (docs/production.md §3, §4).

Keys (emails lower-cased, ids without the Excel apostrophe) are hashed to
64-bit integers in C (`_cells.c`, the fast path's own function), or by
polars where `_ccells` is not in use (`pure.py`). Duplicates
are equal neighbours after a numpy sort; manager lookups are hash-set
membership; cycles are searched only among the rows that both have a manager
and are one (pointer doubling). Nothing loops over rows in Python; only
flagged rows come back to write their message.
A hash match is confirmed on the real strings before a duplicate is reported,
so a (vanishingly rare) collision can never invent an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bwsandbox.validator import accel
from bwsandbox.validator.batch import Batch
from bwsandbox.validator.findings import finding, row_of
from bwsandbox.validator.model import Finding

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_EMPTY = 0  # hash slot used for "no key" (an empty cell); real keys are remapped off it


def email_key(col: str) -> pl.Expr:
    """Emails match case-insensitively (docs/production.md §3 [decided]), but otherwise
    exactly: an address with stray spaces is invalid, not silently fixed."""
    import polars as pl

    return pl.col(col).str.to_lowercase()


def id_key(col: str) -> pl.Expr:
    """Ids match exactly, once the Excel text marker is stripped (docs/production.md §3)."""
    import polars as pl

    return pl.col(col).str.strip_chars_start("'")


def hash_strings(values: pl.Series) -> np.ndarray[Any, Any]:
    """u64 key hash of each value (C, `_cells.c`: the fast path hashes its
    cells with the same function; else polars, `pure.hash_series`); empty or
    absent values hash to _EMPTY."""
    if not accel.engines().ccells:
        from bwsandbox.validator import pure

        return pure.hash_series(values)
    return hash_values(values.fill_null("").to_list())


def add_folded_hash(
    b: Batch, name: str, col: str, plain: str, key: pl.Expr
) -> Callable[[], np.ndarray[Any, Any]]:
    """The key hash (`hash_strings`) of `key` for a column whose rows mostly are their own key.

    `plain` names a Boolean column of the batch that is true only where
    key(value) == value (an all-lowercase ASCII address, an id without the
    apostrophe): those rows hash the raw value (no new string per row), and
    only the other rows are folded and hashed again, on that subset.
    """
    import numpy as np

    def result() -> np.ndarray[Any, Any]:
        out = hash_strings(b.df[col])  # a writable array (over a bytearray)
        odd = np.flatnonzero(~b.array(plain))
        if len(odd):
            out[odd] = hash_strings(b.df[odd].select(key.fill_null("").alias("k"))["k"])
        return out

    return result


def hash_keys(df: pl.DataFrame, keys: dict[str, pl.Expr]) -> dict[str, np.ndarray[Any, Any]]:
    """u64 hash of each key column (for small frames: departments, the directory)."""
    got = df.select([expr.alias(name) for name, expr in keys.items()])
    return {name: hash_strings(got[name]) for name in keys}


def hash_values(values: Sequence[str]) -> np.ndarray[Any, Any]:
    """The key hash of each str (the directory snapshot's keys; `hash_strings` for a column)."""
    import numpy as np

    if not accel.engines().ccells:
        from bwsandbox.validator import pure

        return pure.hash_list(list(values))
    from bwsandbox.validator import _ccells

    return np.frombuffer(_ccells.hash_strings(values), dtype=np.uint64)  # a list is not copied


def is_in(values: np.ndarray[Any, Any], pool: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Membership of u64 hashes (a polars hash set: linear, multi-threaded)."""
    import numpy as np
    import polars as pl

    if not len(pool) or not len(values):
        return np.zeros(len(values), dtype=bool)
    out: np.ndarray[Any, Any] = pl.Series(values).is_in(pl.Series(pool).implode()).to_numpy()
    return out


def duplicated_rows(keys: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Positions of every row whose (non-empty) key occurs more than once."""
    import numpy as np

    ordered = np.sort(keys)
    ordered = ordered[np.searchsorted(ordered, _EMPTY, side="right") :]  # empty keys sort first
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(is_in(keys, np.unique(ordered[1:][same])))


# Values of some rows of a column, by row position: the rules work on compact
# arrays and fetch the text of flagged rows only (from a frame, or by parsing
# those records again).
Fetch = Callable[[str, Sequence[int]], list[str]]


def frame_fetch(df: pl.DataFrame) -> Fetch:
    def fetch(col: str, positions: Sequence[int]) -> list[str]:
        if not len(positions):
            return []
        got: list[str] = df[col].gather(list(positions)).fill_null("").to_list()
        return got

    return fetch


def duplicates(
    fetch: Fetch,
    rec: np.ndarray[Any, Any],
    col: str,
    keys: np.ndarray[Any, Any],
    code: str,
    message: str | None,
    norm: Callable[[str], pl.Expr],
) -> list[Finding]:
    """Every row sharing a key gets the finding: none of them is the right one."""
    cand = duplicated_rows(keys)
    if not len(cand):
        return []  # (before polars is imported: a clean file's server never loads it, ~33 MB)
    import polars as pl

    sub = pl.DataFrame({"_p": cand, col: fetch(col, cand.tolist())}, schema={"_p": pl.Int64, col: pl.String})
    real = sub.with_columns(norm(col).alias("_k")).filter(pl.col("_k").is_duplicated())  # confirm on text
    out = []
    for p, value, _ in real.rows():
        text = message or f'The {col} "{value}" appears on more than one row; each user once.'
        out.append(finding(code, row_of(int(rec[p])), text, column=col, value=value))
    return out


def cycle_members(parent: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Indices on a cycle of the functional graph `parent` (-1 = no parent).

    After 2^k >= n doublings every pointer that is not -1 lands on a cycle;
    the doubled map permutes each cycle, so its image is exactly the cycle
    nodes. Stops early when every chain has run out (the common, acyclic case).
    """
    import numpy as np

    n = len(parent)
    p = np.where(parent < 0, n, parent).astype(np.int64)
    p = np.append(p, n)  # sentinel n points to itself
    steps = 1
    while steps < n:
        p = p[p]
        steps *= 2
        if (p[:n] == n).all():
            return np.zeros(0, dtype=np.int64)
    return np.unique(p[:n][p[:n] != n])


def manager_self(
    fetch: Fetch,
    rec: np.ndarray[Any, Any],
    *,
    keys: np.ndarray[Any, Any],
    alive: np.ndarray[Any, Any],
    mkeys: np.ndarray[Any, Any],
    mcol: str,
    own_manager: str,
) -> Iterable[Finding]:
    """A row naming its own user as manager: what the file alone shows about
    managers. Whether a manager exists, and loops of managers, depend on the
    directory too, so they are judged once, by the apply layer
    (`ingest/links.py`).

    `keys`/`mkeys`: hashed identity and manager keys per row; `rec`: the
    record index of each row; `alive`: rows that will be applied.
    """
    import numpy as np

    linked = (mkeys != _EMPTY) & alive
    self_rows = np.flatnonzero(linked & (mkeys == keys))
    for m, value in zip(self_rows.tolist(), fetch(mcol, self_rows.tolist()), strict=True):
        yield finding("MANAGER_SELF", row_of(int(rec[m])), own_manager, column=mcol, value=value)
