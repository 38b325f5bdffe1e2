"""A guest in integrators' processes: importing bwsandbox changes nothing and
loads no server; a sandbox that served an upload leaves asyncssh, asyncio
and cryptography exactly as it found them; nothing warns.

Each check runs in a fresh interpreter with `-W error`, as a host suite with
`filterwarnings = error` would, so what other tests imported cannot hide or
fake a change."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )


def test_importing_bwsandbox_its_testing_module_and_plugin_changes_nothing(tmp_path: Path) -> None:
    got = _run(
        """
        import csv, sys, warnings
        filters, limit = list(warnings.filters), csv.field_size_limit()
        import bwsandbox, bwsandbox.testing, bwsandbox.pytest_plugin
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                       {"asyncssh", "cryptography", "polars", "numpy", "pysequoia", "rich"})
        assert not heavy, f"imported at import time: {heavy}"
        assert not any(m.startswith("bwsandbox.server") for m in sys.modules), "the server was imported"
        assert warnings.filters == filters, "the warning filters changed"
        assert csv.field_size_limit() == limit, "csv.field_size_limit changed"
        print("ok")
        """,
        tmp_path,
    )
    assert got.returncode == 0 and got.stdout.strip() == "ok", got.stdout + got.stderr
    assert got.stderr == ""


def test_a_sandbox_that_served_an_upload_changed_no_attribute_of_asyncssh_asyncio_or_cryptography(
    tmp_path: Path,
) -> None:
    got = _run(
        """
        import asyncio, sys, warnings
        from pathlib import Path

        import paramiko
        from bwsandbox.sshlib import asyncssh  # loaded (quietly) before the first snapshot
        import cryptography.hazmat.primitives.ciphers.aead, asyncssh.crypto.chacha

        asyncio.run(asyncio.sleep(0))  # asyncio's own lazily made state (the loop policy)
        import numpy, polars  # numpy adds its own warning filters when first imported (any user of numpy)
        ROOTS = ("asyncssh", "asyncio", "cryptography")
        # asyncssh's own bookkeeping, which every connection moves (a counter
        # asyncssh increments itself); nothing of the sandbox's
        OWN_STATE = {"asyncssh.connection.SSHConnection.next_conn"}

        def snapshot():
            seen = {}
            for name, module in list(sys.modules.items()):
                if name.split(".")[0] not in ROOTS or module is None:
                    continue
                for attr, value in list(vars(module).items()):
                    seen[f"{name}.{attr}"] = id(value)
                    if isinstance(value, type) and value.__module__ == name:
                        for cattr, cvalue in list(vars(value).items()):
                            seen[f"{name}.{attr}.{cattr}"] = id(cvalue)
            return seen

        before = snapshot()
        filters = list(warnings.filters)
        from bwsandbox.testing import SandboxServer
        server = SandboxServer(Path("data")).start()
        try:
            sb = server.reset()
            client = paramiko.SSHClient()
            client.load_host_keys(str(sb.known_hosts))
            client.connect(sb.host, sb.port, username=sb.username, password=sb.password,
                           allow_agent=False, look_for_keys=False)
            with client.open_sftp() as sftp, sftp.open("incoming/users_20260101.csv", "wb") as f:
                f.write(b"email,first_name,last_name\\r\\nada@example.com,Ada,Lovelace\\r\\n")
            client.close()
            report = sb.wait_processed("users_20260101.csv")
            assert report["applied"]["created"] == 1, report
            server.check()
        finally:
            server.stop()
        after = snapshot()
        changed = sorted(k for k in before if after.get(k) != before[k] and k not in OWN_STATE)
        assert not changed, f"changed by the sandbox: {changed}"
        assert warnings.filters == filters, [f for f in warnings.filters if f not in filters]
        print("ok")
        """,
        tmp_path,
    )
    assert got.returncode == 0 and got.stdout.strip() == "ok", got.stdout + got.stderr


def test_the_cli_prints_no_warning(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("bwsandbox")
    got = subprocess.run(
        [str(exe), "hostkey", "show", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "error", "HOME": str(tmp_path)},
    )
    assert got.returncode == 0, got.stdout + got.stderr
    assert "Warning" not in got.stderr, got.stderr
