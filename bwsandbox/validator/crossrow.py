"""Rules across rows (issue #2 "Across rows"; SPEC §3, §4).

Keys (emails lower-cased, ids without the Excel apostrophe) are hashed to
64-bit integers by polars, sorted once by numpy, and that one sorted index
answers duplicates (equal neighbours), manager lookups (searchsorted) and the
manager of each row (for cycles, found by pointer doubling). Nothing loops
over rows in Python; only flagged rows come back to write their message.
A hash match is confirmed on the real strings before a duplicate is reported,
so a (vanishingly rare) collision can never invent an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bwsandbox.validator.findings import finding
from bwsandbox.validator.model import Finding
from bwsandbox.validator.structure import row_of

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_EMPTY = 0  # hash slot used for "no key" (an empty cell); real keys are remapped off it


def email_key(col: str) -> pl.Expr:
    """Emails match case-insensitively (SPEC §3 [decided])."""
    import polars as pl

    return pl.col(col).str.strip_chars().str.to_lowercase()


def id_key(col: str) -> pl.Expr:
    import polars as pl

    return pl.col(col).str.strip_chars().str.strip_chars_start("'")


def hash_keys(df: pl.DataFrame, keys: dict[str, pl.Expr]) -> dict[str, np.ndarray[Any, Any]]:
    """u64 hash of each key column; an empty or absent key hashes to _EMPTY.

    The keys are normalised in one pass and hashed in a second, so no
    normalisation (strip, lower-case) is computed twice.
    """
    import numpy as np
    import polars as pl

    if not keys:
        return {}
    norm = df.select([expr.fill_null("").alias(name) for name, expr in keys.items()])
    parts = norm.select(
        [pl.col(n).hash(seed=0).alias(n) for n in keys]
        + [pl.col(n).str.len_bytes().alias(f"_{n}") for n in keys]
    )
    out = {}
    for name in keys:
        h = parts[name].to_numpy() | np.uint64(1)
        h[parts[f"_{name}"].to_numpy() == 0] = _EMPTY
        out[name] = h
    return out


def hash_values(values: Sequence[str]) -> np.ndarray[Any, Any]:
    """The same hash as `hash_keys`, for keys that come from the directory snapshot."""
    import polars as pl

    s = pl.DataFrame({"k": list(values)}, schema={"k": pl.String})
    return hash_keys(s, {"k": pl.col("k")})["k"]


class KeyIndex:
    """Sorted hashes of the rows' keys: duplicates and lookups in O(n log n)."""

    def __init__(self, keys: np.ndarray[Any, Any], alive: np.ndarray[Any, Any] | None = None) -> None:
        import numpy as np

        ok = keys != _EMPTY
        if alive is not None:
            ok &= alive
        rows = np.flatnonzero(ok)
        order = np.argsort(keys[rows])
        self.rows = rows[order]  # row positions, by key
        self.sorted = keys[self.rows]

    def duplicated(self) -> np.ndarray[Any, Any]:
        """Positions of every row whose key occurs more than once."""
        import numpy as np

        same = self.sorted[1:] == self.sorted[:-1]
        if not same.any():
            return np.zeros(0, dtype=np.int64)
        hit = np.zeros(len(self.sorted), dtype=bool)
        hit[1:] |= same
        hit[:-1] |= same
        return np.sort(self.rows[hit])

    def lookup(self, query: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Row position holding each queried key, or -1 (keys are unique among
        live rows: duplicates are skipped rows)."""
        import numpy as np

        if not len(self.sorted):
            return np.full(len(query), -1, dtype=np.int64)
        pos = np.searchsorted(self.sorted, query)
        pos_c = np.minimum(pos, len(self.sorted) - 1)
        found = (self.sorted[pos_c] == query) & (query != _EMPTY)
        return np.where(found, self.rows[pos_c], -1)


def duplicates(
    df: pl.DataFrame, col: str, index: KeyIndex, code: str, message: str | None, norm: pl.Expr
) -> list[Finding]:
    """Every row sharing a key gets the finding: none of them is the right one."""
    import polars as pl

    cand = index.duplicated()
    if not len(cand):
        return []
    sub = df[cand].select("i", col, norm.alias("_k"))
    real = sub.filter(pl.col("_k").is_duplicated())  # confirm on the strings
    out = []
    for i, value, _ in real.rows():
        text = message or f'The {col} "{value}" appears on more than one row; each user once.'
        out.append(finding(code, row_of(i), text, column=col, value=value))
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


def manager_links(
    df: pl.DataFrame,
    *,
    keys: np.ndarray[Any, Any],
    alive: np.ndarray[Any, Any],
    mkeys: np.ndarray[Any, Any],
    mcol: str,
    known: np.ndarray[Any, Any],
    not_found: Any,
    own_manager: str,
    index: KeyIndex | None = None,
) -> Iterable[Finding]:
    """Self, not found, and cycles for one manager column (SPEC §3, §4).

    `keys`/`mkeys`: hashed identity and manager keys per row of `df`;
    `alive`: rows that will be applied (a skipped row is nobody's manager);
    `known`: hashed keys of the directory snapshot; `index`: a KeyIndex of
    `keys` over the same live rows, to reuse.
    """
    import numpy as np

    linked = (mkeys != _EMPTY) & alive
    if not linked.any():
        return
    self_rows = np.flatnonzero(linked & (mkeys == keys))
    index = index or KeyIndex(keys, alive)
    target = index.lookup(mkeys)
    in_dir = np.isin(mkeys, known) if len(known) else np.zeros(len(mkeys), dtype=bool)
    missing = np.flatnonzero(linked & (target < 0) & ~in_dir)
    values = df[mcol]
    rec = df["i"]
    for m in self_rows.tolist():
        yield finding("MANAGER_SELF", row_of(rec[m]), own_manager, column=mcol, value=values[m])
    for m in missing.tolist():
        yield finding(
            "MANAGER_NOT_FOUND", row_of(rec[m]), not_found(values[m].strip()), column=mcol, value=values[m]
        )
    parent = np.where(linked & (mkeys != keys), target, -1)
    members = cycle_members(parent)
    if not len(members):
        return
    for m in members.tolist():
        path = [values[m]]
        j = int(parent[m])
        while j != m and len(path) < 6:
            path.append(values[j])
            j = int(parent[j])
        loop = " -> ".join(v.strip() for v in path) + (" -> ..." if j != m else "")
        yield finding(
            "MANAGER_CYCLE",
            row_of(rec[m]),
            f"The manager chain loops back to this user (managers: {loop}); the manager is not set.",
            column=mcol,
            value=values[m],
        )
