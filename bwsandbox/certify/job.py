"""Run one of the vendor's job runs so that no process of it outlives the run.

The job is a shell command: it may start children (curl, sftp, a Python
script) that start their own. Killing only the shell on a timeout left them
running, reparented to init, uploading into later runs. So each run gets a
session, hence a process group, of its own (POSIX), and when the run ends,
whether it finished, timed out or certify was interrupted, the whole group
is ended: SIGTERM, a short grace to clean up, then SIGKILL. An interrupt
is KeyboardInterrupt; that SIGTERM to certify raises it too is the CLI's
doing (bwsandbox/cli/cmd_certify.py): a library sets no signal handler.

A job that detaches on purpose (`setsid`, a daemon) leaves the group and is
out of reach, as it would be of any scheduler.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass

GRACE_SECONDS = 2.0  # between SIGTERM and SIGKILL
_POLL_SECONDS = 0.05
POSIX = hasattr(os, "killpg")


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResult:
    exit_code: int | None  # None: timed out, and ended
    stdout: str
    stderr: str


def run_job(command: str, *, env: dict[str, str], timeout: float) -> JobResult:
    """Run `command` through the shell, in the caller's folder, with no stdin."""
    proc = subprocess.Popen(
        command, shell=True, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=POSIX,
    )
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end(proc)
            out, err = _rest_of_output(proc)
            return JobResult(exit_code=None, stdout=out, stderr=err)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): the job goes too
        _end(proc)
        _close(proc)
        raise
    _end(proc)  # what it left running in the background
    return JobResult(exit_code=proc.returncode, stdout=out, stderr=err)


def _rest_of_output(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """What the job wrote, now that its group is gone. A process that left
    the group may still hold the pipes: then what came so far is enough."""
    try:
        return proc.communicate(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired as exc:
        _close(proc)
        return _text(exc.stdout), _text(exc.stderr)


def _close(proc: subprocess.Popen[str]) -> None:
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _end(proc: subprocess.Popen[str]) -> None:
    """End the job's process group and wait for it: SIGTERM, up to
    GRACE_SECONDS for it to go, then SIGKILL for whatever is left."""
    if not POSIX:  # no process groups: the shell at least
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        return
    group = proc.pid  # start_new_session: the shell leads its own group
    try:
        if _signal(group, signal.SIGTERM):
            _wait_gone(proc, group, GRACE_SECONDS)
    finally:  # even when interrupted again during the grace
        if _signal(group, signal.SIGKILL):
            _wait_gone(proc, group, GRACE_SECONDS)
        proc.wait()


def _signal(group: int, sig: int) -> bool:
    """Signal the group; False when it has no process left."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(proc: subprocess.Popen[str], group: int, seconds: float) -> None:
    """Wait up to `seconds` until no process of the group runs any more."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        proc.poll()  # reap the shell itself
        if not _running(group):
            return
        time.sleep(_POLL_SECONDS)


def _running(group: int) -> bool:
    """Whether a process of the group still runs. Its orphans are reaped by
    init, which in a container often never happens: an exited process
    (a zombie) would still count for kill(), so Linux's /proc is read
    where there is one."""
    if not _signal(group, 0):
        return False
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                # pid (comm) state ppid pgrp ...: comm may hold spaces and ')'
                state, _ppid, pgrp = stat.read().rsplit(b")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(pgrp) == group and state not in (b"Z", b"X"):
            return True
    return False

