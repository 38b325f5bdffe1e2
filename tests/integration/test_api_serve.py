"""`bwsandbox serve` as a CI service container runs it: configured by
environment only (tenants declared in a file named by BWSANDBOX_TENANTS_FILE),
the HTTP API in the same process, its address in the status file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return dict(json.loads(path.read_text()))
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"serve exited {proc.returncode}: {err}")
        time.sleep(0.05)  # a subprocess's file: nothing to wait on but the file system
    raise AssertionError("serve did not write its status file")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    tenants = tmp_path / "tenants.json"
    tenants.write_text(json.dumps({"tenants": [
        {"name": "acme", "password": "acme-pass", "contact": "tc@acme.example",
         "users": [{"email": "ceo@acme.example", "first_name": "Cy", "last_name": "Eo"}]},
        {"name": "globex", "region": "eu"},
    ]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWSANDBOX_")}
    env.update({"BWSANDBOX_HOME": str(tmp_path / "data"), "BWSANDBOX_PORT": "0", "BWSANDBOX_EU_PORT": "0",
                "BWSANDBOX_HTTP_PORT": "0", "BWSANDBOX_TENANTS_FILE": str(tenants)})
    status_file = tmp_path / "status.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bwsandbox.cli", "serve", "--status-file", str(status_file)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield wait_for(status_file, proc), proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def get(status: dict[str, Any], path: str) -> Any:
    http = status["http"]
    with urllib.request.urlopen(f"http://{http['host']}:{http['port']}{path}", timeout=30) as response:
        return json.loads(response.read())


def test_serve_configured_by_environment_declares_tenants_and_serves_http(
    served: tuple[dict[str, Any], subprocess.Popen[str]],
) -> None:
    status, proc = served
    assert status["http"]["host"] == "127.0.0.1" and status["http"]["port"] > 0
    assert get(status, "/healthz") == {"status": "ok"}
    names = sorted(t["name"] for t in get(status, "/api/v1/tenants"))
    assert names == ["acme", "globex"]  # declared tenants replace the demo one
    assert [u["email"] for u in get(status, "/api/v1/tenants/acme/users")] == ["ceo@acme.example"]
    globex = get(status, "/api/v1/tenants/globex")
    assert globex["endpoint"]["port"] == status["endpoints"]["eu"]["port"]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Declared tenant globex: password " in out  # generated, so printed once
    assert "acme-pass" not in out
