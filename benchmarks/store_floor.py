"""What the store's layout alone costs a first load, against the bare insert
(docs/benchmarks.md "Ingest at scale", "The store floor").

`python -m benchmarks.store_floor [--rows N] [--repeat K]`

The apply benchmark's feed (`feeds`), parsed and serialised beforehand, then
written in one transaction per variant, best of K (default 3), the variants
interleaved so that a busy machine slows them alike, each repetition in
another order and after a `sync(2)` (so no run pays for writing back the
one before):

- bare: the apply benchmark's baseline (11 text columns, UNIQUE email);
- store: the layout of today, a `dir_users` row per user with the fields as
  JSON and where its creation is told, one `dir_batches` row for the file,
  under the store's own schema (`store.SCHEMA`);
- history row per user: the layout before, a `dir_history` row per created
  user besides its `dir_users` row, the fields as JSON in both;
- that layout with one change each: no `dir_history (file_id)` index; users
  `WITHOUT ROWID`; history indexed by (tenant, row), a key that grows during a
  first load, instead of the address; a 64 MiB page cache instead of SQLite's 2 MiB; a history row
  for a creation without the fields (the size of the JSON, not the row count);
- users only: no history row at all, no creation columns.

Not a `bench_` module: `python -m benchmarks` does not run it. Prints a table
and writes benchmarks/out/store-floor-<N>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_apply import DEFAULT_ROWS, OUT, feeds
from bwsandbox import store

AT = "2026-12-01T09:00:00+00:00"
USERS = (
    "INSERT INTO dir_users (tenant, uid, email_key, active, fields_json, created_batch, created_hid,"
    " created_row) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
PLAIN_USERS = "INSERT INTO dir_users (tenant, uid, email_key, active, fields_json) VALUES (?, ?, ?, ?, ?)"
BATCH = (
    "INSERT INTO dir_batches (tenant, at, source_kind, source, file_id)"
    f" VALUES ('bench', '{AT}', 'file', 'feed', 1)"
)
HISTORY = (
    "INSERT INTO dir_history (tenant, at, subject_kind, subject, action, before_json, after_json, status,"
    " source_kind, source, file_id, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
Prepare = Callable[[sqlite3.Connection], None]


def _store_schema(
    conn: sqlite3.Connection, replace: dict[str, str] | None = None, drop: str = "", pragma: str = ""
) -> None:
    if pragma:
        conn.execute(pragma)
    for statement in store.SCHEMA:
        for old, new in (replace or {}).items():
            statement = statement.replace(old, new)
        if drop and drop in statement:
            continue
        conn.execute(statement)


_NO_ROWID = {"PRIMARY KEY (tenant, uid)\n    )": "PRIMARY KEY (tenant, uid)\n    ) WITHOUT ROWID"}
VARIANTS: dict[str, tuple[Prepare, str]] = {
    # name: (schema, what is written: "batch" | "full" | "slim" | "users")
    "store": (lambda c: _store_schema(c), "batch"),
    "history row per user": (lambda c: _store_schema(c), "full"),
    "no file index": (lambda c: _store_schema(c, drop="dir_history_file"), "full"),
    "users WITHOUT ROWID": (lambda c: _store_schema(c, _NO_ROWID), "full"),
    "history by (tenant, row)": (
        lambda c: _store_schema(c, {"ON dir_history (tenant, subject)": "ON dir_history (tenant, row)"}),
        "full",
    ),
    "64 MiB cache": (lambda c: _store_schema(c, pragma="PRAGMA cache_size=-65536"), "full"),
    "creation history without fields": (lambda c: _store_schema(c), "slim"),
    "users only": (lambda c: _store_schema(c), "users"),
}


def bare_insert(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    t = time.perf_counter()
    conn.execute("PRAGMA journal_mode=WAL")
    columns = ", ".join(f'"{c}" TEXT' for c in header)
    conn.execute(f"CREATE TABLE users ({columns})")
    conn.execute('CREATE UNIQUE INDEX users_email ON users ("email")')
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO users VALUES ({', '.join('?' for _ in header)})", rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - t
    conn.close()
    return seconds


def _variant(path: Path, prepare: Prepare, what: str, rows: dict[str, list[tuple[Any, ...]]]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # as store.connect
    prepare(conn)
    t = time.perf_counter()
    conn.execute("BEGIN")
    if what == "batch":
        conn.execute(BATCH)
        conn.executemany(USERS, rows["users"])
    else:
        conn.executemany(PLAIN_USERS, rows["plain users"])
    if what == "full":
        conn.executemany(HISTORY, rows["history"])
    elif what == "slim":
        conn.executemany(HISTORY, rows["slim history"])
    conn.execute("COMMIT")
    seconds = time.perf_counter() - t
    conn.close()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_floor")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with feeds(args.rows)["feed"].open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [(r[0].lower(), *r[1:]) for r in reader]
    users, history = [], []
    for uid, r in enumerate(rows, 1):
        fields = json.dumps(dict(zip(header, r, strict=True)))
        users.append(("bench", uid, r[0], 1, fields, 1, uid, uid + 1))
        history.append(
            ("bench", AT, "user", r[0], "created", None, fields, "active", "file", "feed", 1, uid + 1)
        )
    # Every variant's rows made beforehand: only SQLite's work is timed.
    written = {
        "users": users, "plain users": [u[:5] for u in users],
        "history": history, "slim history": [h[:6] + ("",) + h[7:] for h in history],
    }
    runs: dict[str, list[float]] = {"bare": [], **{name: [] for name in VARIANTS}}
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        names = ["bare", *VARIANTS]
        for i in range(args.repeat):
            # Each repetition starts one further along the list, so that no
            # layout always runs first or last (a growing page cache or WAL
            # on the disk would favour a place in the order).
            shift = i * len(names) // args.repeat
            for name in names[shift:] + names[:shift]:
                os.sync()  # the last variant's pages on disk before the next is timed, not during it
                if name == "bare":
                    runs["bare"].append(bare_insert(Path(tmp) / f"bare-{i}.db", header, rows))
                    continue
                prepare, what = VARIANTS[name]
                path = Path(tmp) / f"variant-{names.index(name)}-{i}.db"
                runs[name].append(_variant(path, prepare, what, written))
    report("store-floor", args.rows, runs, bare="bare", heading="layout")
    return 0


def report(kind: str, rows: int, runs: dict[str, list[float]], *, bare: str, heading: str) -> None:
    """Each variant's best run against the bare insert's, and all runs, printed
    and written to benchmarks/out/<kind>-<rows>.json."""
    best = min(runs[bare])
    print(f"\n{rows:,} rows, best of {len(runs[bare])}, interleaved")
    print(f"{heading:<40} {'best':>8} {'x bare':>7}   all")
    for name, times in runs.items():
        print(f"{name:<40} {min(times):>7.2f}s {min(times) / best:>6.2f}x   "
              + ", ".join(f"{t:.2f}" for t in times))  # fmt: skip
    out = OUT / f"{kind}-{rows}.json"
    out.write_text(json.dumps({"rows": rows, "runs_s": runs}, indent=1))
    print(f"wrote {out.relative_to(OUT.parent.parent)}")


if __name__ == "__main__":
    raise SystemExit(main())
