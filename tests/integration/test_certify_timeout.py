"""`certify --timeout` ends the whole job, not only its shell: a grandchild
sleeping past the timeout is gone when certify returns (it was left running,
reparented to init, into later runs), and so when certify gets SIGTERM."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bwsandbox.cli.main import main

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")


def _runs(pid: int) -> bool:
    """Running, not merely a zombie no init reaps (as in many containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat.rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")


def _job(pids: Path, marker: Path, grandchild_sleeps: int) -> str:
    """Each run starts a grandchild that records its pid, then would touch
    `marker` long after the timeout; the job itself hangs."""
    later = shlex.quote(f"echo $$ >> {shlex.quote(str(pids))}; sleep {grandchild_sleeps}; "
                        f"touch {shlex.quote(str(marker))}")
    return f"sh -c {later} & sleep 60"


def test_a_timed_out_run_leaves_no_process_behind(tmp_path: Path) -> None:
    pids, marker, out = tmp_path / "pids", tmp_path / "touched", tmp_path / "cert.json"
    command = _job(pids, marker, grandchild_sleeps=3)
    code = main(["certify", "--run", command, "--timeout", "2", "--no-faults", "--json", str(out)])
    assert code == 1
    runs = json.loads(out.read_text())["runs"]
    assert [r["exit_code"] for r in runs] == [None, None, None]  # each timed out, as it says
    recorded = [int(p) for p in pids.read_text().split()]
    assert len(recorded) == 3
    assert [p for p in recorded if _runs(p)] == []
    time.sleep(3.5)  # past the last grandchild's 3 s, which began before its run's 2 s
    assert not marker.exists()


def test_sigterm_to_certify_ends_the_running_job_and_reports_interrupted(tmp_path: Path) -> None:
    pids, marker = tmp_path / "pids", tmp_path / "touched"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bwsandbox.cli", "certify", "--run", _job(pids, marker, 60),
         "--timeout", "60", "--no-faults"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        [pid] = [int(p) for p in pids.read_text().split()]
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert not _runs(pid)
