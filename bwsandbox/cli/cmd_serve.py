"""`bwsandbox serve` (docs/server.md): the us and eu SFTP endpoints, until SIGINT/SIGTERM.

On a fresh data directory it creates a demo tenant and prints its
credentials. Once listening it writes the status file (`--status-file`):

    {"endpoints": {"us": {"host", "port"}, "eu": {...}},
     "host_keys": [{"type", "sha256", "md5"}], "http": {"host", "port"}}

and always DATA_DIR/status.json (the same, plus `pid`), so `hostkey
known-hosts` prints the ports really listened on (`--port 0`). Both are
removed on a clean stop.

All terminal output goes through `show()`: the live view on a terminal,
plain log lines otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import shlex
import shutil
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import IO

from bwsandbox import clock as clock_mod
from bwsandbox import declare, store
from bwsandbox import tenants as tenants_mod
from bwsandbox.cli import live
from bwsandbox.cli.main import add_data_dir
from bwsandbox.cli.render_server import connect_text, host_keys_text
from bwsandbox.config import DEFAULT_DATA_DIR, DEFAULT_HTTP_PORT, load
from bwsandbox.errors import ServerError
from bwsandbox.fsutil import atomic_write, running_status, runtime_status_path
from bwsandbox.sandbox import Sandbox, Service, ensure_demo_tenant
from bwsandbox.tenants import Region
from bwsandbox.textsafe import one_line


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the SFTP endpoints (us and eu) until interrupted")
    add_data_dir(p)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="us endpoint port (default 2222; 0 picks a free port)")
    p.add_argument("--eu-port", type=int, help="eu endpoint port (default 2223; 0 picks a free port)")
    p.add_argument("--status-file", type=Path, metavar="PATH",
                   help="write endpoints and host keys as JSON here once listening")
    # Where error emails go, and the simulated queue delay
    p.add_argument("--smtp", metavar="HOST:PORT", help="send error emails over SMTP (default: DATA/outbox)")
    p.add_argument("--queue-delay", type=float, metavar="SECONDS", help="simulated delay before each file")
    # The HTTP control plane and web UI (bwsandbox/api), in this process and event loop.
    p.add_argument("--http-port", type=int, metavar="N",
                   help=f"HTTP API and web UI port (default {DEFAULT_HTTP_PORT}; 0 picks a free port)")
    p.add_argument("--http-host", metavar="H",
                   help="HTTP address (default 127.0.0.1; anything else needs BWSANDBOX_API_TOKEN)")
    p.add_argument("--tenants-file", metavar="PATH",
                   help="declare tenants (and seed users) from this JSON file (bwsandbox/declare.py)")
    p.set_defaults(handler=_run)


def _write_status(path: Path, status: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(status, indent=2) + "\n").encode("utf-8"))


class _SafeFormatter(logging.Formatter):
    """A log record is one line, whatever a file name in it holds: its
    control characters are shown escaped (`textsafe`), so a newline in a
    tenant's text cannot forge a log line. A traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return one_line(super().formatMessage(record))


class _OneLinePerEvent(logging.Filter):
    """What `serve` prints itself is not logged a second time: the endpoints
    it listens on (its banner), and the file events (picked up, processed:
    the live view's rows, or one line each on a non-terminal)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            return True
        if record.levelno == logging.WARNING:  # the state line says it, with its reason
            return not (record.name == "bwsandbox.server" and record.msg.startswith("incomplete upload "))
        if record.levelno != logging.INFO:
            return True
        return not (
            (record.name == "bwsandbox.server" and record.msg.startswith("picked up "))
            or (record.name == "bwsandbox.ingest" and record.msg.startswith("file #"))
            or (record.name == "bwsandbox" and record.msg.startswith("listening for "))
        )


def _logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SafeFormatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(_OneLinePerEvent())
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def _run(args: argparse.Namespace) -> int:
    _logging()
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    settings = load({"data_dir": args.data_dir, "host": args.host, "port": args.port,
                     "eu_port": args.eu_port, "smtp": args.smtp, "queue_delay": args.queue_delay,
                     "http_port": args.http_port, "http_host": args.http_host,
                     "tenants_file": args.tenants_file})
    if settings.http_port is None:  # serve always offers the API (BWSANDBOX_HTTP_PORT=off: not)
        settings = dataclasses.replace(settings, http_port=DEFAULT_HTTP_PORT)
        if os.environ.get("BWSANDBOX_HTTP_PORT", "").strip().lower() in ("off", "none"):
            settings = dataclasses.replace(settings, http_port=None)
    lock = _one_serve(settings.data_dir)
    conn = store.connect(settings.db_path)
    try:
        clock = clock_mod.load(conn)
        if clock.warning:
            logging.getLogger("bwsandbox.clock").warning("%s", clock.warning)
        for made in declare.apply(conn, settings):  # before the demo: declared tenants replace it
            if made.password:
                print(f"Declared tenant {made.name}: password {made.password}", file=sys.stdout)
        demo = ensure_demo_tenant(conn, clock)
        services: list[Service] = []
        if settings.http_port is not None:
            from bwsandbox.api import HttpService

            services.append(HttpService(settings))
        # Not `clock`: each reader loads the stored offset as it is then, so a
        # `clock set` while serve runs applies to everything after it.
        sandbox = Sandbox(settings, services=services)  # starts the ingest worker too
        sandbox.start_in_thread()
        if sandbox.http_address is not None:
            host, port = sandbox.http_address
            print(f"bwsandbox: HTTP API and web UI on http://{host}:{port}/  (API docs: /docs)", flush=True)
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        runtime = runtime_status_path(settings.data_dir)
        try:
            _write_status(runtime, {**sandbox.status(), "pid": os.getpid()})
            if args.status_file is not None:
                _write_status(args.status_file, sandbox.status())
            show(sandbox, conn, demo, stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            sandbox.stop_in_thread()
            if args.status_file is not None:
                args.status_file.unlink(missing_ok=True)
            runtime.unlink(missing_ok=True)
    finally:
        conn.close()
        lock.close()
    print("bwsandbox: stopped", file=sys.stderr)
    return 0


def _one_serve(data_dir: Path) -> IO[bytes]:
    """One `serve` per data directory: a second would share the store and the
    status file with the first (and delete it when it stops). The lock goes
    with the process, however it ends."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    fh = (data_dir / "serve.lock").open("ab")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        pid = running_status(data_dir).get("pid")
        who = f" (pid {pid})" if pid else ""
        raise ServerError(f"another `bwsandbox serve`{who} already uses {data_dir}; stop it first") from None
    return fh


