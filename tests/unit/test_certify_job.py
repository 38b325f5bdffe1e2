"""No process of a certify run outlives the run: the job's grandchildren are
ended on a timeout and when the job exits leaving them behind; a SIGTERM
to certify (as Ctrl-C) is tested through the CLI, in
tests/integration/test_certify_timeout.py."""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path

import pytest

from bwsandbox.certify.job import run_job
from bwsandbox.cli.cmd_certify import terminate_interrupts

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")


def _runs(pid: int) -> bool:
    """Running, not merely exited and waiting to be reaped (in a container
    whose init reaps no orphans, an ended process stays a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat.rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")


def _grandchild(pid_file: Path, *, ignore_term: bool = False) -> str:
    """A background process of the job that writes its pid and sleeps long
    past any timeout; the job waits until the pid is written."""
    trap = "trap '' TERM; " if ignore_term else ""
    inner = shlex.quote(trap + 'echo $$ > "$0"; exec sleep 60')
    quoted = shlex.quote(str(pid_file))
    return (f"sh -c {inner} {quoted} "
            f">/dev/null 2>&1 & while [ ! -s {quoted} ]; do sleep 0.02; done; ")


@pytest.mark.parametrize("ignore_term", [False, True], ids=["ends-on-sigterm", "needs-sigkill"])
def test_a_timeout_ends_the_jobs_grandchild_too(tmp_path: Path, ignore_term: bool) -> None:
    pid_file = tmp_path / "pid"
    command = _grandchild(pid_file, ignore_term=ignore_term) + "echo started; sleep 60"
    result = run_job(command, env=dict(os.environ), timeout=1)
    assert result.exit_code is None  # the certificate says "timed out"
    assert result.stdout == "started\n"  # what it wrote before is kept
    assert not _runs(int(pid_file.read_text()))


def test_what_a_finished_job_left_running_is_ended(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    result = run_job(_grandchild(pid_file) + "echo done", env=dict(os.environ), timeout=30)
    assert (result.exit_code, result.stdout) == (0, "done\n")
    assert not _runs(int(pid_file.read_text()))


def test_the_handler_before_is_restored_even_one_set_from_c(monkeypatch: pytest.MonkeyPatch) -> None:
    """signal.signal returns None for a handler not set from Python;
    setting None back raises TypeError, so the default is restored then.
    No real handler is set: signal.signal is stood in for."""
    calls: list[object] = []

    def fake_signal(signum: int, handler: object) -> object:
        calls.append(handler)
        return None

    monkeypatch.setattr(signal, "signal", fake_signal)
    with terminate_interrupts():
        assert callable(calls[0])
    assert calls[1:] == [signal.SIG_DFL]
