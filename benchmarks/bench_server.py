"""Server benchmark: the sandbox against an OpenSSH sshd baseline (issue #3).

    python -m benchmarks server              (6 interleaved rounds)
    BENCH_ROUNDS=12 python -m benchmarks server

Both servers run as separate processes on loopback and are driven by the
same OpenSSH `sftp` client with the same ed25519 client key:

- baseline: `/usr/sbin/sshd -D -f CONFIG` on a free high port with its own
  host keys, `Subsystem sftp internal-sftp`, `ForceCommand internal-sftp`,
  root logging in by public key, MaxStartups 200 (the default 10:30:100
  drops connections when ~20 clients connect at once, CLIENTS.md), no chroot
  (ChrootDirectory needs a root-owned path outside the world-writable temp
  folder; it adds nothing per transfer). It never touches the system sshd or
  port 22; it only needs /run/sshd (sshd's privilege separation folder).
- sandbox: `Sandbox` in its own process (`--serve`), ingest worker off, one
  tenant with the client key authorized, uploads into /incoming and picked up
  into the store as in production use. A second sandbox with
  `busy_poll_us=0` goes through the same measures, to show what the
  default busy-polling (server/busypoll.py) buys or costs in the same run,
  with each sandbox's CPU time per small file and while idle.

Measures, per round, the servers interleaved (each round another of the six
orders of the three, and every
measure ends with sync(2), so no server pays for another's writeback):
one 200 MiB upload; 1,000 files of 2 KiB in one session; connect+login+put
latency (defaults, and `-o KexAlgorithms=curve25519-sha256`, since OpenSSH
negotiates sntrup761 with sshd but not with asyncssh); 100 concurrent clients
uploading 1 MiB each. Reports medians; writes benchmarks/out/server.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BIG_MIB = 200
SMALL_FILES = 1000
SMALL_BYTES = 2048
LATENCY_RUNS = 10
CONCURRENT = 100
CONCURRENT_BYTES = 1 << 20
KEX_FAIR = "curve25519-sha256"

TARGETS = {
    "throughput_ratio": 1.0,  # sandbox MiB/s >= 1.0 x sshd
    "files_ratio": 1.0,  # sandbox files/s >= 1.0 x sshd
    "latency_ratio": 0.3,  # sandbox latency <= 0.3 x sshd (defaults)
}


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


# -- the two servers ---------------------------------------------------------------


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

    def remote(self, name: str) -> str:
        return str(self.dest / name)

    def settle(self, expected: int) -> None:
        """Clear what the last measure uploaded."""
        for path in self.dest.iterdir():
            path.unlink()
        os.sync()  # the next measure does not share the disk with this one's writeback

    def cpu_seconds(self) -> float | None:
        return None  # spread over per-connection processes: not measured

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def sandbox_name(busy_poll_us: float | None) -> str:
    return "sandbox" if busy_poll_us is None else f"sandbox, busy_poll_us={busy_poll_us:g}"


class SandboxServer:
    def __init__(self, work: Path, client_pub: str, busy_poll_us: float | None = None) -> None:
        # busy_poll_us None: the default setting; a value: a variant, measured
        # the same way (the same history, so neither server is "fresher").
        self.name = sandbox_name(busy_poll_us)
        self.data = work / self.name.replace(", ", "-").replace("=", "")
        status = self.data.with_name(self.data.name + "-status.json")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_server", "--serve", str(self.data), str(status),
             client_pub, *([] if busy_poll_us is None else [str(busy_poll_us)])],
            cwd=Path(__file__).resolve().parent.parent,
        )
        deadline = time.monotonic() + 60
        while not status.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.05)
        self.port = int(json.loads(status.read_text())["endpoints"]["us"]["port"])
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
        """CPU time (user + system, all threads) the sandbox process used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._db.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def _serve(data: Path, status: Path, client_pub: str, busy_poll_us: str | None) -> None:
    """The sandbox process of the benchmark."""
    from bwsandbox import store, tenants
    from bwsandbox.config import load
    from bwsandbox.sandbox import Sandbox

    settings = load(
        {"data_dir": data, "port": 0, "eu_port": 0, "max_sessions_per_tenant": 500,
         "lockout_attempts": 0, "busy_poll_us": busy_poll_us},
        env={},
    )
    conn = store.connect(settings.db_path)
    with store.transaction(conn):
        tenants.add(conn, name="bench", username="bench", password=os.urandom(8).hex(),
                    authorized_keys=client_pub, created_at="2026-01-01T00:00:00+00:00")
    conn.close()

    async def run() -> None:
        sandbox = Sandbox(settings, ingest=False)
        await sandbox.start()
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, done.set)
        tmp = status.with_suffix(".tmp")
        tmp.write_text(json.dumps(sandbox.status()))
        os.replace(tmp, status)
        await done.wait()
        await sandbox.stop()

    asyncio.run(run())


