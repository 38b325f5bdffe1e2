"""Where a big apply's time and memory go (docs/benchmarks.md "Ingest at scale").

`python -m benchmarks.profile_apply [--rows N] [--scenario first|resend|change10]
[--mode cprofile|rss] [--rules]`

The processing the queue worker does for one upload (`ingest.process.process`:
sweep, copy the directory into the workspace, validate, apply (the rows,
then the rules), build the report and error file, write in one
transaction), called in this process on a fresh
store, on the apply benchmark's seeded feed (default 300,000 rows). `resend`
first loads the feed (unprofiled), then profiles the same file again;
`change10` profiles the feed with every tenth user's title changed instead.

- `cprofile`: the top functions by cumulative and by own time; the full
  stats go to benchmarks/out/profile-<scenario>-<N>.prof.
- `rss`: no profiler (it would distort nothing in memory but slows the run);
  a thread samples VmRSS every 10 ms while the main phases are timed by
  wrapping them, and each phase's start, peak and end RSS is printed; plus
  `tracemalloc`'s peak of Python allocations per phase with `--tracemalloc`
  (several times slower); with `--rules`, each rule of the apply's end
  (`_Applier.finish`) timed as a phase of its own.

Not a `bench_` module: `python -m benchmarks` does not run it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import functools
import io
import json
import pstats
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.bench_apply import DEFAULT_ROWS, OUT, ROOT, feeds


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """VmRSS every `interval` s, with the phase open at that moment."""

    def __init__(self, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.perf_counter(), _rss_mb()))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


class Phases:
    """Wraps the processing's main steps to time them (nested calls are kept as such)."""

    def __init__(self, traced: bool) -> None:
        self.spans: list[dict[str, Any]] = []
        self.traced = traced
        self.snapshot_after = "run"
        self._depth = 0

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            span: dict[str, Any] = {"phase": label, "depth": self._depth, "start": time.perf_counter(),
                                    "rss_start": _rss_mb()}
            self.spans.append(span)
            if self.traced:
                tracemalloc.reset_peak()
                traced_start = tracemalloc.get_traced_memory()[0]
            self._depth += 1
            try:
                return original(*args, **kwargs)
            finally:
                self._depth -= 1
                span["end"] = time.perf_counter()
                span["rss_end"] = _rss_mb()
                if self.traced:
                    current, peak = tracemalloc.get_traced_memory()
                    span["py_peak_above_start_mb"] = (peak - traced_start) / 2**20
                    span["py_kept_mb"] = (current - traced_start) / 2**20
                    if attr == self.snapshot_after:  # what the apply holds when it hands over
                        top = tracemalloc.take_snapshot().statistics("lineno")[:15]
                        span["top_held"] = [f"{st.size / 2**20:8.1f} MB {st.count:>9,} blocks  "
                                            f"{st.traceback[0].filename.replace(str(ROOT) + '/', '')}"
                                            f":{st.traceback[0].lineno}" for st in top]

        setattr(owner, attr, timed)


# The rules `_Applier.finish` runs, in its order (`--rules` times each).
RULES = ("_one_user_each", "_omitted", "_back_in", "_new_users_have_names", "_unique_addresses",
         "_licence_limit", "_unique_ids", "_final_addresses", "_resolve_manager_ids", "_managers_exist",
         "_follow_renamed_managers", "_refuse_cycles", "_refuse_deactivated_departments", "_changes",
         "_terminate", "_departments_on_first_use")


def _instrument(phases: Phases, *, rules: bool = False) -> None:
    from bwsandbox.ingest import apply, directory, plan, process, reports, workspace

    phases.wrap(directory, "sweep", "directory.sweep (clock's deactivations)")
    phases.wrap(workspace, "from_store", "workspace.from_store (the directory into the work tables)")
    phases.wrap(plan, "validate_file", "validator.validate (the file alone)")
    phases.wrap(plan, "run", "apply.run (incl. the validator's rows())")
    phases.wrap(apply._Applier, "rows", "apply rows (merged into w_pend)")
    phases.wrap(apply._Applier, "finish", "apply finish (the rules, the changes)")
    phases.wrap(plan, "_merge", "plan._merge (the merged report)")
    phases.wrap(reports, "build", "reports.build (report JSON)")
    phases.wrap(process, "error_csv", "notify.error_csv (error file)")
    phases.wrap(reports, "cap", "reports.cap")
    phases.wrap(directory, "write", "directory.write (users, history)")
    if rules:  # each step of `_Applier.finish`
        phases.wrap(workspace, "index_pending", "index_pending")
        for step in RULES:
            phases.wrap(apply._Applier, step, step)
        phases.wrap(workspace.Changes, "__init__", "Changes (numbered)")