def show(
    sandbox: Sandbox, conn: sqlite3.Connection, demo: tuple[str, str, bool], stop: threading.Event
) -> None:
    """Everything `serve` prints, from start to stop (the live view, cli/live.py,
    replaces the live part; keep this the one place)."""
    username, password, created = demo
    keys = sandbox.host_keys
    out = sys.stdout
    lines = [f"bwsandbox: {region} endpoint listening on {sandbox.host(region)}:{sandbox.port(region)}"
             for region in (Region.US, Region.EU)]  # fmt: skip
    if username:
        note = "created on this fresh data directory" if created else "kept from an earlier start"
        lines += [f"Demo tenant ({note}): username {username}  password {password}", "Connect with:",
                  connect_text(sandbox.host(Region.US), sandbox.port(Region.US), username, password, keys)]
    lines.append(host_keys_text(keys))
    if sandbox.announced_keys:
        lines.append(host_keys_text(sandbox.announced_keys, title="Announced new host keys (hostkeys-00)"))
    lines.append(f"Follow your uploads from another terminal: {follow_up(sandbox.data_dir)}")
    # One write: a program reading the banner (a CI script waiting for the
    # password) never sees half of it, whatever the buffering.
    out.write("\n".join(lines) + "\n")
    out.flush()

    def snapshot() -> live.Dashboard:
        creds = [
            (t.name, str(t.region), t.username, password if t.username == username and t.region is Region.US
             else "")
            for t in tenants_mod.all_tenants(conn)
        ]
        return live.Dashboard(
            endpoints={str(r): (sandbox.host(r), sandbox.port(r)) for r in (Region.US, Region.EU)},
            host_keys=[live.HostKeyInfo(type=k.type, bits=k.bits, sha256=k.sha256, md5=k.md5) for k in keys],
            credentials=creds,
            files=live.recent_files(conn, limit=15 if terminal else 200),
        )

    terminal = sys.stdout.isatty()
    live.run_live(snapshot, stop, stamp=lambda: dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"))


def follow_up(data_dir: Path) -> str:
    """The commands another terminal runs to read this sandbox, each with
    `--data-dir DIR` (quoted for a shell) unless DIR is the built-in
    `./.bwsandbox`. A data directory from $BWSANDBOX_HOME is named too: the
    variable may have been set for `serve` alone, and another terminal would
    not see it."""
    option = ""
    if data_dir.resolve() != Path(DEFAULT_DATA_DIR).resolve():
        option = f" --data-dir {shlex.quote(str(data_dir))}"
    return f"{shlex.quote(_command())} files{option} | report NAME{option} | emails{option}"


def _command() -> str:
    """How this shell reaches `bwsandbox`: its name when it is on PATH, else
    the path it was started from (`make serve` runs .venv/bin/bwsandbox)."""
    started = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    found = shutil.which("bwsandbox")
    if started is None or started.name != "bwsandbox" or (found and Path(found).resolve() == started):
        return "bwsandbox"
    try:
        return str(started.relative_to(Path.cwd()))
    except ValueError:
        return str(started)
