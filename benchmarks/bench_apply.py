"""A big feed applied through the real path, against a bare SQLite insert
of the same rows, measured in interleaved rounds (docs/benchmarks.md
"Ingest at scale").

`python -m benchmarks apply [--rows N] [--rounds R]` (default 300,000 rows;
rounds from `BENCH_APPLY_ROUNDS`, else 3). The feeds are generated once; then each
round measures both sides below, on fresh files of its own:

1. Baseline: the feed's rows, parsed beforehand, inserted with one
   `sqlite3` `executemany` into a fresh WAL file, in one transaction, into a
   table whose email is stored lower-cased under a UNIQUE index. Timed from
   the connect to the commit; best of 3, in a child process; that best is
   the round's baseline. Also shown (not a target): the same rows written as
   the store keeps created users, a `dir_users` row each with the fields as
   JSON and its creation's row and history id, one `dir_batches` row, under
   the store's schema and indexes (`store.connect`), JSON made beforehand:
   the floor of a first load.
2. Sandbox: `bwsandbox serve` as a child process (a new data directory and
   tenant per round, ports picked by the OS); a paramiko client uploads to
   /incoming, closes the remote file and ends its session (then the pickup
   starts at once), and the clock stops when the HTTP API's long poll of the
   tenant's uploads shows the file `done`. Three scenarios, one after the
   other on the round's data directory, each with a fresh server so that its
   VmHWM (/proc/PID/status) is that scenario's peak RSS:
   - first: the feed into an empty directory;
   - resend: the same bytes under a new dated name (every user unchanged);
   - change10: the feed with every tenth user's title changed.

The order alternates so that a change in the machine's load does not always
fall on the same side: odd rounds (1, 3, ...) run the sandbox first and the
baseline after, even rounds the baseline first. A round's temporary files are
removed when its side is done, so the disk holds one round's at most.

Per round and scenario, ratio = the scenario's seconds / the round's
baseline. Per scenario, the median ratio is the median of those per-round
ratios and the ratio of medians is the median of its seconds over the median
of the rounds' baselines. The time target (3.0x; 2.0x for resend at
1,000,000 rows or more) counts as met only if both the ratio of the medians
and the median of the per-round ratios meet it, the rule `bench_server.py`
applies to its throughput targets. The RSS target is met if the worst peak
RSS over the rounds meets it. A scenario is met if both are; the exit status
is 0 only if all three are.

Prints each round's figures as it goes and a table at the end; writes
benchmarks/out/apply-<N>.json (every round's figures and the summary).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
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
DEFAULT_ROUNDS = 3
BASELINE_REPEAT = 3
TENANT = "bench"
PASSWORD = "bench-pw"
TIMEOUT_S = 3600.0
# The targets: (ratio to the bare insert, peak RSS in MB) by size.
TARGET_RATIO = 3.0
TARGET_RESEND_RATIO_1M = 2.0


def target_rss_mb(rows: int) -> float:
    return 400.0 if rows <= 300_000 else 600.0


def target_ratio(scenario: str, rows: int) -> float:
    return TARGET_RESEND_RATIO_1M if scenario == "resend" and rows >= 1_000_000 else TARGET_RATIO


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
        print(f"    {scenario}: {seconds:.2f} s close -> done, peak RSS {peak:.0f} MB", flush=True)
    return results


def _seconds(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def measure_baseline(files: dict[str, Path]) -> dict[str, Any]:
    base = baseline(files["feed"])
    print(f"  baseline: bare insert {base['best_s']:.2f} s (best of {BASELINE_REPEAT}: "
          f"{_seconds(base['runs_s'])}); the store's own tables: {base['floor_best_s']:.2f} s", flush=True)
    return base


def measure_sandbox(rows: int, files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    print("  sandbox: upload close -> done, fresh `bwsandbox serve` per scenario...", flush=True)
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        return sandbox(rows, files, Path(tmp))


def one_round(r: int, rounds: int, rows: int, files: dict[str, Path]) -> dict[str, Any]:
    """Round `r` (from 1): the sandbox first in odd rounds, the baseline first in even ones."""
    order = "sandbox-first" if r % 2 else "baseline-first"
    print(f"round {r}/{rounds} ({order})", flush=True)
    if order == "sandbox-first":
        runs = measure_sandbox(rows, files)
        base = measure_baseline(files)
    else:
        base = measure_baseline(files)
        runs = measure_sandbox(rows, files)
    for scenario, run in runs.items():
        run["ratio"] = run["seconds"] / base["best_s"]
        print(f"  round {r} {scenario:<8} {run['seconds']:7.2f} s {run['ratio']:5.2f}x the round's baseline, "
              f"peak RSS {run['peak_rss_mb']:.0f} MB", flush=True)
    return {"baseline": base, "order": order, "sandbox": runs}


def summarize(rounds: list[dict[str, Any]], rows: int) -> dict[str, dict[str, Any]]:
    """Per scenario: a time target met by both the median ratio and the ratio of medians."""
    median_baseline = statistics.median(r["baseline"]["best_s"] for r in rounds)
    summary: dict[str, dict[str, Any]] = {}
    for scenario in rounds[0]["sandbox"]:
        runs = [r["sandbox"][scenario] for r in rounds]
        seconds = [run["seconds"] for run in runs]
        ratios = [run["ratio"] for run in runs]
        median_ratio = statistics.median(ratios)
        ratio_of_medians = statistics.median(seconds) / median_baseline
        worst = max(run["peak_rss_mb"] for run in runs)
        target, rss_target = target_ratio(scenario, rows), target_rss_mb(rows)
        time_met, rss_met = max(median_ratio, ratio_of_medians) <= target, worst <= rss_target
        summary[scenario] = {
            "seconds": seconds, "ratios": ratios, "median_ratio": median_ratio,
            "ratio_of_medians": ratio_of_medians, "target_ratio": target,
            "worst_peak_rss_mb": worst, "target_rss_mb": rss_target,
            "time_met": time_met, "rss_met": rss_met, "met": time_met and rss_met,
        }
    return summary


def report(rows: int, rounds: list[dict[str, Any]], summary: dict[str, dict[str, Any]]) -> None:
    baselines = [r["baseline"]["best_s"] for r in rounds]
    print()
    print(f"{rows:,} rows, {len(rounds)} rounds ({', '.join(r['order'] for r in rounds)}); "
          f"ratio = close->done / the round's bare insert")
    print(f"bare insert per round (best of {BASELINE_REPEAT}): {_seconds(baselines)} s, median "
          f"{statistics.median(baselines):.2f} s")
    print(f"the store's own tables per round (users rows, one batch row, JSON made beforehand; not a "
          f"target): {_seconds([r['baseline']['floor_best_s'] for r in rounds])} s")
    width = max(len("ratio per round"), 5 * len(rounds) - 1)
    print(f"{'scenario':<10} {'median close->done':>18}  {'ratio per round':<{width}} {'median ratio':>12} "
          f"{'ratio of medians':>16} {'target':>6} {'worst RSS':>9} {'target':>7}  verdict")
    for scenario, s in summary.items():
        missed = ", ".join(what for what, ok in (("time", s["time_met"]), ("RSS", s["rss_met"])) if not ok)
        print(f"{scenario:<10} {statistics.median(s['seconds']):>16.2f} s  {_seconds(s['ratios']):<{width}} "
              f"{s['median_ratio']:>11.2f}x {s['ratio_of_medians']:>15.2f}x {s['target_ratio']:>5.1f}x "
              f"{s['worst_peak_rss_mb']:>6.0f} MB {s['target_rss_mb']:>4.0f} MB  "
              f"{'met' if s['met'] else f'MISSED ({missed})'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks apply")
    parser.add_argument("--rows", type=int, default=int(os.environ.get("BENCH_ROWS", DEFAULT_ROWS)))
    parser.add_argument("--rounds", type=int, default=os.environ.get("BENCH_APPLY_ROUNDS", DEFAULT_ROUNDS))
    args = parser.parse_args(argv or [])
    rows: int = args.rows
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    files = feeds(rows)
    print(f"{args.rounds} rounds of: baseline, bare sqlite3 executemany of {rows:,} rows, best of "
          f"{BASELINE_REPEAT}; sandbox, first / resend / change10 on a fresh data directory", flush=True)
    rounds = [one_round(r, args.rounds, rows, files) for r in range(1, args.rounds + 1)]
    summary = summarize(rounds, rows)
    report(rows, rounds, summary)
    result = {"rows": rows, "python": sys.version.split()[0], "cpus": os.cpu_count(),
              "baseline_best_s": [r["baseline"]["best_s"] for r in rounds], "rounds": rounds,
              "summary": summary}
    out = OUT / f"apply-{rows}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if all(s["met"] for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
