"""The sandbox process of the server benchmark, the same for every build
compared: `python benchmarks/serve_sandbox.py DATA STATUS CLIENT_PUB`. It
imports nothing from `benchmarks`, so another commit's venv can run this
file by its path and serve that commit's `bwsandbox`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path


def _serve(data: Path, status: Path, client_pub: str) -> None:
    """The sandbox process of the benchmark (the same for every build compared)."""
    import bwsandbox
    from bwsandbox import store, tenants
    from bwsandbox.config import load
    from bwsandbox.sandbox import Sandbox

    settings = load(
        {"data_dir": data, "port": 0, "eu_port": 0, "max_sessions_per_tenant": 500,
         "lockout_attempts": 0},
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
        # Which code serves, and which of its C extensions it loaded.
        extensions = sorted(
            name for name, module in list(sys.modules.items())
            if name.startswith("bwsandbox.") and str(getattr(module, "__file__", "")).endswith(".so")
        )
        bench = {"code": str(Path(bwsandbox.__file__).resolve().parent), "extensions": extensions}
        tmp = status.with_suffix(".tmp")
        tmp.write_text(json.dumps({**sandbox.status(), "bench": bench}))
        os.replace(tmp, status)
        await done.wait()
        await sandbox.stop()

    asyncio.run(run())


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
