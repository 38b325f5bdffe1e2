"""Validator speed and memory (issue #2 "Speed").

Generates a seeded 1,000,000-row, 11-column user feed (benchmarks/out/, about
130 MB, written the way Excel and most HRIS exporters write CSV: minimal
quoting, so values with commas are quoted; CRLF) and measures, in the same
run and each in a fresh subprocess:

- the baseline: a bare `for row in csv.reader(f): pass` over the file;
- `validate()` with all checks (the call only: the interpreter and imports are
  measured separately), and the peak RSS of that process (ru_maxrss: polars
  allocates outside the Python heap, so tracemalloc would under-report);
- `bwsandbox validate --format json` on a 1,000-row file, wall time including
  interpreter start.

Targets: validate >= 2.0x faster than the baseline, peak RSS <= 400 MB,
1,000-row CLI <= 0.5 s. Prints a table; writes benchmarks/out/validator.json.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parents[1]
ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))

HEADER = [
    "email", "first_name", "last_name", "employee_id", "manager_email", "department_name",
    "title", "location", "preferred_name", "on_leave", "deactivation_date",
]  # fmt: skip
_FIRST = ["Ana", "Bo", "Chen", "Dmitri", "Eve", "Fatima", "Gus", "Hiro", "Inès", "José", "Kai", "Oluwaseun"]
_LAST = [
    "Smith",
    "O'Neil",
    "Nguyen",
    "García",
    "Müller",
    "Kowalski",
    "Okafor",
    "Van der Berg",
    "Fitzgerald-Jones",
]
_DEPT = ["Engineering", "Sales, EMEA", "Customer Support", "Finance & Legal", "People Operations"]
_TITLE = ["Senior Software Engineer", "Account Executive, Enterprise", "Support Specialist II", "Director"]
_LOC = ["San Francisco, CA", "London", "Remote - US", "New York, NY", "Berlin"]


def generate(path: Path, rows: int, seed: int = 20240601) -> None:
    """A valid feed: an 8-ary management tree, zero-padded ids, a few dates."""
    rnd = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(HEADER)
        for i in range(rows):
            first = rnd.choice(_FIRST)
            date = "" if rnd.random() < 0.97 else f"{rnd.randint(1, 12):02d}/{rnd.randint(13, 28):02d}/2027"
            w.writerow([
                f"user{i}@example-corp.com", first, rnd.choice(_LAST), f"{i:08d}",
                "" if i == 0 else f"user{(i - 1) // 8}@example-corp.com", rnd.choice(_DEPT),
                rnd.choice(_TITLE), rnd.choice(_LOC), first if rnd.random() < 0.2 else "",
                rnd.choice(("true", "false")), date,
            ])  # fmt: skip


_CSV_PASS = """
import csv, resource, sys, time
t = time.perf_counter()
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    for row in csv.reader(f):
        pass
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

_VALIDATE = """
import resource, sys, time
t0 = time.perf_counter()
from bwsandbox.validator import validate
import numpy, polars  # what the validator imports on first use
t_import = time.perf_counter() - t0
data = open(sys.argv[1], "rb").read()
t = time.perf_counter()
v = validate(data, name=sys.argv[1])
elapsed = time.perf_counter() - t
r = v.report
assert r.total == int(sys.argv[2]) and not r.has_errors, (r.total, r.findings[:3])
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, t_import, len(r.findings))
"""


def _py(code: str, *args: str) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return [float(x) for x in out.stdout.split()]


def _cli_wall(path: Path) -> float:
    exe = Path(sys.executable).with_name("bwsandbox")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bwsandbox.cli.main"]
    t = time.perf_counter()
    subprocess.run(
        [*cmd, "validate", "--format", "json", str(path)], check=False, capture_output=True, cwd=ROOT
    )
    return time.perf_counter() - t


def main() -> int:
    feed = OUT / f"feed_{ROWS}.csv"
    small = OUT / "feed_1000.csv"
    if not feed.exists():
        print(f"generating {feed.name} ({ROWS} rows)...", flush=True)
        generate(feed, ROWS)
    if not small.exists():
        generate(small, 1000)
    baseline = [_py(_CSV_PASS, str(feed)) for _ in range(REPEAT)]
    runs = [_py(_VALIDATE, str(feed), str(ROWS)) for _ in range(REPEAT)]
    _cli_wall(small)  # warm the file cache
    cli = sorted(_cli_wall(small) for _ in range(5))
    csv_s = min(b[0] for b in baseline)
    val_s = min(r[0] for r in runs)
    peak_mb = max(r[1] for r in runs) / 1024
    result = {
        "rows": ROWS,
        "columns": len(HEADER),
        "file_mb": round(feed.stat().st_size / 1e6, 1),
        "csv_reader_s": round(csv_s, 3),
        "csv_reader_rows_per_s": round(ROWS / csv_s),
        "validate_s": round(val_s, 3),
        "validate_rows_per_s": round(ROWS / val_s),
        "speedup_vs_csv_reader": round(csv_s / val_s, 2),
        "validate_peak_rss_mb": round(peak_mb, 1),
        "import_s": round(min(r[2] for r in runs), 3),
        "cli_1000_rows_wall_s": round(cli[len(cli) // 2], 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "repeat": REPEAT,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "validator.json").write_text(json.dumps(result, indent=2) + "\n")
    targets = {
        "speedup_vs_csv_reader": result["speedup_vs_csv_reader"] >= 2.0,
        "validate_peak_rss_mb": peak_mb <= 400,
        "cli_1000_rows_wall_s": result["cli_1000_rows_wall_s"] <= 0.5,
    }
    width = max(len(k) for k in result)
    for key, value in result.items():
        mark = "" if key not in targets else ("  ok" if targets[key] else "  MISSED")
        print(f"{key:<{width}}  {value}{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
