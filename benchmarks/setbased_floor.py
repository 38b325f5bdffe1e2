"""What a set-based apply could reach: its core measured against the bare
insert in one run (docs/benchmarks.md "Ingest at scale", "The set-based
floor").

`python -m benchmarks.setbased_floor [--rows N]`

Not the sandbox's rules: a measurement of the design the targets need
("What is left"), to know what it can reach before the rules are rewritten
for it. Each scenario runs in a fresh child process (its peak RSS is its
own), on the apply benchmark's feeds, from the file's bytes to the commit:

- rows: the feed read with the csv module and each cell through the
  sandbox's own normaliser for its column (`values.normaliser`), as a tuple
  (no dict per row), streamed by `executemany` into a TEMP table, which
  never takes the store's write lock;
- identity: each row's user found by a join on `dir_users (tenant,
  email_key)`;
- then, in one write transaction: the new users inserted by one
  `INSERT … SELECT` (their fields as JSON made by SQLite: `json_object`
  of the non-empty cells, one `dir_batches` row); for the users already
  stored, the file's cells laid over the stored fields by `json_patch`
  (an empty cell clears: a JSON null), the users whose fields that changes
  kept in a TEMP table, their creations copied into `dir_history`, one
  history row each with the values replaced and set (`json_each`), their
  rows updated; one directory rule that needs every user, "the manager is
  an active user once the file is applied" (a join), counted;
- commit.

Left out, so the figures are a floor of that design, not of the rules:
the validator (0.25 s at 300,000 rows), the other directory rules (ids,
loops, licences, departments, manual edits), the report and the email.
Scenarios: first (an empty store), resend (the same file again: nothing
changes) and change10 (every tenth user's title changed), each on a copy of
the store the first load left. Prints a table and writes
benchmarks/out/setbased-floor-<N>.json. Not a `bench_` module: `python -m
benchmarks` does not run it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.bench_apply import DEFAULT_ROWS, OUT, ROOT, baseline, feeds

TENANT = "bench"
AT = "2026-12-01T09:00:00+00:00"


def _rows(feed: Path, header_out: list[str]) -> Iterator[tuple[Any, ...]]:
    """(row, email key, cells normalised…) per record, streamed."""
    from bwsandbox.spec.fields import CORE_FIELDS
    from bwsandbox.validator import values

    with feed.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        header_out.extend(header)
        reads = [values.normaliser(CORE_FIELDS.get(name), "en-US") for name in header]
        email = header.index("email")
        for row, cells in enumerate(reader, 2):
            normal = [read(cell) or "" for read, cell in zip(reads, cells, strict=True)]
            yield (row, normal[email].lower(), *normal)


def _load(conn: sqlite3.Connection, feed: Path) -> tuple[list[str], list[str]]:
    """The file's rows into TEMP table f (its uid column is filled by the identity join)."""
    header: list[str] = []
    rows = _rows(feed, header)
    first = next(rows)
    cols = [f"c{i}" for i in range(len(header))]
    conn.execute(f"CREATE TEMP TABLE f (row INTEGER, key TEXT, {', '.join(cols)}, uid INTEGER)")
    insert = f"INSERT INTO temp.f (row, key, {', '.join(cols)}) VALUES ({', '.join('?' * (len(cols) + 2))})"
    conn.execute(insert, first)
    conn.executemany(insert, rows)
    return header, cols


def _counts(conn: sqlite3.Connection, table: str) -> tuple[int, int]:
    """The highest uid stored, and how many of the file's rows are new users."""
    base = conn.execute(f"SELECT coalesce(max(uid), 0) FROM {table} WHERE tenant = ?", (TENANT,)).fetchone()
    created = conn.execute("SELECT count(*) FROM temp.f WHERE uid IS NULL").fetchone()
    return int(base[0]), int(created[0])


