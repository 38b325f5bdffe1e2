"""A big feed applied through the real path, against a bare SQLite insert
of the same rows, measured in one run (docs/benchmarks.md "Ingest at scale").

`python -m benchmarks apply [--rows N]` (default 300,000):

1. Baseline: the feed's rows, parsed beforehand, inserted with one
   `sqlite3` `executemany` into a fresh WAL file, in one transaction, into a
   table whose email is stored lower-cased under a UNIQUE index. Timed from
   the connect to the commit; best of 3, in a child process. Also shown (not
   a target): the same rows written as the store keeps created users, a
   `dir_users` row each with the fields as JSON and its creation's row and
   history id, one `dir_batches` row, under the store's schema and indexes
   (`store.connect`), JSON made beforehand: the floor of a first load.
2. Sandbox: `bwsandbox serve` as a child process (its own data directory,
   ports picked by the OS); a paramiko client uploads to /incoming, closes
   the remote file and ends its session (then the pickup starts at once),
   and the clock stops when the HTTP API's long poll of the tenant's
   uploads shows the file `done`. Three scenarios, one after the other on
   the same data directory, each with a fresh server so that its VmHWM
   (/proc/PID/status) is that scenario's peak RSS:
   - first: the feed into an empty directory;
   - resend: the same bytes under a new dated name (every user unchanged);
   - change10: the feed with every tenth user's title changed.

Prints a table; writes benchmarks/out/apply-<N>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.bench_validator import generate

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parents[1]
BWSANDBOX = ROOT / ".venv" / "bin" / "bwsandbox"
DEFAULT_ROWS = 300_000
BASELINE_REPEAT = 3
TENANT = "bench"
PASSWORD = "bench-pw"
TIMEOUT_S = 3600.0
# The targets: (ratio to the bare insert, peak RSS in MB) by size.
TARGET_RATIO = 3.0
TARGET_RESEND_RATIO_1M = 2.0


def target_rss_mb(rows: int) -> float:
    return 400.0 if rows <= 300_000 else 600.0


# The baseline child: parse first (not timed), then connect, create, insert,
# commit (timed). A fresh file per repeat, so every run starts from nothing.
_BASELINE = """
import csv, json, os, sqlite3, sys, time
feed, tmp, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
with open(feed, newline="", encoding="utf-8") as f:
    reader = csv.reader(f)
    header = next(reader)
    rows = [(r[0].lower(), *r[1:]) for r in reader]
parse_s = time.perf_counter() - t
cols = ", ".join(f'"{c}" TEXT' for c in header)
marks = ", ".join("?" for _ in header)
runs = []
for i in range(repeat):
    path = os.path.join(tmp, f"baseline-{i}.db")
    t = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"CREATE TABLE users ({cols})")
    conn.execute('CREATE UNIQUE INDEX users_email ON users ("email")')
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO users VALUES ({marks})", rows)
    conn.execute("COMMIT")
    runs.append(time.perf_counter() - t)
    assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == len(rows)
    conn.close()
# The floor of the sandbox's own layout: the same rows as the store keeps
# created users (a users row each carrying the fields as JSON and where its
# creation is told, one batch row for them all, under the store's indexes),
# serialised beforehand.
from pathlib import Path
from bwsandbox import store
users = []
for uid, r in enumerate(rows, 1):
    fields = json.dumps(dict(zip(header, r)))
    users.append(("bench", uid, r[0], 1, fields, 1, uid, uid + 1))
floor = []
for i in range(repeat):
    path = os.path.join(tmp, f"floor-{i}.db")
    conn = store.connect(Path(path))
    t = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO dir_batches (tenant, at, source_kind, source, file_id)"
                 " VALUES ('bench', '2026-12-01T09:00:00+00:00', 'file', 'feed', 1)")
    conn.executemany("INSERT INTO dir_users (tenant, uid, email_key, active, fields_json, created_batch,"
                     " created_hid, created_row) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", users)
    conn.execute("COMMIT")
    floor.append(time.perf_counter() - t)
    conn.close()