@contextlib.contextmanager
def _store(work: Path, rows: int) -> Iterator[Callable[[bytes, str], Any]]:
    from bwsandbox import store, tenants
    from bwsandbox.clock import Clock
    from bwsandbox.ingest.process import process
    from bwsandbox.ingest.records import Source

    conn = store.connect(work / "sandbox.db")
    clock = Clock(fixed=dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC))
    with store.transaction(conn):
        tenant = tenants.add(conn, name="bench", username="bench", password="pw", licenses=10 * rows + 1000,
                             created_at="2026-01-01T00:00:00+00:00")

    def send(data: bytes, name: str) -> Any:
        return process(conn, data_dir=work, tenant=tenant, name=name, data=data, clock=clock,
                       source=Source.FILE, label=name, termination_limit=1.0)

    try:
        yield send
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_apply")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--scenario", choices=("first", "resend", "change10"), default="first")
    parser.add_argument("--mode", choices=("cprofile", "rss"), default="cprofile")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--rules", action="store_true", help="rss mode: time each rule of the apply too")
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args(argv)
    paths = feeds(args.rows)
    data = paths["feed"].read_bytes()
    # What is profiled: the feed again (resend, all unchanged), its 10 % variant, or the feed itself.
    sent = paths["change10"].read_bytes() if args.scenario == "change10" else data
    # A running server has imported what the validator loads on first use
    # (polars, numpy): a tiny file first, so that is not in the figures.
    from bwsandbox.ingest import reports
    from bwsandbox.validator import validate

    validate(data[: data.index(b"\n", 2000) + 1], name="warm.csv")
    tag = f"{args.scenario}-{args.rows}"
    with tempfile.TemporaryDirectory(dir=OUT) as tmp, _store(Path(tmp), args.rows) as send:
        if args.scenario != "first":
            send(data, "users_20261201.csv")
        if args.mode == "cprofile":
            profiler = cProfile.Profile()
            t = time.perf_counter()
            profiler.enable()
            processed = send(sent, "users_20261202.csv")
            profiler.disable()
            total = time.perf_counter() - t
            prof = OUT / f"profile-{tag}.prof"
            profiler.dump_stats(prof)
            print(f"{args.rows:,} rows, {args.scenario}: {total:.1f} s under cProfile; "
                  f"counts {reports.counts(processed.report)}")
            for order in ("cumulative", "tottime"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
                print(f"--- top {args.top} by {order}")
                print(out.getvalue())
            print(f"wrote {prof}")
            return 0
        phases = Phases(args.tracemalloc)
        _instrument(phases, rules=args.rules)
        if args.tracemalloc:
            tracemalloc.start()
        sampler = Sampler()
        base = _rss_mb()
        sampler.start()
        t0 = time.perf_counter()
        processed = send(sent, "users_20261202.csv")
        t1 = time.perf_counter()
        sampler.stop()
    peak_all = max(r for _, r in sampler.samples)
    print(f"{args.rows:,} rows, {args.scenario}: process() {t1 - t0:.1f} s; RSS before {base:.0f} MB, "
          f"peak {peak_all:.0f} MB; counts {reports.counts(processed.report)}")
    print(f"{'phase':<52} {'start s':>8} {'secs':>7} {'RSS in':>7} {'peak':>7} {'RSS out':>8}"
          + (f" {'py peak+':>9} {'py kept':>8}" if args.tracemalloc else ""))
    for span in phases.spans:
        inside = [r for t, r in sampler.samples if span["start"] <= t <= span["end"]]
        span["rss_peak"] = max([span["rss_start"], span["rss_end"], *inside])
        label = "  " * span["depth"] + span["phase"]
        line = (f"{label:<52} {span['start'] - t0:>8.2f} {span['end'] - span['start']:>7.2f} "
                f"{span['rss_start']:>7.0f} {span['rss_peak']:>7.0f} {span['rss_end']:>8.0f}")
        if args.tracemalloc:
            line += f" {span['py_peak_above_start_mb']:>9.0f} {span['py_kept_mb']:>8.0f}"
        print(line)
    for span in phases.spans:
        if "top_held" in span:
            print(f"--- Python allocations held when {span['phase']} returns, by line")
            print("\n".join(span["top_held"]))
    spans = [{k: (v - t0 if k in ("start", "end") else v) for k, v in s.items()} for s in phases.spans]
    (OUT / f"profile-rss-{tag}.json").write_text(json.dumps(
        {"rows": args.rows, "scenario": args.scenario, "seconds": t1 - t0, "rss_before_mb": base,
         "rss_peak_mb": peak_all, "phases": spans,
         "samples": [(t - t0, r) for t, r in sampler.samples[::10]]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