def _json_core(conn: sqlite3.Connection, header: list[str], cols: list[str], table: str) -> tuple[int, int]:
    """The store's layout: fields as JSON (`json_object`, `json_patch`)."""
    cells = ", ".join(f"'{n}', NULLIF({c}, '')" for n, c in zip(header, cols, strict=True))
    patch = f"json_object({cells})"  # an empty cell: null, which json_patch reads as "remove"
    base, created = _counts(conn, table)
    if created:
        batch = conn.execute(
            "INSERT INTO dir_batches (tenant, at, source_kind, source, file_id)"
            " VALUES (?, ?, 'file', 'feed', 1)",
            (TENANT, AT),
        ).lastrowid
        conn.execute(
            "INSERT INTO dir_users (tenant, uid, email_key, active, fields_json, created_batch, created_hid,"
            f" created_row) SELECT ?, ? + row, key, 1, json_patch('{{}}', {patch}), ?, row, row"
            " FROM temp.f WHERE uid IS NULL",
            (TENANT, base, batch),
        )
    # The stored users: the file's cells over their fields; the changed ones kept.
    conn.execute(
        "CREATE TEMP TABLE ch AS SELECT u.uid AS uid, u.email_key AS key, f.row AS row,"
        f" u.fields_json AS before, json_patch(u.fields_json, {patch}) AS after"
        " FROM temp.f AS f JOIN dir_users AS u ON u.tenant = ? AND u.uid = f.uid",
        (TENANT,),
    )
    conn.execute("DELETE FROM temp.ch WHERE after = before")
    conn.execute("CREATE UNIQUE INDEX temp.ch_uid ON ch (uid)")
    changed = conn.execute("SELECT count(*) FROM temp.ch").fetchone()[0]
    if changed:
        conn.execute(
            "INSERT INTO dir_history (id, tenant, at, subject_kind, subject, action, before_json, after_json,"
            " status, source_kind, source, file_id, row) SELECT u.created_hid, u.tenant, b.at, 'user',"
            " u.email_key, 'created', NULL, u.fields_json, 'active', b.source_kind, b.source, b.file_id,"
            " u.created_row FROM dir_users AS u JOIN dir_batches AS b ON b.id = u.created_batch"
            " WHERE u.tenant = ? AND u.created_hid IS NOT NULL AND u.uid IN (SELECT uid FROM temp.ch)",
            (TENANT,),
        )
        conn.execute(
            "INSERT INTO dir_history (tenant, at, subject_kind, subject, action, before_json, after_json,"
            " status, source_kind, source, file_id, row) SELECT ?, ?, 'user', key, 'updated',"
            " (SELECT json_group_object(b.key, b.value) FROM json_each(before) AS b"
            "  WHERE b.value IS NOT json_extract(after, '$.\"' || b.key || '\"')),"
            " (SELECT json_group_object(a.key, a.value) FROM json_each(after) AS a"
            "  WHERE a.value IS NOT json_extract(before, '$.\"' || a.key || '\"')),"
            " 'active', 'file', 'feed', 1, row FROM temp.ch",
            (TENANT, AT),
        )
        conn.execute(
            "UPDATE dir_users SET fields_json = (SELECT after FROM temp.ch WHERE ch.uid = dir_users.uid),"
            " created_batch = NULL, created_hid = NULL, created_row = NULL"
            " WHERE tenant = ? AND uid IN (SELECT uid FROM temp.ch)",
            (TENANT,),
        )
    return created, changed


def _columns_core(
    conn: sqlite3.Connection, header: list[str], cols: list[str], table: str
) -> tuple[int, int]:
    """A layout with the fields as columns (no JSON per user)."""
    base, created = _counts(conn, table)
    listed = ", ".join(cols)
    if created:
        conn.execute(
            f"INSERT INTO cu (tenant, uid, email_key, active, row, {listed}) SELECT ?, ? + row, key, 1, row,"
            f" {listed} FROM temp.f WHERE uid IS NULL",
            (TENANT, base),
        )
    differs = " OR ".join(f"f.{c} IS NOT u.{c}" for c in cols)
    conn.execute(
        f"CREATE TEMP TABLE ch AS SELECT f.* FROM temp.f AS f JOIN cu AS u ON u.tenant = ? AND u.uid = f.uid"
        f" WHERE {differs}",
        (TENANT,),
    )
    conn.execute("CREATE UNIQUE INDEX temp.ch_uid ON ch (uid)")
    changed = conn.execute("SELECT count(*) FROM temp.ch").fetchone()[0]
    if changed:
        before = ", ".join(f"'{n}', u.{c}" for n, c in zip(header, cols, strict=True))
        after = ", ".join(f"'{n}', ch.{c}" for n, c in zip(header, cols, strict=True))
        conn.execute(
            "INSERT INTO ch_history (tenant, uid, row, before_json, after_json)"
            f" SELECT ?, u.uid, ch.row, json_object({before}), json_object({after})"
            " FROM temp.ch AS ch JOIN cu AS u ON u.tenant = ? AND u.uid = ch.uid",
            (TENANT, TENANT),
        )
        sets = ", ".join(f"{c} = (SELECT {c} FROM temp.ch WHERE ch.uid = cu.uid)" for c in cols)
        conn.execute(f"UPDATE cu SET {sets} WHERE tenant = ? AND uid IN (SELECT uid FROM temp.ch)", (TENANT,))
    return created, changed


