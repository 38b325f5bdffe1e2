"""Department files (docs/production.md §3 [doc]): `name` required, `parent`, `is_active`.

Every parent must have its own row; a department with active users cannot be
deactivated (needs a directory snapshot); parent loops are refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from bwsandbox.validator import values
from bwsandbox.validator.batch import Batch
from bwsandbox.validator.crossrow import cycle_members, duplicates, frame_fetch, hash_keys
from bwsandbox.validator.findings import file_finding, finding, row_of
from bwsandbox.validator.model import Context, Finding
from bwsandbox.validator.spaces import SpaceTally

if TYPE_CHECKING:
    import polars as pl


def check_departments(df: pl.DataFrame, context: Context) -> Iterable[Finding]:
    import numpy as np
    import polars as pl

    # docs/production.md §3 "the department file": one version of production's docs says it
    # "must be uploaded manually ... cannot be sent through the HRIS
    # integration", others accept it; the sandbox accepts it and says so.
    yield file_finding(
        "DEPARTMENT_FILE_MANUAL",
        "This is a department file. The sandbox processes it as an SFTP upload, but one version of "
        "production's documentation says department files must be uploaded manually in the Admin "
        "module and cannot be sent through the HRIS integration (other versions accept them): accepting "
        "it over SFTP is the sandbox's rule. Check with Betterworks support before relying on it.",
    )
    spaces = SpaceTally()
    df = spaces.trim(df)
    yield from spaces.findings()
    name_key = pl.col("name").str.strip_chars().str.to_lowercase()
    for i, value in df.filter(pl.col("name").str.strip_chars() == "").select("i", "name").rows():
        yield finding(
            "DEPARTMENT_NAME_REQUIRED",
            row_of(i),
            "The department name is required; the row is skipped.",
            column="name",
            value=value,
        )
    keys = hash_keys(df, {"name": name_key})["name"]
    rec = df["i"].to_numpy()

    def norm(col: str) -> pl.Expr:
        return pl.col(col).str.strip_chars().str.to_lowercase()

    yield from duplicates(frame_fetch(df), rec, "name", keys, "DEPARTMENT_DUPLICATE", None, norm)
    if "is_active" in df.columns:
        batch = Batch(df)
        post = values.check_bool(batch, "is_active")
        batch.run()
        yield from post()
    if "parent" in df.columns:
        parent_key = pl.col("parent").str.strip_chars().str.to_lowercase()
        names = df.select(name_key.alias("k"))["k"]
        k = df.select("i", "parent", name_key.alias("_k"), parent_key.alias("_pk"))
        missing = k.filter((pl.col("_pk") != "") & ~pl.col("_pk").is_in(names.implode()))
        for i, value, *_ in missing.rows():
            yield finding(
                "DEPARTMENT_PARENT_MISSING",
                row_of(i),
                f'The parent department "{value}" has no row of its own in this file; add one.',
                column="parent",
                value=value,
            )
        pos = k.with_row_index("_pos")
        firsts = pos.unique(subset="_k", keep="first").select(
            pl.col("_k").alias("_pk"), pl.col("_pos").alias("_p")
        )
        edges = pos.filter(pl.col("_pk") != "").join(firsts, on="_pk", how="inner").select("_pos", "_p")
        parent = np.full(k.height, -1, dtype=np.int64)
        parent[edges["_pos"].to_numpy()] = edges["_p"].to_numpy()
        recs = k["i"].to_list()
        for m in cycle_members(parent).tolist():
            yield finding(
                "DEPARTMENT_CYCLE",
                row_of(recs[m]),
                "This department is its own ancestor through its parents; break the loop.",
                column="parent",
                value=k["parent"][m],
            )
