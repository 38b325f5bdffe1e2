"""The benchmark's SFTP client (OpenSSH `sftp` with one ed25519 key) and
what it measures against any server: one big upload, many small files,
connect+login+put latency, concurrent clients, an idle client's cost."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

BIG_MIB = 200
SMALL_FILES = 1000
SMALL_BYTES = 2048
LATENCY_RUNS = 10
CONCURRENT = 100
CONCURRENT_BYTES = 1 << 20
KEX_FAIR = "curve25519-sha256"
IDLE_SECONDS = 10.0


# -- the client ---------------------------------------------------------------------


class Client:
    def __init__(self, work: Path) -> None:
        self.key = work / "client_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        self.pub = (work / "client_key.pub").read_text()
        self.work = work

    def sftp(self, server: Any, lines: list[str], *, kex: str | None = None) -> float:
        batch = self.work / f"batch-{os.getpid()}-{time.monotonic_ns()}"
        batch.write_text("\n".join(lines) + "\n")
        args = self.args(server, kex) + ["-b", str(batch), f"{server.user}@127.0.0.1"]
        start = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - start
        batch.unlink()
        if proc.returncode != 0:
            raise RuntimeError(f"sftp to {server.name} failed: {proc.stderr.strip()[-500:]}")
        return elapsed

    def args(self, server: Any, kex: str | None) -> list[str]:
        args = [
            "sftp", "-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-P", str(server.port),
        ]
        if kex:
            args += ["-o", f"KexAlgorithms={kex}"]
        return args


# -- measures -------------------------------------------------------------------------


def measure_big(client: Client, server: Any, big: Path) -> float:
    elapsed = client.sftp(server, [f"put {big} {server.remote('big.bin')}"], kex=KEX_FAIR)
    server.settle(1)
    return BIG_MIB / elapsed


def measure_small(client: Client, server: Any, small_dir: Path) -> tuple[float, float]:
    """Files per second, and the server's CPU time per file (µs) while they
    were uploaded."""
    cpu = server.cpu_seconds()
    elapsed = client.sftp(server, [f"put {small_dir}/* {server.remote('')}"], kex=KEX_FAIR)
    cpu_per_file = (server.cpu_seconds() - cpu) / SMALL_FILES * 1e6
    server.settle(SMALL_FILES)
    return SMALL_FILES / elapsed, cpu_per_file


def measure_latency(client: Client, server: Any, one: Path, kex: str | None) -> float:
    times = []
    for i in range(LATENCY_RUNS):
        times.append(client.sftp(server, [f"put {one} {server.remote(f'lat{i}.csv')}"], kex=kex))
    server.settle(LATENCY_RUNS)
    return statistics.median(times) * 1000


def measure_concurrent(client: Client, server: Any, payload: Path) -> dict[str, float]:
    batch_files = []
    procs = []
    start = time.perf_counter()
    for i in range(CONCURRENT):
        batch = client.work / f"conc-{i}"
        batch.write_text(f"put {payload} {server.remote(f'c{i:03d}.bin')}\n")
        batch_files.append(batch)
        procs.append(subprocess.Popen(
            client.args(server, KEX_FAIR) + ["-b", str(batch), f"{server.user}@127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
    ok = sum(1 for p in procs if p.wait(600) == 0)
    elapsed = time.perf_counter() - start
    for batch in batch_files:
        batch.unlink()
    server.settle(ok)
    return {"ok": ok, "seconds": elapsed, "mib_s": ok * CONCURRENT_BYTES / (1 << 20) / elapsed}


def measure_idle_client(client: Client, server: Any) -> float:
    """A connected idle client costs the server no CPU: the server's CPU
    seconds while one `sftp` session, logged in and answered once, sends
    nothing for IDLE_SECONDS."""
    proc = subprocess.Popen(
        client.args(server, KEX_FAIR) + ["-b", "-", f"{server.user}@127.0.0.1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    watchdog = threading.Timer(60 + IDLE_SECONDS, proc.kill)
    watchdog.start()
    try:
        proc.stdin.write("pwd\n")
        proc.stdin.flush()
        while not (line := proc.stdout.readline()).startswith("Remote working directory"):
            if not line:
                raise RuntimeError(f"the idle client of {server.name} did not get in")
        time.sleep(1.0)  # what the login left to do (audit records) is done
        cpu = server.cpu_seconds()
        time.sleep(IDLE_SECONDS)
        used = server.cpu_seconds() - cpu
        if proc.poll() is not None:
            raise RuntimeError(f"the idle client of {server.name} was disconnected")
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        proc.wait(30)
        watchdog.cancel()
    return used