LAYOUTS = {"json": ("dir_users", _json_core), "columns": ("cu", _columns_core)}


def _apply(db: Path, feed: Path, layout: str) -> dict[str, Any]:
    from bwsandbox import store

    table, core = LAYOUTS[layout]
    t = time.perf_counter()
    conn = store.connect(db)
    if layout == "columns":
        typed = ", ".join(f"c{i} TEXT" for i in range(11))
        conn.execute(f"CREATE TABLE IF NOT EXISTS cu (tenant TEXT NOT NULL, uid INTEGER NOT NULL,"
                     f" email_key TEXT NOT NULL, active INTEGER NOT NULL, row INTEGER, {typed},"
                     " PRIMARY KEY (tenant, uid))")
        conn.execute("CREATE INDEX IF NOT EXISTS cu_email ON cu (tenant, email_key)")
        conn.execute("CREATE TABLE IF NOT EXISTS ch_history (id INTEGER PRIMARY KEY, tenant TEXT,"
                     " uid INTEGER, row INTEGER, before_json TEXT, after_json TEXT)")
    header, cols = _load(conn, feed)
    loaded = time.perf_counter()
    conn.execute(
        f"UPDATE temp.f SET uid = (SELECT u.uid FROM {table} AS u"
        " WHERE u.tenant = ? AND u.email_key = f.key)",
        (TENANT,),
    )
    found = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    created, changed = core(conn, header, cols, table)
    manager = cols[header.index("manager_email")]
    missing = conn.execute(
        f"SELECT count(*) FROM temp.f WHERE {manager} != '' AND lower({manager}) != key AND NOT EXISTS"
        f" (SELECT 1 FROM {table} AS u WHERE u.tenant = ? AND u.email_key = lower(f.{manager}) AND u.active)",
        (TENANT,),
    ).fetchone()[0]
    conn.execute("COMMIT")
    done = time.perf_counter()
    conn.close()
    return {
        "seconds": done - t, "rows_s": loaded - t, "identity_s": found - loaded, "write_s": done - found,
        "created": created, "changed": changed, "managers_missing": missing,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(db: str, feed: str, layout: str) -> None:
    print(json.dumps(_apply(Path(db), Path(feed), layout)))


def _run(db: Path, feed: Path, layout: str) -> dict[str, Any]:
    os.sync()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.setbased_floor", "--child", str(db), str(feed), layout],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.setbased_floor")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    paths = feeds(args.rows)
    bare = baseline(paths["feed"])
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        for layout in LAYOUTS:
            loaded = Path(tmp) / f"{layout}-first.db"
            results[f"{layout} first"] = _run(loaded, paths["feed"], layout)
            for name, feed in (("resend", paths["feed"]), ("change10", paths["change10"])):
                db = Path(tmp) / f"{layout}-{name}.db"
                shutil.copyfile(loaded, db)
                results[f"{layout} {name}"] = _run(db, feed, layout)
    best = bare["best_s"]
    print(f"{args.rows:,} rows; bare insert {best:.2f} s (best of {len(bare['runs_s'])})")
    print(f"{'layout, scenario':<18} {'total':>8} {'x bare':>7} {'rows':>7} {'identity':>9} {'write':>7}"
          f" {'changed':>8} {'peak RSS':>9}")
    for name, r in results.items():
        print(f"{name:<18} {r['seconds']:>7.2f}s {r['seconds'] / best:>6.2f}x {r['rows_s']:>6.2f}s"
              f" {r['identity_s']:>8.2f}s {r['write_s']:>6.2f}s {r['changed'] + r['created']:>8,}"
              f" {r['peak_rss_mb']:>6.0f} MB")
    out = OUT / f"setbased-floor-{args.rows}.json"
    out.write_text(json.dumps({"rows": args.rows, "baseline": bare, "scenarios": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
