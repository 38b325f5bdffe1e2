"""The examples for integrators who do not write Python (examples/api-curl,
examples/api-node), run against a real sandbox with its HTTP API: they seed,
upload and assert through the API and SFTP only."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bwsandbox.testing import SandboxServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = SandboxServer(tmp_path_factory.mktemp("clients"), http_port=0, pickup_quiet_seconds=0.2).start()
    assert server.http_url is not None
    yield server.http_url
    server.stop()
    server.check()


def _run_curl_example(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: run scripts/bootstrap.sh --test")
    (tmp_path / "tmp").mkdir()
    return subprocess.run(
        ["bash", str(EXAMPLES / "api-curl" / "integrator.sh")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "BWSANDBOX_URL": url, "TMPDIR": str(tmp_path / "tmp"), "HOME": str(tmp_path)},
    )


def test_the_curl_example(url: str, tmp_path: Path) -> None:
    done = _run_curl_example(url, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "curl example: accepted" in done.stdout
    assert list((tmp_path / "tmp").iterdir()) == []  # its export file was in a folder of its own, removed


def test_the_curl_example_cleans_up_when_it_fails(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    done = _run_curl_example(f"http://127.0.0.1:{port}", tmp_path)
    assert done.returncode != 0
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_node_example(url: str, tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.fail("node/npm are missing: run scripts/bootstrap.sh --test")
    work = tmp_path / "api-node"
    shutil.copytree(EXAMPLES / "api-node", work, ignore=shutil.ignore_patterns("node_modules"))
    env = {**os.environ, "BWSANDBOX_URL": url, "npm_config_cache": str(tmp_path / "npm-cache"),
           "npm_config_update_notifier": "false"}
    installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=work,
                               capture_output=True, text=True, timeout=300, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    done = subprocess.run(["npm", "test"], cwd=work, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