# -- the client ---------------------------------------------------------------------


class Client:
    def __init__(self, work: Path) -> None:
        self.key = work / "client_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        self.pub = (work / "client_key.pub").read_text()
        self.work = work

    def sftp(self, server: Any, lines: list[str], *, user: str, kex: str | None = None) -> float:
        batch = self.work / f"batch-{os.getpid()}-{time.monotonic_ns()}"
        batch.write_text("\n".join(lines) + "\n")
        args = self.args(server, user, kex) + ["-b", str(batch), f"{user}@127.0.0.1"]
        start = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - start
        batch.unlink()
        if proc.returncode != 0:
            raise RuntimeError(f"sftp to {server.name} failed: {proc.stderr.strip()[-500:]}")
        return elapsed

    def args(self, server: Any, user: str, kex: str | None) -> list[str]:
        args = [
            "sftp", "-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-P", str(server.port),
        ]
        if kex:
            args += ["-o", f"KexAlgorithms={kex}"]
        return args


def _user(server: Any) -> str:
    return "root" if server.name == "sshd" else "bench"


NO_POLL = sandbox_name(0)


# -- measures -------------------------------------------------------------------------


def measure_big(client: Client, server: Any, big: Path) -> float:
    elapsed = client.sftp(server, [f"put {big} {server.remote('big.bin')}"], user=_user(server), kex=KEX_FAIR)
    server.settle(1)
    return BIG_MIB / elapsed


def measure_small(client: Client, server: Any, small_dir: Path) -> tuple[float, float | None]:
    """Files per second, and the server's CPU time per file (µs) while they
    were uploaded (None for sshd)."""
    target = server.remote("")
    cpu = server.cpu_seconds()
    elapsed = client.sftp(server, [f"put {small_dir}/* {target}"], user=_user(server), kex=KEX_FAIR)
    cpu_per_file = None if cpu is None else (server.cpu_seconds() - cpu) / SMALL_FILES * 1e6
    server.settle(SMALL_FILES)
    return SMALL_FILES / elapsed, cpu_per_file


IDLE_SECONDS = 5.0


def measure_idle(server: Any) -> float:
    """CPU seconds the server uses while nobody is connected (busy-polling must sleep)."""
    cpu = server.cpu_seconds()
    time.sleep(IDLE_SECONDS)
    return float(server.cpu_seconds() - cpu)


