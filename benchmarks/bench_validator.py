"""Validator speed and memory (docs/benchmarks.md).

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
1,000-row CLI <= 0.5 s.

Then, in the same run, what each C accelerator buys (bwsandbox/validator/
accel.py): the same measures (validate() of both feeds, their peak RSS, the
CLI) with BWSANDBOX_NO_ACCEL leaving out `_cscan`, `_ccells`, or both (the
pure engine, what `pip install` gives without a compiler), each engine's
report checked equal to the accelerated one. An accelerator that buys
little is not worth its C (docs/benchmarks.md "What each C accelerator
buys"). Prints two tables; writes benchmarks/out/validator.json.
BENCH_ENGINES=0 skips the engine comparison.
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
from typing import Any

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
import hashlib, resource, sys, time
t0 = time.perf_counter()
from bwsandbox.validator import accel, report_json, validate
import numpy, polars  # what the validator imports on first use
t_import = time.perf_counter() - t0
assert ",".join(accel.choose().names) == sys.argv[3], (accel.choose(), sys.argv[3])
data = open(sys.argv[1], "rb").read()
t = time.perf_counter()
v = validate(data, name=sys.argv[1])
elapsed = time.perf_counter() - t
r = v.report
assert r.total == int(sys.argv[2]) and not r.has_errors, (r.total, r.findings[:3])
digest = int(hashlib.sha256(report_json(r).encode()).hexdigest()[:12], 16)
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, t_import, len(r.findings), digest)
"""

# (label, BWSANDBOX_NO_ACCEL, the accelerators then in use)
ENGINES = [
    ("both (C scan + C cells)", "", "cscan,ccells"),
    ("no _cscan", "cscan", "ccells"),
    ("no _ccells", "ccells", "cscan"),
    ("pure (no C)", "1", ""),
]


def _env(no_accel: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BWSANDBOX_NO_ACCEL"}
    if no_accel:
        env["BWSANDBOX_NO_ACCEL"] = no_accel
    return env


def _py(code: str, *args: str, no_accel: str = "") -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(no_accel),
    )
    return [float(x) for x in out.stdout.split()]


def _cli_wall(path: Path, no_accel: str = "") -> float:
    exe = Path(sys.executable).with_name("bwsandbox")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bwsandbox.cli.main"]
    t = time.perf_counter()
    subprocess.run(
        [*cmd, "validate", "--format", "json", str(path)],
        check=False,
        capture_output=True,
        cwd=ROOT,
        env=_env(no_accel),
    )
    return time.perf_counter() - t


def _engines(feed: Path, small: Path) -> list[dict[str, object]]:
    """Each engine's measures, the engines taking turns round by round (so a
    slow spell of the machine is shared); reports must be the same."""
    big: dict[str, list[list[float]]] = {label: [] for label, _, _ in ENGINES}
    little: dict[str, list[list[float]]] = {label: [] for label, _, _ in ENGINES}
    cli: dict[str, list[float]] = {label: [] for label, _, _ in ENGINES}
    for _ in range(REPEAT):
        for label, off, names in ENGINES:
            big[label].append(_py(_VALIDATE, str(feed), str(ROWS), names, no_accel=off))
            little[label].append(_py(_VALIDATE, str(small), "1000", names, no_accel=off))
            cli[label] += [_cli_wall(small, off) for _ in range(3)]
    first = ENGINES[0][0]
    rows: list[dict[str, object]] = []
    for label, _, _ in ENGINES:
        for runs, base in ((big[label], big[first]), (little[label], little[first])):
            assert {r[4] for r in runs} == {r[4] for r in base}, f"{label}: not the accelerated report"
        walls = sorted(cli[label])
        val_feed, val_small = min(r[0] for r in big[label]), min(r[0] for r in little[label])
        rows.append(
            {
                "engine": label,
                "validate_feed_s": round(val_feed, 3),
                "slower_feed": round(val_feed / min(r[0] for r in big[first]), 2),
                "peak_rss_feed_mb": round(max(r[1] for r in big[label]) / 1024, 1),
                "validate_1000_s": round(val_small, 4),
                "slower_1000": round(val_small / min(r[0] for r in little[first]), 2),
                "peak_rss_1000_mb": round(max(r[1] for r in little[label]) / 1024, 1),
                "cli_1000_wall_s": round(walls[len(walls) // 2], 3),
            }
        )
    return rows


def main() -> int:
    feed = OUT / f"feed_{ROWS}.csv"
    small = OUT / "feed_1000.csv"
    if not feed.exists():
        print(f"generating {feed.name} ({ROWS} rows)...", flush=True)
        generate(feed, ROWS)
    if not small.exists():
        generate(small, 1000)
    baseline = [_py(_CSV_PASS, str(feed)) for _ in range(REPEAT)]
    runs = [_py(_VALIDATE, str(feed), str(ROWS), "cscan,ccells") for _ in range(REPEAT)]
    _cli_wall(small)  # warm the file cache
    cli = sorted(_cli_wall(small) for _ in range(5))
    csv_s = min(b[0] for b in baseline)
    val_s = min(r[0] for r in runs)
    peak_mb = max(r[1] for r in runs) / 1024
    result: dict[str, Any] = {
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
    if os.environ.get("BENCH_ENGINES", "1") != "0":
        print(f"\nengines (BWSANDBOX_NO_ACCEL), {REPEAT} rounds; same report from each:", flush=True)
        engines = _engines(feed, small)
        result["engines"] = engines
        (OUT / "validator.json").write_text(json.dumps(result, indent=2) + "\n")
        keys = list(engines[0])
        widths = [max(len(k), *(len(str(e[k])) for e in engines)) for k in keys]
        print("  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)))
        for e in engines:
            print("  ".join(str(e[k]).ljust(w) for k, w in zip(keys, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
