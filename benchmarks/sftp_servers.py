"""The servers the benchmark compares, each in its own process: OpenSSH's
sshd, this checkout's sandbox, and the sandbox of another commit built in
a temporary git worktree (BENCH_COMPARE); and how their CPU time is read."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.sftp_measures import Client

REPO = Path(__file__).resolve().parent.parent
NEW = "sandbox"
SERVE = Path(__file__).resolve().with_name("serve_sandbox.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system, all threads, and that of reaped children) of
    a process and all its live descendants."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            ticks[pid] = sum(int(fields[i]) for i in (11, 12, 13, 14))
    tree, todo = {root}, [root]
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        for child in children.get(todo.pop(), []):
            tree.add(child)
            todo.append(child)
    return sum(ticks.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores) since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# -- the servers ----------------------------------------------------------------------


class Sshd:
    name = "sshd"

    def __init__(self, work: Path, client_pub: str) -> None:
        self.dir = work / "sshd"
        self.dir.mkdir()
        self.dest = work / "sshd-incoming"
        self.dest.mkdir()
        for kind in ("ed25519", "ecdsa", "rsa"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(self.dir / f"ssh_host_{kind}_key")],
                check=True,
            )
        (self.dir / "authorized_keys").write_text(client_pub)
        self.port = _free_port()
        config = self.dir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    *(f"HostKey {self.dir / f'ssh_host_{k}_key'}" for k in ("ed25519", "ecdsa", "rsa")),
                    f"PidFile {self.dir / 'sshd.pid'}",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                    "StrictModes no",
                    "MaxStartups 200",
                    "Subsystem sftp internal-sftp",
                    "ForceCommand internal-sftp",
                    "LogLevel ERROR",
                ]
            )
            + "\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
        _wait_port(self.port)
        self.user = "root"

    def remote(self, name: str) -> str:
        return str(self.dest / name)

    def settle(self, expected: int) -> None:
        """Clear what the last measure uploaded."""
        for path in self.dest.iterdir():
            path.unlink()
        os.sync()  # the next measure does not share the disk with this one's writeback

    def cpu_seconds(self) -> float:
        return _tree_cpu_seconds(self.proc.pid)  # the listener and its per-connection processes

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class SandboxServer:
    """A sandbox in its own process, served by serve_sandbox.py: the code of
    this checkout (python None), or that of another build (its venv's python
    and its source tree)."""

    def __init__(self, work: Path, client_pub: str, name: str = NEW,
                 python: str | None = None, tree: Path | None = None) -> None:
        self.name = name
        self.user = "bench"
        self.data = work / name.replace("@", "-")
        status = self.data.with_name(self.data.name + "-status.json")
        serve = [str(self.data), str(status), client_pub]
        if python is None:
            args, cwd = [sys.executable, "-m", "benchmarks.serve_sandbox", *serve], REPO
        else:  # by path, so its folder (not this checkout) is first on sys.path
            args, cwd = [python, str(SERVE), *serve], tree
        self.proc = subprocess.Popen(args, cwd=cwd)
        deadline = time.monotonic() + 60
        while not status.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.05)
        started = json.loads(status.read_text())
        self.port = int(started["endpoints"]["us"]["port"])
        self.code = Path(started["bench"]["code"])
        self.extensions: list[str] = started["bench"]["extensions"]
        expected = (tree or REPO).resolve() / "bwsandbox"
        if self.code.resolve() != expected:
            raise RuntimeError(f"{name} runs {self.code}, not {expected}")
        self._db = sqlite3.connect(self.data / "sandbox.db", timeout=30)
        self._seen = self._count()

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM files").fetchone()[0])

    def remote(self, name: str) -> str:
        return f"/incoming/{name}"

    def settle(self, expected: int) -> None:
        """Wait until the last measure's uploads were all picked up (and
        check exactly that many were), so measures do not overlap."""
        deadline = time.monotonic() + 120
        while self._count() < self._seen + expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self._count() - self._seen} of {expected} uploads picked up")
            time.sleep(0.05)
        got = self._count() - self._seen
        if got != expected:
            raise RuntimeError(f"{got} pickups for {expected} uploads")
        self._seen += got
        with contextlib.suppress(FileNotFoundError):
            for path in (self.data / "tenants").glob("us/bench/received/*"):
                path.unlink()
        os.sync()  # as for sshd

    def cpu_seconds(self) -> float:
        return _tree_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self._db.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


@contextlib.contextmanager
def _build(rev: str) -> Iterator[tuple[str, str, Path]]:
    """The code of commit `rev` in a git worktree in a temporary folder, with
    its own venv and C extensions: (name, python, tree). Removed afterwards."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", f"{rev}^{{commit}}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="bwsandbox-bench-compare-"))
    tree, venv = tmp / "tree", tmp / "venv"
    added = False
    try:
        start = time.monotonic()
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit],
                       check=True, capture_output=True)
        added = True
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        pip = subprocess.run([python, "-m", "pip", "install", "-q", "-c", "constraints.txt", "-e", "."],
                             cwd=tree, capture_output=True, text=True)
        if pip.returncode:
            raise RuntimeError(f"building {commit} failed: {(pip.stdout + pip.stderr).strip()[-2000:]}")
        print(f"built {commit} in {time.monotonic() - start:.0f} s ({tree})", flush=True)
        yield f"sandbox@{commit}", python, tree
    finally:
        if added:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           check=False)
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _servers(work: Path, client: Client, compare: str | None) -> Iterator[list[Any]]:
    started: list[Any] = []
    with contextlib.ExitStack() as stack:
        try:
            old = stack.enter_context(_build(compare)) if compare else None
            started.append(Sshd(work, client.pub))
            started.append(SandboxServer(work, client.pub))
            if old:
                name, python, tree = old
                started.append(SandboxServer(work, client.pub, name, python, tree))
            yield started
        finally:
            for server in started:
                with contextlib.suppress(Exception):
                    server.stop()
