"""The command-line contract of the server side, run as users run
it: `bwsandbox serve` in a subprocess, `tenant`, `files`, `hostkey`."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from clients import Account, Trust, openssh_batch, openssh_put
from conftest import SandboxFactory, wait_until

from bwsandbox.server import hostkeys

BWSANDBOX = [str(Path(sys.executable).parent / "bwsandbox")]  # the installed entry point


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BWSANDBOX, *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60,
    )


class Serve:
    def __init__(self, data_dir: Path, tmp: Path) -> None:
        self.status_file = tmp / "status.json"
        self.out = (tmp / "serve.out").open("w+")
        self.proc = subprocess.Popen(
            [*BWSANDBOX, "serve", "--data-dir", str(data_dir), "--port", "0", "--eu-port", "0",
             "--http-port", "0", "--status-file", str(self.status_file)],
            stdout=self.out, stderr=subprocess.STDOUT, text=True,
        )
        wait_until(lambda: self.status_file.exists() or self.proc.poll() is not None, timeout=30)
        assert self.proc.poll() is None, self.output()
        self.status: dict[str, Any] = json.loads(self.status_file.read_text())

    def output(self) -> str:
        self.out.flush()
        return Path(self.out.name).read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(30)
        self.out.close()
        return rc


def test_serve_fresh_data_dir_status_file_demo_tenant_and_clean_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    serve = Serve(data, tmp_path)
    try:
        status = serve.status
        assert set(status) == {"endpoints", "host_keys", "http"}
        assert set(status["endpoints"]) == {"us", "eu"}
        for endpoint in status["endpoints"].values():
            assert endpoint["host"] == "127.0.0.1" and endpoint["port"] > 0
        assert [k["type"] for k in status["host_keys"]] == ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]
        for key in status["host_keys"]:
            assert key["sha256"].startswith("SHA256:") and key["md5"].startswith("MD5:")
        out = wait_until(lambda: "Follow your uploads" in serve.output() and serve.output(), timeout=10)
        match = re.search(r"username (\S+)\s+password (\S+)", out)
        assert match, out
        ed = status["host_keys"][0]
        assert f"ssh-ed25519 255 {ed['sha256']}" in out  # PuTTY / FileZilla form
        assert f" files --data-dir {shlex.quote(str(data))} | report NAME --data-dir " in out  # a data dir

        home = tmp_path / "home"
        home.mkdir()
        account = Account(host="127.0.0.1", port=status["endpoints"]["us"]["port"],
                          username=match.group(1), password=match.group(2), home=home)
        local = tmp_path / "demo.csv"
        local.write_text("email,first_name,last_name\na@example.com,A,B\n")
        result = openssh_put(account, local, "incoming/demo.csv", Trust.ACCEPT)
        assert result.ok, result.out

        def listed() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = json.loads(cli("files", "--format", "json", data_dir=data).stdout)
            return rows

        rows = wait_until(listed, timeout=30)
        assert rows[0]["tenant"] == "demo" and rows[0]["name"] == "demo.csv"
        assert rows[0]["bytes"] == local.stat().st_size
        assert {"tenant", "name", "bytes", "sha256", "received_at", "state", "verdict"} <= set(rows[0])
        assert rows[0]["state"] in {"queued", "processing", "done", "failed"}
    finally:
        rc = serve.stop()
    assert rc == 0
    assert not serve.status_file.exists()

    # Same data dir again: same keys, no new demo password.
    again = Serve(data, tmp_path)
    try:
        assert again.status["host_keys"] == status["host_keys"]
    finally:
        assert again.stop(signal.SIGINT) == 0


def test_tenant_add_list_and_files_filter(tmp_path: Path) -> None:
    data = tmp_path / "data"
    added = cli("tenant", "add", "acme", "--username", "acme-sftp", "--password", "pw", "--region", "eu",
                "--profile", "engage", "--licenses", "50", "--contact", "it@acme.test", "--locale", "en-GB",
                data_dir=data)
    assert added.returncode == 0, added.stderr
    duplicate = cli("tenant", "add", "acme", "--username", "x", "--password", "pw", data_dir=data)
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
    listed = json.loads(cli("tenant", "list", "--format", "json", data_dir=data).stdout)
    assert listed == [{
        "name": "acme", "region": "eu", "profile": "engage", "username": "acme-sftp",
        "contact": "it@acme.test", "licenses": 50, "locale": "en-GB", "custom_keys": [],
    }]
    assert json.loads(cli("files", "--tenant", "acme", "--format", "json", data_dir=data).stdout) == []
    unknown = cli("files", "--tenant", "nope", data_dir=data)
    assert unknown.returncode == 2


def test_hostkey_known_hosts_lines_work_for_strict_openssh_and_rotation_is_detected(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    harness = sandbox_factory()
    data = harness.settings.data_dir
    account = harness.add_tenant(tmp_path / "home")
    us, eu = harness.sandbox.port("us"), harness.sandbox.port("eu")
    lines = cli("hostkey", "known-hosts", "--port", str(us), "--eu-port", str(eu), data_dir=data).stdout
    assert f"[127.0.0.1]:{us} ssh-ed25519 " in lines and f"[127.0.0.1]:{eu} ecdsa-sha2-nistp256 " in lines
    # Only the us lines: OpenSSH skips UpdateHostKeys when the same key is
    # also known under another name (both endpoints share the sandbox's keys).
    account.known_hosts.write_text("".join(ln + "\n" for ln in lines.splitlines() if f":{us} " in ln))
    local = tmp_path / "a.csv"
    local.write_text("x")
    assert openssh_put(account, local, "incoming/a.csv", Trust.KNOWN).ok

    shown = cli("hostkey", "show", "--format", "json", data_dir=data)
    before = json.loads(shown.stdout)["host_keys"]
    assert before == [{**k.to_dict(), "putty": k.putty, "curl_sha256": k.curl_sha256}
                      for k in harness.sandbox.host_keys]

    # Announce: current keys stay in use, OpenSSH (UpdateHostKeys) learns the new ones.
    assert cli("hostkey", "rotate", "--announce", data_dir=data).returncode == 0
    harness.stop()
    harness = sandbox_factory(data, port=us, eu_port=eu)
    staged = [k.to_dict() for k in harness.sandbox.announced_keys]
    assert staged and staged != before
    new_ed = next(k for k in harness.sandbox.announced_keys if k.type == "ssh-ed25519")

    def learned() -> bool:
        # The client asks the server to prove the new keys after login; a
        # session that ends at once may not wait for the answer: keep it busy.
        result = openssh_batch(account, [f"put {local} incoming/b.csv", "ls", "ls", "ls"], Trust.KNOWN,
                               extra=["-o", "UpdateHostKeys=yes"])
        assert result.ok, result.out
        return new_ed.public.split()[1] in account.known_hosts.read_text()

    wait_until(learned, timeout=30, interval=0.1)

    # Switch to the announced keys: the client that learned them keeps working...
    assert cli("hostkey", "rotate", data_dir=data).returncode == 0
    harness.stop()
    harness = sandbox_factory(data, port=us, eu_port=eu)
    assert harness.sandbox.host_keys[0].sha256 == new_ed.sha256
    assert openssh_put(account, local, "incoming/c.csv", Trust.KNOWN).ok
    # ...and a plain rotation is detected: OpenSSH refuses the changed key.
    assert cli("hostkey", "rotate", data_dir=data).returncode == 0
    harness.stop()
    harness = sandbox_factory(data, port=us, eu_port=eu)
    refused = openssh_put(account, local, "incoming/d.csv", Trust.KNOWN)
    assert not refused.ok and "HOST IDENTIFICATION HAS CHANGED" in refused.out
    assert len(list((hostkeys.keys_dir(data) / "retired").iterdir())) == 2


def test_known_hosts_follows_a_running_serve_on_port_0(tmp_path: Path) -> None:
    data = tmp_path / "data"
    serve = Serve(data, tmp_path)
    try:
        us = serve.status["endpoints"]["us"]["port"]
        eu = serve.status["endpoints"]["eu"]["port"]
        assert json.loads((data / "status.json").read_text())["endpoints"] == serve.status["endpoints"]
        lines = cli("hostkey", "known-hosts", data_dir=data).stdout
        assert f"[127.0.0.1]:{us} ssh-ed25519 " in lines and f"[127.0.0.1]:{eu} ssh-ed25519 " in lines
    finally:
        assert serve.stop() == 0
    assert not (data / "status.json").exists()
    assert "[127.0.0.1]:2222 " in cli("hostkey", "known-hosts", data_dir=data).stdout


def test_a_second_serve_on_the_same_data_dir_is_refused_and_leaves_the_first_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    serve = Serve(data, tmp_path)
    try:
        second = subprocess.run(
            [*BWSANDBOX, "serve", "--data-dir", str(data), "--port", "0", "--eu-port", "0",
             "--http-port", "0"],
            capture_output=True, text=True, timeout=60,
        )
        assert second.returncode == 1
        assert f"another `bwsandbox serve` (pid {serve.proc.pid}) already uses" in second.stderr
        assert "Traceback" not in second.stderr
        assert json.loads((data / "status.json").read_text())["pid"] == serve.proc.pid
    finally:
        assert serve.stop() == 0
    (tmp_path / "again").mkdir()
    Serve(data, tmp_path / "again").stop()  # the lock went with the first serve
