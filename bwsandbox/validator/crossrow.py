"""Rules across rows (issue #2 "Across rows"; SPEC §3, §4).

Duplicates use polars `is_duplicated` on a normalised key; manager lookups are
`is_in` against the keys of the file and of the directory snapshot; cycles are
found with numpy pointer doubling (O(n log depth), no Python loop over rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bwsandbox.spec import messages
from bwsandbox.validator.findings import finding
from bwsandbox.validator.model import Finding
from bwsandbox.validator.structure import row_of

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


def email_key(col: str) -> pl.Expr:
    """Emails match case-insensitively (SPEC §3 [decided])."""
    import polars as pl

    return pl.col(col).str.strip_chars().str.to_lowercase()


def id_key(col: str) -> pl.Expr:
    import polars as pl

    return pl.col(col).str.strip_chars().str.strip_chars_start("'")


def duplicates(df: pl.DataFrame, col: str, key: pl.Expr, code: str, message: str | None) -> Iterable[Finding]:
    """Every row sharing a key gets the finding: none of them is the right one."""
    import polars as pl

    k = df.select("i", col, key.alias("_k")).filter(pl.col("_k").is_not_null() & (pl.col("_k") != ""))
    for i, value, _ in k.filter(pl.col("_k").is_duplicated()).rows():
        text = message or f'The {col} "{value}" appears on more than one row; each user once.'
        yield finding(code, row_of(i), text, column=col, value=value)


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


def check_manager_links(
    df: pl.DataFrame, *, key: pl.Expr, mkey: pl.Expr, mcol: str, known: Sequence[str], label: str
) -> Iterable[Finding]:
    """Self, not found, and cycles for one manager column (SPEC §3, §4).

    `known`: keys of the directory snapshot. `df` holds live rows only.
    """
    import numpy as np
    import polars as pl

    k = df.select("i", pl.col(mcol).alias("_m"), key.alias("_k"), mkey.alias("_mk"))
    linked = k.filter(pl.col("_mk").is_not_null() & (pl.col("_mk") != ""))
    self_rows = linked.filter(pl.col("_mk") == pl.col("_k"))
    for i, value, *_ in self_rows.rows():
        yield finding("MANAGER_SELF", row_of(i), messages.OWN_MANAGER, column=mcol, value=value)
    in_file = k.filter(pl.col("_k").is_not_null() & (pl.col("_k") != ""))["_k"]
    missing = linked.filter(~pl.col("_mk").is_in(in_file.implode()) & ~pl.col("_mk").is_in(list(known)))
    for i, value, *_ in missing.rows():
        text = (
            messages.manager_not_found(value.strip())
            if label == "email"
            else f"Could not find manager id: {value.strip()}"
        )
        yield finding("MANAGER_NOT_FOUND", row_of(i), text, column=mcol, value=value)
    # Cycles: row position -> position of its manager's row (first row with that key).
    pos = k.with_row_index("_pos").filter(pl.col("_k").is_not_null() & (pl.col("_k") != ""))
    firsts = pos.unique(subset="_k", keep="first").select(
        pl.col("_k").alias("_mk"), pl.col("_pos").alias("_p")
    )
    edges = (
        k.with_row_index("_pos")
        .filter(pl.col("_mk") != pl.col("_k"))
        .join(firsts, on="_mk", how="inner")
        .select("_pos", "_p")
    )
    if edges.height == 0:
        return
    parent = np.full(k.height, -1, dtype=np.int64)
    parent[edges["_pos"].to_numpy()] = edges["_p"].to_numpy()
    members = cycle_members(parent)
    if not len(members):
        return
    rec = k["i"].to_numpy()
    names = k["_m"].to_list()
    keys = k["_k"].to_list()
    for m in members.tolist():
        path = [keys[m]]
        j = int(parent[m])
        while j != m and len(path) < 6:
            path.append(keys[j])
            j = int(parent[j])
        loop = " -> ".join(path + ([keys[m]] if j == m else ["..."]))
        yield finding(
            "MANAGER_CYCLE",
            row_of(int(rec[m])),
            f"The manager chain loops back to this user ({loop}); the manager is not set.",
            column=mcol,
            value=names[m],
        )
