"""Tenant names through the API: the one name rule (tenants.name_problem,
counted in UTF-8 bytes, as `tenant add` counts) is a 422 problem; a tenant
whose folders cannot be made is never half-made; one left by an older
sandbox (a name too long for the file system) can be deleted, and its reset
says why it cannot work, never a 500."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from bwsandbox import store
from bwsandbox.testing import SandboxServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    server = SandboxServer(tmp_path_factory.mktemp("names"), http_port=0).start()
    yield server
    server.stop()
    server.check()


def call(server: SandboxServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    assert server.http_url is not None
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.http_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    return status, json.loads(payload) if payload else None


def names(server: SandboxServer) -> list[str]:
    status, tenants = call(server, "GET", "/api/v1/tenants")
    assert status == 200
    return [t["name"] for t in tenants]


def test_a_name_is_limited_in_bytes_not_characters(server: SandboxServer) -> None:
    status, problem = call(server, "POST", "/api/v1/tenants", {"name": "😀" * 80})  # 80 characters
    assert status == 422, problem
    assert "320 bytes in UTF-8" in problem["detail"] and "limit is 100 bytes" in problem["detail"]
    assert "😀" * 80 not in names(server)
    status, made = call(server, "POST", "/api/v1/tenants", {"name": "é" * 50})  # exactly 100 bytes
    assert status == 201, made
    assert (server.settings.data_dir / "tenants" / "us" / ("é" * 50) / "root" / "incoming").is_dir()
    status, problem = call(server, "POST", "/api/v1/tenants", {"name": "é" * 50 + "x"})
    assert status == 422 and "101 bytes" in problem["detail"]
    assert call(server, "DELETE", f"/api/v1/tenants/{quote('é' * 50)}")[0] == 204


def test_a_tenant_whose_folder_cannot_be_made_is_not_stored(server: SandboxServer) -> None:
    assert call(server, "POST", "/api/v1/tenants", {"name": "kept"})[0] == 201
    blocker = server.settings.data_dir / "tenants" / "us" / "blocked"
    blocker.write_text("not a folder")  # where the tenant's folder should go
    status, problem = call(server, "POST", "/api/v1/tenants", {"name": "blocked"})
    assert status == 400, problem
    assert "cannot make the folders of tenant 'blocked'" in problem["detail"]
    assert str(blocker) in problem["detail"] and "Not a directory" in problem["detail"]
    assert "blocked" not in names(server) and "kept" in names(server)  # rolled back; the other untouched
    assert blocker.read_text() == "not a folder"  # and nothing of the user's removed
    blocker.unlink()
    assert call(server, "POST", "/api/v1/tenants", {"name": "blocked"})[0] == 201  # now it can be made
    for name in ("blocked", "kept"):
        assert call(server, "DELETE", f"/api/v1/tenants/{name}")[0] == 204


def test_a_tenant_an_older_sandbox_left_half_made_can_be_deleted(server: SandboxServer) -> None:
    legacy = "ü" + "x" * 300  # stored before the name rule: its folder can never exist
    with store.transaction(server.conn):
        server.conn.execute(
            "INSERT INTO tenants (name, region, profile, username, password_hash, authorized_keys, contact,"
            " licenses, locale, custom_keys, created_at) VALUES (?, 'us', 'core', 'legacy', 'x', '', '',"
            " 1, 'en-US', '[]', 'T')", (legacy,))
    path = f"/api/v1/tenants/{quote(legacy)}"
    status, problem = call(server, "POST", path + "/reset", {})
    assert status == 400, problem
    assert "cannot make the folders" in problem["detail"] and "File name too long" in problem["detail"]
    assert call(server, "DELETE", path)[0] == 204
    assert legacy not in names(server)
    assert call(server, "GET", path)[0] == 404
    assert (server.settings.data_dir / "tenants" / "us").is_dir()  # nothing else was touched


@pytest.mark.parametrize(("char", "code"), [("\r\n", "U+000D"), ("\x1b", "U+001B"), ("\u2028", "U+2028")])
def test_a_control_or_format_character_is_a_422(server: SandboxServer, char: str, code: str) -> None:
    name = f"evil2{char}Bcc: x@evil.com"
    status, problem = call(server, "POST", "/api/v1/tenants", {"name": name, "username": "evil2"})
    assert status == 422, problem
    assert f"character 6 is {code}" in json.dumps(problem)
    assert name not in names(server)
