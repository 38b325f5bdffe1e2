"""What knowing a re-sent file unchanged costs in SQL, and the designs
tried to make it cheaper (docs/benchmarks.md "Ingest at scale", "The
re-send floor").

`python -m benchmarks.resend_floor [--rows N] [--repeat K]`

A store first loaded with the apply benchmark's feed (`feeds`) by the real
path (`ingest.process.process`). Then, per variant, the SQL a re-send of it
runs to know every row unchanged: the directory copied into the work tables
(where the variant copies it) and every row compared with its user, a batch
of `workspace.BATCH` rows at a time, each row as the C reader gives it
(`quick.Quick`: its text is its user's stored text, as a re-sent row's is).
Against the bare insert of the same feed (the apply benchmark's baseline);
the variants interleaved, each repetition in another order, best of K
(default 3):

- in place: `workspace.load` (the directory read in place, a view of
  the store's users) and `quick.known_same` (each batch's rows bound into
  an `INSERT … SELECT` over a VALUES list, into `w_same`): the sandbox's
  own code since the fourteenth round;
- w_quick: the same view, each batch's rows first inserted into a work
  table `w_quick` by `executemany`, then one `INSERT … SELECT` from it: the
  thirteenth round's;
- copy: the same with the directory copied into `w_dir` and indexed by
  address (`workspace.load(copy=True)`): the twelfth round's;
- per row: the copy; each row compared by its own `INSERT … SELECT` in
  one `executemany` a batch, no `w_quick` (found missed rows would need an
  index on `w_same (n)`, not built here: a re-send misses none);
- without rowid: a copy into a `w_dir` keyed by (address, uid), so a
  row's user is one B-tree search instead of the address index's and the
  table's.

Not a `bench_` module: `python -m benchmarks` does not run it. Prints a table
and writes benchmarks/out/resend-floor-<N>.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_apply import DEFAULT_ROWS, OUT, feeds
from benchmarks.store_floor import bare_insert, report
from bwsandbox import store, tenants
from bwsandbox.clock import Clock
from bwsandbox.ingest import quick, workspace
from bwsandbox.ingest.process import process
from bwsandbox.ingest.records import Source

TENANT = "bench"
_SAME = "d.fields = q.text AND (q.want IS NULL OR d.active = q.want) AND q.eid IN ('', d.eid)"
_PER_ROW = (
    "INSERT INTO w_same (uid, row, cols, has_mgr, mkey, n) SELECT d.uid, ?2, ?7, ?8,"
    " CASE WHEN ?8 THEN d.mkey ELSE '' END, ?1 FROM w_dir AS d"
    " WHERE d.uid = (SELECT max(uid) FROM w_dir WHERE key = ?3) AND d.fields = ?4"
    " AND (?5 IS NULL OR d.active = ?5) AND ?6 IN ('', d.eid)"
)
_QUICK = (
    f"CREATE TABLE {workspace.SCHEMA}.w_quick (i INTEGER PRIMARY KEY, row INTEGER NOT NULL,"
    " key TEXT NOT NULL, text TEXT NOT NULL, want INTEGER, eid TEXT NOT NULL, cols TEXT NOT NULL,"
    " has_mgr INTEGER NOT NULL)"
)
_QUICK_SAME = (
    "INSERT INTO w_same (uid, row, cols, has_mgr, mkey, n)"
    " SELECT d.uid, q.row, q.cols, q.has_mgr, CASE WHEN q.has_mgr THEN d.mkey ELSE '' END, ?1 + q.i"
    " FROM w_quick AS q CROSS JOIN w_dir AS d ON d.uid = (SELECT max(uid) FROM w_dir WHERE key = q.key)"
    f" WHERE {_SAME}"
)
_KEYED = (
    f"CREATE TABLE {workspace.SCHEMA}.w_dir_keyed (uid INTEGER NOT NULL, key TEXT NOT NULL,"
    " eid TEXT NOT NULL, mkey TEXT NOT NULL, active INTEGER NOT NULL, fields TEXT NOT NULL,"
    " PRIMARY KEY (key, uid)) WITHOUT ROWID"
)
_KEYED_COPY = (
    "INSERT INTO w_dir_keyed (uid, key, eid, mkey, active, fields)"
    " SELECT uid, email_key, {eid}, {mkey}, active, fields_json FROM dir_users WHERE tenant = ?"
    " ORDER BY email_key"
)
_KEYED_SAME = (
    "INSERT INTO w_same (uid, row, cols, has_mgr, mkey, n)"
    " SELECT d.uid, q.row, q.cols, q.has_mgr, CASE WHEN q.has_mgr THEN d.mkey ELSE '' END, ?1 + q.i"
    " FROM w_quick AS q JOIN w_dir_keyed AS d ON d.key = q.key"
    " AND d.uid = (SELECT max(uid) FROM w_dir_keyed WHERE key = q.key)"
    f" WHERE {_SAME}"
)


def _batches(rows: list[quick.Quick]) -> list[tuple[int, list[quick.Quick]]]:
    """The rows a batch at a time, each numbered within its batch (as the C reader does)."""
    size = workspace.BATCH
    return [
        (base, [(i, *q[1:]) for i, q in enumerate(rows[base : base + size])])
        for base in range(0, len(rows), size)
    ]


def _in_place(conn: sqlite3.Connection, rows: list[quick.Quick]) -> int:
    workspace.load(conn, TENANT)
    done = 0
    with workspace.working(conn):
        for base, batch in _batches(rows):
            # Every row has the file's columns.
            done += len(quick.known_same(conn, batch, base, full=batch[0][6]))
    return done


def _w_quick(conn: sqlite3.Connection, rows: list[quick.Quick], *, copy: bool = False) -> int:
    workspace.load(conn, TENANT, copy=copy)
    conn.execute(_QUICK)
    return _compare(conn, rows, _QUICK_SAME)


def _copy(conn: sqlite3.Connection, rows: list[quick.Quick]) -> int:
    return _w_quick(conn, rows, copy=True)


def _per_row(conn: sqlite3.Connection, rows: list[quick.Quick]) -> int:
    workspace.load(conn, TENANT, copy=True)
    done = 0
    with workspace.working(conn):
        for base, batch in _batches(rows):
            done += conn.executemany(_PER_ROW, [(base + q[0], *q[1:]) for q in batch]).rowcount
    return done


def _keyed(conn: sqlite3.Connection, rows: list[quick.Quick]) -> int:
    workspace.prepare(conn)
    with workspace.working(conn):
        conn.execute(_KEYED)
        conn.execute(_QUICK)
        conn.execute(_KEYED_COPY.format(eid=workspace.stored("employee_id"),
                                        mkey=workspace.stored("manager_email")), (TENANT,))  # fmt: skip
    return _compare(conn, rows, _KEYED_SAME)


def _compare(conn: sqlite3.Connection, rows: list[quick.Quick], same: str) -> int:
    done = 0
    with workspace.working(conn):
        for base, batch in _batches(rows):
            conn.executemany("INSERT INTO w_quick VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
            done += conn.execute(same, (base,)).rowcount
            conn.execute("DELETE FROM w_quick")
    return done


VARIANTS: dict[str, Callable[[sqlite3.Connection, list[quick.Quick]], int]] = {
    "in place (view of the store), VALUES": _in_place,
    "in place, w_quick": _w_quick,
    "copy into w_dir, w_quick": _copy,
    "per row (copy, no w_quick)": _per_row,
    "without rowid (copy keyed by address)": _keyed,
}


def _load(work: Path, feed: Path) -> tuple[sqlite3.Connection, list[quick.Quick]]:
    """A store with the feed first loaded, and each of its users as a re-sent row's `w_quick` row."""
    conn = store.connect(work / "sandbox.db")
    clock = Clock(fixed=dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC))
    with store.transaction(conn):
        tenant = tenants.add(conn, name=TENANT, username=TENANT, password="pw", licenses=10**8,
                             created_at="2026-01-01T00:00:00+00:00")  # fmt: skip
    process(conn, data_dir=work, tenant=tenant, name="users_20261201.csv", data=feed.read_bytes(),
            clock=clock, source=Source.FILE, label="feed", termination_limit=1.0)  # fmt: skip
    with feed.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    cols = quick.columns_text(frozenset(header))
    rows = [
        (i, i + 2, key, text, int(active), eid, cols, 1)
        for i, (key, text, active, eid) in enumerate(workspace.tuples(
            conn, f"SELECT email_key, fields_json, active, {workspace.stored('employee_id')} FROM dir_users"
            " WHERE tenant = ? ORDER BY uid", (TENANT,)))
    ]  # fmt: skip
    return conn, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.resend_floor")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    feed = feeds(args.rows)["feed"]
    with feed.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        parsed = [(r[0].lower(), *r[1:]) for r in reader]
    results: dict[str, list[float]] = {"bare insert": [], **{name: [] for name in VARIANTS}}
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        print(f"first load of {args.rows:,} rows into a store...", flush=True)
        conn, rows = _load(Path(tmp), feed)
        names = list(results)
        for rep in range(args.repeat):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                os.sync()
                t = time.perf_counter()
                if name == "bare insert":
                    (Path(tmp) / "bare.db").unlink(missing_ok=True)
                    results[name].append(bare_insert(Path(tmp) / "bare.db", header, parsed))
                    continue
                done = VARIANTS[name](conn, rows)
                results[name].append(time.perf_counter() - t)
                workspace.drop(conn)
                if done != len(rows):
                    raise RuntimeError(f"{name}: {done:,} of {len(rows):,} rows known unchanged")
        conn.close()
    report("resend-floor", args.rows, results, bare="bare insert", heading="variant")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
