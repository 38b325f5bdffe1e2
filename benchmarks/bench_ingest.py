"""Ingest speed and memory (docs/benchmarks.md).

1. Latency: a real Sandbox (embedded defaults, zero simulated delay) and a real
   SFTP client (paramiko); a 10,000-row file is uploaded and we time from the
   client's close of the remote file (the session then ends, which is when a
   client like OpenSSH `put` lets pickup start) to the file's `done` in the
   store. Median and worst of REPEAT runs. Target: <= 1 s.
2. Throughput: a 1,000,000-row file (the validator benchmark's generator)
   applied into an empty directory by the queue worker, then the same file
   again (everything unchanged), each timed in a fresh subprocess; rows/s and
   peak RSS (ru_maxrss) of that process.

Prints a table; writes benchmarks/out/ingest.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_validator import generate

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parents[1]
ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
LATENCY_ROWS = 10_000
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))

_APPLY = """
import json, resource, sys, time
from pathlib import Path
from bwsandbox import store, tenants
from bwsandbox.clock import Clock
from bwsandbox.config import load
from bwsandbox.ingest.queue import Inbox
from bwsandbox.ingest.worker import Worker

data_dir, feed, rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
settings = load({"data_dir": data_dir}, env={})
conn = store.connect(settings.db_path)
with store.transaction(conn):
    tenant = tenants.add(conn, name="bench", username="bench", password="pw", licenses=10**8,
                         created_at="2026-01-01T00:00:00+00:00")
inbox = Inbox(conn, data_dir, Clock())
worker = Worker(settings)
out = {}
for run in ("create", "reapply"):
    copy = data_dir / f"{run}.csv"
    copy.write_bytes(feed.read_bytes())
    file_id = inbox.received(tenant, "feed.csv", copy)
    t = time.perf_counter()
    worker.process_pending(force=True)
    seconds = time.perf_counter() - t
    counts = json.loads(conn.execute("SELECT counts_json FROM files WHERE id = ?", (file_id,)).fetchone()[0])
    out[run] = {"seconds": seconds, "rows_per_s": rows / seconds, "counts": counts,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print(json.dumps(out))
"""


def latency() -> dict[str, float]:
    import paramiko

    from bwsandbox import store, tenants
    from bwsandbox.config import load
    from bwsandbox.sandbox import Sandbox

    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "feed.csv"
        generate(feed, LATENCY_ROWS)
        body = feed.read_bytes()
        settings = load({"data_dir": Path(tmp) / "data", "port": 0, "eu_port": 0}, env={})
        with Sandbox(settings) as sandbox:
            conn = store.connect(settings.db_path)
            with store.transaction(conn):
                tenants.add(conn, name="bench", username="bench", password="pw", licenses=10**8,
                            created_at="2026-01-01T00:00:00+00:00")
            for i in range(REPEAT):
                client = paramiko.SSHClient()
                client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
                client.connect("127.0.0.1", sandbox.port("us"), username="bench", password="pw",
                               allow_agent=False, look_for_keys=False)
                sftp = client.open_sftp()
                with sftp.open(f"incoming/feed-{i}.csv", "wb") as remote:
                    remote.set_pipelined(True)
                    remote.write(body)
                t0 = time.perf_counter()  # the remote file is closed
                sftp.close()
                client.close()
                while True:
                    row = conn.execute(
                        "SELECT state FROM files WHERE name = ?", (f"feed-{i}.csv",)
                    ).fetchone()
                    if row is not None and row[0] in ("done", "failed"):
                        break
                    time.sleep(0.002)
                samples.append(time.perf_counter() - t0)
                assert row[0] == "done"
            conn.close()
    return {"median_s": statistics.median(samples), "worst_s": max(samples), "runs": len(samples)}


def throughput() -> dict[str, dict[str, object]]:
    OUT.mkdir(parents=True, exist_ok=True)
    feed = OUT / f"ingest-{ROWS}.csv"
    if not feed.exists():
        generate(feed, ROWS)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", _APPLY, tmp, str(feed), str(ROWS)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )
    result: dict[str, dict[str, object]] = json.loads(proc.stdout)
    return result


def main() -> int:
    lat = latency()
    thr = throughput()
    print(f"{'measure':<46} {'value':>14}")
    print(f"{'10,000-row file, upload close -> done (median)':<46} {lat['median_s']:>12.3f} s")
    print(f"{'10,000-row file, upload close -> done (worst)':<46} {lat['worst_s']:>12.3f} s")
    for run, label in (("create", "creates"), ("reapply", "re-applied, unchanged")):
        r = thr[run]
        print(f"{f'{ROWS:,} rows {label}: time':<46} {r['seconds']:>12.1f} s")
        print(f"{f'{ROWS:,} rows {label}: rows/s':<46} {r['rows_per_s']:>14,.0f}")
        print(f"{f'{ROWS:,} rows {label}: peak RSS':<46} {r['peak_rss_mb']:>11.0f} MB")
    ok = lat["worst_s"] <= 1.0
    print("target (10,000 rows done <= 1 s):", "met" if ok else "MISSED")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ingest.json").write_text(json.dumps({"latency": lat, "throughput": thr, "rows": ROWS}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