print(json.dumps({"runs_s": runs, "parse_s": parse_s, "rows": len(rows), "floor_runs_s": floor}))
"""


def feeds(rows: int) -> dict[str, Path]:
    """The seeded feed (the validator benchmark's generator) and its 10 % variant."""
    OUT.mkdir(parents=True, exist_ok=True)
    feed = OUT / f"feed_{rows}.csv"
    if not feed.exists():
        print(f"generating {feed.name} ({rows:,} rows)...", flush=True)
        generate(feed, rows)
    changed = OUT / f"feed_{rows}_change10.csv"
    if not changed.exists() or changed.stat().st_mtime < feed.stat().st_mtime:
        with feed.open(newline="", encoding="utf-8") as src, changed.open(
            "w", newline="", encoding="utf-8"
        ) as dst:
            reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\r\n")
            header = next(reader)
            writer.writerow(header)
            title = header.index("title")
            for i, row in enumerate(reader):
                if i % 10 == 0:  # a title the generator never picks: always a change
                    row[title] = "Staff Engineer"
                writer.writerow(row)
    return {"feed": feed, "change10": changed}


def baseline(feed: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", _BASELINE, str(feed), tmp, str(BASELINE_REPEAT)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )
    result: dict[str, Any] = json.loads(proc.stdout)
    result["best_s"] = min(result["runs_s"])
    result["floor_best_s"] = min(result["floor_runs_s"])
    return result


class Server:
    """`bwsandbox serve` in a child process, on OS-picked ports."""

    def __init__(self, data: Path, log: Path) -> None:
        self.status_file = data.parent / "status.json"
        self.status_file.unlink(missing_ok=True)
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [str(BWSANDBOX), "serve", "--data-dir", str(data), "--port", "0", "--eu-port", "0",
             "--http-port", "0", "--status-file", str(self.status_file)],
            stdout=self._log, stderr=self._log, cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while not self.status_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bwsandbox serve did not start; see {log}")
            time.sleep(0.05)
        status = json.loads(self.status_file.read_text())
        self.sftp_port = int(status["endpoints"]["us"]["port"])
        self.http = f"http://127.0.0.1:{status['http']['port']}/api/v1"

    def vm_hwm_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")

    def get(self, path: str, timeout: float = 660.0) -> Any:
        with urllib.request.urlopen(self.http + path, timeout=timeout) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def upload(server: Server, local: Path, name: str) -> tuple[float, float]:
    """Uploads `local` as /incoming/`name`; returns (upload seconds, perf_counter at close)."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", server.sftp_port, username=TENANT, password=PASSWORD,
                   allow_agent=False, look_for_keys=False)
    sftp = client.open_sftp()
    t = time.perf_counter()
    with sftp.open(f"incoming/{name}", "wb") as remote, local.open("rb") as f:
        remote.set_pipelined(True)
        while chunk := f.read(1024 * 1024):
            remote.write(chunk)
    closed = time.perf_counter()  # the remote file is closed
    # The session ends as a one-shot job's does (OpenSSH's `put` then `bye`):
    # the file is picked up at once instead of after the quiet window.
    sftp.close()
    client.close()
    return closed - t, closed


def wait_done(server: Server, name: str) -> tuple[float, dict[str, Any]]:
    """Long-polls the tenant's uploads until `name` is final; returns (perf_counter, upload)."""
    version: int | None = None
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        query = "" if version is None else f"?since={version}&wait=600"
        answer = server.get(f"/tenants/{TENANT}/uploads{query}")
        now = time.perf_counter()
        version = answer["version"]
        for found in answer["uploads"]:
            if found.get("name") == name and found.get("state") in ("done", "failed", "incomplete"):
                return now, found
    raise TimeoutError(f"{name} not processed within {TIMEOUT_S} s")


def sandbox(rows: int, files: dict[str, Path], work: Path) -> dict[str, dict[str, Any]]:
    data = work / "data"
    log = work / "serve.log"
    subprocess.run(
        [str(BWSANDBOX), "tenant", "add", "--data-dir", str(data), "--username", TENANT,
         "--password", PASSWORD, "--licenses", str(10 * rows + 1000), TENANT],
        check=True, capture_output=True, cwd=ROOT,
    )
    plan = [("first", files["feed"], "users_20261201.csv"),
            ("resend", files["feed"], "users_20261202.csv"),
            ("change10", files["change10"], "users_20261203.csv")]
    results: dict[str, dict[str, Any]] = {}
    for scenario, local, name in plan:
        server = Server(data, log)
        try:
            idle_mb = server.vm_hwm_mb()
            upload_s, closed = upload(server, local, name)
            done_at, found = wait_done(server, name)
            seconds = done_at - closed
            time.sleep(1.0)  # the email and /reports are published after the commit
            peak = server.vm_hwm_mb()
            detail = server.get(f"/tenants/{TENANT}/files/{found['id']}") if "id" in found else found
        finally:
            server.stop()
        state = found.get("state")
        if state != "done":
            raise RuntimeError(f"{scenario}: {name} ended {state}: {json.dumps(found)[:2000]}")
        report = detail.get("report") or {}
        results[scenario] = {
            "file": name, "seconds": seconds, "upload_s": upload_s, "rows_per_s": rows / seconds,
            "peak_rss_mb": peak, "idle_rss_mb": idle_mb,
            "counts": report.get("counts") or detail.get("counts") or found.get("counts"),
        }
        print(f"  {scenario}: {seconds:.2f} s close -> done, peak RSS {peak:.0f} MB", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks apply")
    parser.add_argument("--rows", type=int, default=int(os.environ.get("BENCH_ROWS", DEFAULT_ROWS)))
    args = parser.parse_args(argv or [])
    rows: int = args.rows
    files = feeds(rows)
    print(f"baseline: bare sqlite3 executemany of {rows:,} rows, best of {BASELINE_REPEAT}...", flush=True)
    base = baseline(files["feed"])
    print(f"  {base['best_s']:.2f} s; the store's own tables (users rows, one batch row): "
          f"{base['floor_best_s']:.2f} s", flush=True)
    print("sandbox: upload close -> done, fresh `bwsandbox serve` per scenario...", flush=True)
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        runs = sandbox(rows, files, Path(tmp))
    rss_target = target_rss_mb(rows)
    ok = True
    print()
    print(f"{rows:,} rows; bare insert {base['best_s']:.2f} s (best of {BASELINE_REPEAT}: "
          f"{', '.join(f'{s:.2f}' for s in base['runs_s'])}); the same rows as the store's users rows, "
          f"JSON made beforehand: {base['floor_best_s']:.2f} s "
          f"({base['floor_best_s'] / base['best_s']:.1f}x)")
    print(f"{'scenario':<10} {'close->done':>12} {'ratio':>7} {'target':>7} {'peak RSS':>10} "
          f"{'target':>8}  verdict")
    for scenario, r in runs.items():
        ratio = r["seconds"] / base["best_s"]
        target = TARGET_RESEND_RATIO_1M if scenario == "resend" and rows >= 1_000_000 else TARGET_RATIO
        met = ratio <= target and r["peak_rss_mb"] <= rss_target
        ok &= met
        r["ratio"] = ratio
        r["target_ratio"] = target
        r["target_rss_mb"] = rss_target
        r["met"] = met
        print(f"{scenario:<10} {r['seconds']:>10.2f} s {ratio:>6.1f}x {target:>6.1f}x "
              f"{r['peak_rss_mb']:>7.0f} MB {rss_target:>5.0f} MB  {'met' if met else 'MISSED'}")
    result = {"rows": rows, "baseline": base, "sandbox": runs, "python": sys.version.split()[0],
              "cpus": os.cpu_count()}
    out = OUT / f"apply-{rows}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
