"""`hostkey known-hosts` prints the ports a running `serve` really listens on
(DATA_DIR/status.json, written by serve), else the configured ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bwsandbox.cli.main import main


def _known_hosts(data: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    capsys.readouterr()
    assert main(["hostkey", "known-hosts", "--data-dir", str(data), *extra]) == 0
    return capsys.readouterr().out


def _status(data: Path, pid: int, host_keys: list[dict[str, str]] | None = None) -> None:
    data.mkdir(parents=True, exist_ok=True)
    endpoints = {"us": {"host": "127.0.0.1", "port": 40001}, "eu": {"host": "127.0.0.1", "port": 40002}}
    status = {"endpoints": endpoints, "host_keys": host_keys or [], "pid": pid}
    (data / "status.json").write_text(json.dumps(status))


def test_the_running_servers_ports_are_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _status(tmp_path, os.getpid())
    out = _known_hosts(tmp_path, capsys)
    assert "[127.0.0.1]:40001 ssh-ed25519 " in out and "[127.0.0.1]:40002 ssh-ed25519 " in out
    assert ":2222 " not in out


def test_an_explicit_port_still_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _status(tmp_path, os.getpid())
    out = _known_hosts(tmp_path, capsys, "--port", "5000")
    assert "[127.0.0.1]:5000 " in out and "[127.0.0.1]:40002 " in out


def test_a_status_file_left_by_a_dead_server_is_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    _status(tmp_path, int(dead.stdout))
    out = _known_hosts(tmp_path, capsys)
    assert "[127.0.0.1]:2222 " in out and ":40001 " not in out


def test_tenant_add_prints_the_running_servers_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _status(tmp_path, os.getpid())
    argv = ["tenant", "add", "acme", "--username", "u", "--password", "p", "--data-dir", str(tmp_path)]
    assert main(argv) == 0
    assert "sftp -P 40001 u@" in capsys.readouterr().out


def test_hostkey_show_says_when_the_running_server_offers_other_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hostkey", "show", "--format", "json", "--data-dir", str(tmp_path)]) == 0
    keys = json.loads(capsys.readouterr().out)["host_keys"]
    _status(tmp_path, os.getpid(), keys)
    assert main(["hostkey", "show", "--data-dir", str(tmp_path)]) == 0
    assert "still offers" not in capsys.readouterr().out
    assert main(["hostkey", "rotate", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["hostkey", "show", "--data-dir", str(tmp_path)]) == 0
    assert "the running `serve` still offers the keys it started with" in capsys.readouterr().out
    assert main(["hostkey", "known-hosts", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("# Note: the running `serve` still offers the keys")


def test_hostkey_show_json_has_every_form_the_text_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hostkey", "show", "--format", "json", "--data-dir", str(tmp_path)]) == 0
    keys = json.loads(capsys.readouterr().out)["host_keys"]
    ed = next(k for k in keys if k["type"] == "ssh-ed25519")
    assert ed["putty"] == f"ssh-ed25519 255 {ed['sha256']}"
    assert ed["curl_sha256"] == ed["sha256"].removeprefix("SHA256:")


def test_keys_made_in_a_data_directory_without_any_are_said_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hostkey", "known-hosts", "--data-dir", str(tmp_path / "new")]) == 0
    first = capsys.readouterr()
    assert "had no host keys: new ones were made there" in first.err and "ssh-ed25519" in first.out
    assert main(["hostkey", "known-hosts", "--data-dir", str(tmp_path / "new")]) == 0
    assert capsys.readouterr().err == ""  # the same keys, nothing to say