def measure_latency(client: Client, server: Any, one: Path, kex: str | None) -> float:
    times = []
    for i in range(LATENCY_RUNS):
        times.append(client.sftp(server, [f"put {one} {server.remote(f'lat{i}.csv')}"], user=_user(server),
                                 kex=kex))
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
            client.args(server, _user(server), KEX_FAIR) + ["-b", str(batch), f"{_user(server)}@127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
    ok = sum(1 for p in procs if p.wait(600) == 0)
    elapsed = time.perf_counter() - start
    for batch in batch_files:
        batch.unlink()
    server.settle(ok)
    return {"ok": ok, "seconds": elapsed, "mib_s": ok * CONCURRENT_BYTES / (1 << 20) / elapsed}


@contextlib.contextmanager
def _servers(work: Path, client: Client) -> Iterator[list[Any]]:
    started: list[Any] = []
    try:
        started.append(Sshd(work, client.pub))
        started.append(SandboxServer(work, client.pub))
        started.append(SandboxServer(work, client.pub, busy_poll_us=0))
        yield started
    finally:
        for server in started:
            with contextlib.suppress(Exception):
                server.stop()


def run(rounds: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bwsandbox-bench-"))
    try:
        client = Client(work)
        big = work / "big.bin"
        with big.open("wb") as fh:
            for _ in range(BIG_MIB):
                fh.write(os.urandom(1 << 20))
        small_dir = work / "small"
        small_dir.mkdir()
        for i in range(SMALL_FILES):
            (small_dir / f"s{i:04d}.csv").write_bytes(os.urandom(SMALL_BYTES))
        one = work / "one.csv"
        one.write_bytes(os.urandom(SMALL_BYTES))
        payload = work / "payload.bin"
        payload.write_bytes(os.urandom(CONCURRENT_BYTES))
        with _servers(work, client) as servers:
            samples: dict[str, dict[str, list[float]]] = {server.name: {} for server in servers}
            # Every order of the servers in turn (6 rounds: each once): a
            # place can be favoured, and so can a neighbour (what ran just
            # before, the disk's state).
            orders = list(itertools.permutations(servers))
            for r in range(rounds):
                for server in orders[r % len(orders)]:
                    s = samples[server.name]
                    s.setdefault("big_mib_s", []).append(measure_big(client, server, big))
                    files_s, cpu_per_file = measure_small(client, server, small_dir)
                    s.setdefault("files_s", []).append(files_s)
                    if cpu_per_file is not None:
                        s.setdefault("cpu_us_per_file", []).append(cpu_per_file)
                    s.setdefault("latency_ms", []).append(measure_latency(client, server, one, None))
                    s.setdefault("latency_fair_ms", []).append(measure_latency(client, server, one, KEX_FAIR))
                    conc = measure_concurrent(client, server, payload)
                    s.setdefault("concurrent_ok", []).append(conc["ok"])
                    s.setdefault("concurrent_mib_s", []).append(conc["mib_s"])
                print(f"  round {r + 1}/{rounds}: " + "; ".join(
                    f"{name} " + ", ".join(f"{k}={v[-1]:.1f}" for k, v in s.items())
                    for name, s in samples.items()), flush=True)
            for server in servers:  # after the last round, nobody connected
                if server.cpu_seconds() is not None:
                    samples[server.name]["idle_cpu_s"] = [measure_idle(server)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {name: {k: statistics.median(v) for k, v in s.items()} for name, s in samples.items()}
    ratios = {
        "throughput_ratio": medians["sandbox"]["big_mib_s"] / medians["sshd"]["big_mib_s"],
        "files_ratio": medians["sandbox"]["files_s"] / medians["sshd"]["files_s"],
        "latency_ratio": medians["sandbox"]["latency_ms"] / medians["sshd"]["latency_ms"],
        "latency_fair_ratio": medians["sandbox"]["latency_fair_ms"] / medians["sshd"]["latency_fair_ms"],
        "files_no_poll_ratio": medians[NO_POLL]["files_s"] / medians["sshd"]["files_s"],
        "throughput_no_poll_ratio": medians[NO_POLL]["big_mib_s"] / medians["sshd"]["big_mib_s"],
    }
    # The same ratio within each round (the servers measured in one round),
    # which cancels the machine's drift between rounds; the target must hold
    # for both statistics.
    paired = {
        key + suffix: [a / b for a, b in zip(samples[name][key], samples["sshd"][key], strict=True)]
        for suffix, name in (("", "sandbox"), ("_no_poll", NO_POLL))
        for key in ("big_mib_s", "files_s")
    }
    return {"rounds": rounds, "medians": medians, "ratios": ratios, "samples": samples,
            "paired": paired, "all_concurrent_ok": min(samples["sandbox"]["concurrent_ok"]) == CONCURRENT}


def _report(result: dict[str, Any]) -> int:
    m, r = result["medians"], result["ratios"]
    rows = [
        ("200 MiB upload (MiB/s)", "big_mib_s", "throughput_ratio", ">= 1.0x"),
        (f"{SMALL_FILES} x 2 KiB files (files/s)", "files_s", "files_ratio", ">= 1.0x"),
        ("connect+login+put, defaults (ms)", "latency_ms", "latency_ratio", "<= 0.3x"),
        (f"connect+login+put, {KEX_FAIR} (ms)", "latency_fair_ms", "latency_fair_ratio", ""),
        (f"{CONCURRENT} concurrent clients OK", "concurrent_ok", None, f"= {CONCURRENT}"),
        (f"{CONCURRENT} concurrent, 1 MiB each (MiB/s)", "concurrent_mib_s", None, ""),
    ]
    print(f"medians of {result['rounds']} interleaved rounds")
    print(f"  {'measure':44} {'sshd':>9} {'sandbox':>9} {'ratio':>7}  target")
    for label, key, ratio, target in rows:
        ratio_text = f"{r[ratio]:.2f}x" if ratio else ""
        print(f"  {label:44} {m['sshd'][key]:9.1f} {m['sandbox'][key]:9.1f} {ratio_text:>7}  {target}")
    print(f"  {SMALL_FILES} small files, busy_poll_us=0 (files/s){'':14} {m[NO_POLL]['files_s']:9.1f} "
          f"{r['files_no_poll_ratio']:6.2f}x  (what busy-polling buys)")
    print(f"  200 MiB upload, busy_poll_us=0 (MiB/s){'':23} {m[NO_POLL]['big_mib_s']:9.1f} "
          f"{r['throughput_no_poll_ratio']:6.2f}x")
    for name in ("sandbox", NO_POLL):
        print(f"  {name}: server CPU per small file {m[name]['cpu_us_per_file']:.0f} us; "
              f"CPU while idle {m[name]['idle_cpu_s']:.2f} s in {IDLE_SECONDS:g} s")
    paired = result["paired"]
    for label, key in (("200 MiB upload", "big_mib_s"), (f"{SMALL_FILES} small files", "files_s"),
                       (f"{SMALL_FILES} small files, busy_poll_us=0", "files_s_no_poll"),
                       ("200 MiB upload, busy_poll_us=0", "big_mib_s_no_poll")):
        per_round = ", ".join(f"{x:.2f}" for x in paired[key])
        mid = statistics.median(paired[key])
        print(f"  {label}, sandbox/sshd per round: {per_round} (median {mid:.2f}x)")
    met = (
        r["throughput_ratio"] >= TARGETS["throughput_ratio"]
        and r["files_ratio"] >= TARGETS["files_ratio"]
        and statistics.median(paired["big_mib_s"]) >= TARGETS["throughput_ratio"]
        and statistics.median(paired["files_s"]) >= TARGETS["files_ratio"]
        and r["latency_ratio"] <= TARGETS["latency_ratio"]
        and result["all_concurrent_ok"]
    )
    print(f"  targets {'met' if met else 'NOT met'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = argv or []
    if argv[:1] == ["--serve"]:
        _serve(Path(argv[1]), Path(argv[2]), argv[3], argv[4] if len(argv) > 4 else None)
        return 0
    rounds = int(os.environ.get("BENCH_ROUNDS", "6"))
    if rounds % 6:
        print(f"note: {rounds} rounds do not take every order of the three servers equally often"
              " (a multiple of 6 does)", flush=True)
    result = run(rounds)
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "server.json").write_text(json.dumps(result, indent=2))
    return _report(result)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
