"""Hostile input against the queue worker: time and peak memory per attack
(docs/security.md; its "Limits" records the figures).

    .venv/bin/python -m benchmarks hostile                     this checkout
    .venv/bin/python -m benchmarks.bench_hostile --tree DIR    another checkout's
                                                               bwsandbox (e.g. an older
                                                               commit from `git archive`)

Each attack runs in a child process on a fresh data directory, through
`Inbox.received` and `Worker.process_pending` (what an upload reaches once
SFTP has handed it over), with the settings at their defaults unless said.
The parent reads the child's peak RSS (wait4) and kills it past
BENCH_HOSTILE_CAP_GB (default 8) so an old build cannot take the machine
down; such a run is reported as "killed at the cap".

- setstat:   28 bytes uploaded, then the file made 3 GiB (sparse) as SFTP
             fsetstat did; max_file_bytes = 50 MiB (the audit's setting)
- pgp-bomb:  an engage upload whose zlib packet inflates to 1 GiB (1.3 MB
             on disk; made with gpg, skipped without it)
- columns:   1,000,000 columns in a 9 MB file (report, email, error file sizes)
- errors:    1,000,000 rows, each with an invalid address (10 MB): report,
             email and error file sizes
- json:      a 183 MB JSON feed (the audit's was 1 GB: memory grows with it)
- json-at-limit: a 120 MB JSON feed, under max_json_bytes: what the limit allows
- fairness:  tenant a's 60 MB file is being processed when tenant b's
             one-row file arrives: how long b's file waits
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = ROOT / "tests" / "unit" / "data" / "pgp-bomb.secret.asc"
SCENARIOS = ("setstat", "pgp-bomb", "columns", "errors", "json", "json-at-limit", "fairness")

CHILD = textwrap.dedent(
    """
    import json, os, shutil, sys, threading, time
    from pathlib import Path
    from bwsandbox import store, tenants
    from bwsandbox.clock import Clock
    from bwsandbox.config import load
    from bwsandbox.ingest.queue import Inbox
    from bwsandbox.ingest.worker import Worker
    from bwsandbox.spec.fields import Profile

    scenario, work = sys.argv[1], Path(sys.argv[2])
    overrides = {"max_file_bytes": 50 * 1024**2} if scenario == "setstat" else {}
    settings = load({"data_dir": work / "data", **overrides}, env={})
    conn = store.connect(settings.db_path)
    inbox = Inbox(conn, settings.data_dir, Clock())
    n = [0]

    def tenant(name, profile=Profile.CORE):
        with store.transaction(conn):
            return tenants.add(conn, name=name, username=name, password="pw", profile=profile,
                               contact="it@example.com", licenses=10**7,
                               created_at="2026-01-01T00:00:00+00:00")

    def put(t, name, source):
        n[0] += 1
        path = work / f"upload-{n[0]}"
        shutil.copyfile(source, path) if isinstance(source, Path) else path.write_bytes(source)
        return inbox.received(t, name, path)

    def outcome(file_id):
        row = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        out = {"state": row["state"], "detail": (row["detail"] or "")[:160]}
        if row["report_json"]:
            report = json.loads(row["report_json"])
            out["verdict"] = report["verdict"]
            out["codes"] = sorted({f["code"] for f in report["findings"]})[:5]
            out["report_bytes"] = len(row["report_json"])
        errors = conn.execute("SELECT errors_csv FROM file_outputs WHERE file_id = ?", (file_id,)).fetchone()
        if errors and errors[0] is not None:
            out["error_file_bytes"] = len(errors[0])
        mail = conn.execute("SELECT message FROM emails WHERE file_id = ?", (file_id,)).fetchone()
        if mail:
            out["email_bytes"] = len(mail[0])
        return out

    started = time.monotonic()
    if scenario == "fairness":
        a, b = tenant("a"), tenant("b")
        big = put(a, "big.csv", Path(sys.argv[3]))
        worker = Worker(settings)
        inbox.add_listener(worker._wake)
        for name in ("_fast_wake",):
            if hasattr(worker, name):
                inbox.add_listener(getattr(worker, name))
        worker.start_thread()
        state = lambda i: conn.execute("SELECT state FROM files WHERE id = ?", (i,)).fetchone()[0]
        while state(big) != "processing":
            time.sleep(0.005)
        queued = time.monotonic()
        small = put(b, "small.csv", b"email,first_name,last_name\\nb@x.com,B,C\\n")
        while state(small) != "done":
            time.sleep(0.005)
        waited = time.monotonic() - queued
        while state(big) != "done":
            time.sleep(0.01)
        worker.stop_thread()
        result = {"small_file_waited_s": round(waited, 2), "big_file_s": round(time.monotonic() - started, 2)}
    else:
        if scenario == "pgp-bomb":
            t = tenant("eng", Profile.ENGAGE)
            keys = settings.data_dir / "tenants" / "us" / "eng" / "pgp"
            keys.mkdir(parents=True)
            shutil.copyfile(sys.argv[4], keys / "secret.asc")
            file_id = put(t, "employees.202603010900.csv.pgp", Path(sys.argv[3]))
            put(t, "employees.202603010900.csv.done.pgp", b"")
        else:
            t = tenant("acme")
            file_id = put(t, "users_20260301." + ("json" if scenario.startswith("json") else "csv"),
                          Path(sys.argv[3]) if len(sys.argv) > 3 else b"email,first_name,last_name\\n")
            if scenario == "setstat":
                stored = conn.execute("SELECT stored_path FROM files WHERE id = ?", (file_id,)).fetchone()[0]
                os.truncate(stored, 3 * 1024**3)
        Worker(settings).process_pending()
        result = outcome(file_id)
    result["seconds"] = round(time.monotonic() - started, 2)
    import bwsandbox
    result["imported"] = bwsandbox.__file__
    print("RESULT " + json.dumps(result))
    """
)


def _inputs(work: Path) -> dict[str, list[str]]:
    """The attack files, made once per run."""
    args: dict[str, list[str]] = {"setstat": []}
    wide = work / "wide.csv"
    with wide.open("w") as fh:
        fh.write(",".join(["email", "first_name", "last_name", *(f"c{i}" for i in range(1_000_000))]) + "\n")
        fh.write("a@b.co,A,B\n")
    args["columns"] = [str(wide)]
    feed = work / "feed.json"
    with feed.open("w") as fh:
        fh.write("[")
        for i in range(1_400_000):
            fh.write(("," if i else "") + json.dumps(
                {"email": f"user{i}@example.com", "first_name": "Ann", "last_name": f"Lee{i}",
                 "title": "Engineer", "department_name": "R&D"}))
        fh.write("]")
    args["json"] = [str(feed)]
    small = work / "feed-120mb.json"
    with small.open("w") as fh:
        fh.write("[")
        for i in range(920_000):
            fh.write(("," if i else "") + json.dumps(
                {"email": f"user{i}@example.com", "first_name": "Ann", "last_name": f"Lee{i}",
                 "title": "Engineer", "department_name": "R&D"}))
        fh.write("]")
    args["json-at-limit"] = [str(small)]
    errors = work / "errors.csv"
    with errors.open("w") as fh:
        fh.write("email,first_name,last_name\n")
        fh.writelines(f"bad{i},A,B\n" for i in range(1_000_000))
    args["errors"] = [str(errors)]
    big = work / "big.csv"
    with big.open("w") as fh:
        fh.write("email,first_name,last_name,title\n")
        for i in range(600_000):
            fh.write(f"user{i}@example.com,Ann,Lee{i},Engineer of things {i}\n")
    args["fairness"] = [str(big)]
    if shutil.which("gpg") and KEY.exists():
        bomb = work / "bomb.pgp"
        home = work / "gnupg"
        home.mkdir(mode=0o700)
        env = {**os.environ, "GNUPGHOME": str(home)}
        public = subprocess.run(
            [sys.executable, "-c", "import sys, pysequoia; print(pysequoia.Tsk.from_bytes("
             "open(sys.argv[1], 'rb').read()).extract_certificate())", str(KEY)],
            capture_output=True, check=True,
        ).stdout
        subprocess.run(["gpg", "--batch", "--import"], input=public, env=env, capture_output=True, check=True)
        recipient = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys"], env=env,
                                   capture_output=True, check=True, text=True).stdout
        fpr = next(line.split(":")[9] for line in recipient.splitlines() if line.startswith("fpr"))
        gen = subprocess.Popen(["sh", "-c", "printf 'email,first_name,last_name\\n'; "
                                "head -c 1073741824 /dev/zero | tr '\\0' a"], stdout=subprocess.PIPE)
        subprocess.run(["gpg", "--batch", "--trust-model", "always", "--compress-algo", "zlib", "-z", "9",
                        "-e", "-r", fpr, "-o", str(bomb)], stdin=gen.stdout, env=env, capture_output=True,
                       check=True)
        gen.wait()
        args["pgp-bomb"] = [str(bomb), str(KEY)]
    return args


def _run(scenario: str, extra: list[str], tree: Path | None, cap_gb: float) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix=f"bwsandbox-hostile-{scenario}-"))
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    # cwd: `-c` puts the current folder first on sys.path, before PYTHONPATH.
    errors = (work / "stderr").open("w+")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, scenario, str(work), *extra], env=env, cwd=work,
                            stdout=subprocess.PIPE, stderr=errors, text=True)
    killed, done = threading.Event(), threading.Event()

    def watch() -> None:  # RSS of the child, killed past the cap (never reaps it: wait4 does)
        status = Path(f"/proc/{proc.pid}/status")
        while not done.wait(0.05):
            try:
                rss_kb = next(int(line.split()[1]) for line in status.read_text().splitlines()
                              if line.startswith("VmRSS:"))
            except (OSError, StopIteration, ValueError):
                rss_kb = 0
            if rss_kb > cap_gb * 1024**2:
                killed.set()
                os.kill(proc.pid, signal.SIGKILL)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, wait_status, usage = os.wait4(proc.pid, 0)
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    watcher.join()
    errors.seek(0)
    err = errors.read()
    errors.close()
    shutil.rmtree(work, ignore_errors=True)
    result: dict[str, object] = {"scenario": scenario, "peak_rss_mb": round(usage.ru_maxrss / 1024)}
    result["bwsandbox"] = str(tree or ROOT)
    if extra:
        result["input_bytes"] = Path(extra[0]).stat().st_size if Path(extra[0]).exists() else None
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if line:
        result.update(json.loads(line[len("RESULT "):]))
    else:
        result["seconds"] = round(time.monotonic() - started, 1)
        result["error"] = f"killed at the {cap_gb:g} GB cap" if killed.is_set() else (
            err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}")
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tree = Path(argv[argv.index("--tree") + 1]).resolve() if "--tree" in argv else None
    wanted = [a for a in argv if a in SCENARIOS] or list(SCENARIOS)
    cap = float(os.environ.get("BWSANDBOX_HOSTILE_CAP_GB", os.environ.get("BENCH_HOSTILE_CAP_GB", "8")))
    with tempfile.TemporaryDirectory(prefix="bwsandbox-hostile-inputs-") as tmp:
        inputs = _inputs(Path(tmp))
        results = []
        for scenario in wanted:
            if scenario not in inputs:
                print(f"{scenario}: skipped (gpg is needed to make the bomb)")
                continue
            result = _run(scenario, inputs[scenario], tree, cap)
            results.append(result)
            print(json.dumps(result))
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / ("hostile-tree.json" if tree else "hostile.json")).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
