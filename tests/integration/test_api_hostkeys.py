"""Host keys through the HTTP API: rotating them as production does, and
the unreadable key files a rotation meets (docs/server.md "Host keys")."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest
from test_api import GOOD, Api, sftp_put

from bwsandbox.config import load


def test_host_key_rotation_through_the_api(tmp_path: Path) -> None:
    """Production changes its host keys: the API says the new fingerprints and
    known_hosts lines at once; after a restart the endpoint offers them and an
    export job trusting only the old lines is refused."""
    from bwsandbox.api import HttpService
    from bwsandbox.sandbox import Sandbox

    settings = load({"data_dir": tmp_path / "keys", "port": 0, "eu_port": 0, "http_port": 0}, env={})
    with Sandbox(settings, services=[HttpService(settings)]) as sandbox:
        assert sandbox.http_address is not None
        api = Api(f"http://127.0.0.1:{sandbox.http_address[1]}")
        status, _, before = api("POST", "/api/v1/tenants", {"name": "rot", "password": "pw-rotation-1"})
        assert status == 201
        old = {k["openssh_sha256"] for k in api("GET", "/api/v1/hostkeys")[2]["host_keys"]}
        status, _, rotated = api("POST", "/api/v1/hostkeys/rotate", {})
        assert status == 200 and rotated["active_after_restart"] is True
        new = {k["openssh_sha256"] for k in rotated["new"]}
        assert len(new) == 3 and not new & old  # every fingerprint changed
        publics = {k["public"] for k in rotated["new"]}
        assert len(rotated["known_hosts"]) == 6  # three keys, us and eu
        assert {line.split(" ", 1)[1] for line in rotated["known_hosts"]} == publics
        assert {line.split(" ", 1)[0] for line in rotated["known_hosts"]} == {
            f"[127.0.0.1]:{e.port}" for e in sandbox.endpoints.values()}
        assert api("GET", "/api/v1/hostkeys")[2]["restart_needed"] is True

    with Sandbox(settings, services=[HttpService(settings)]) as sandbox:
        assert sandbox.http_address is not None
        api = Api(f"http://127.0.0.1:{sandbox.http_address[1]}")
        keys = api("GET", "/api/v1/hostkeys")[2]
        assert {k["openssh_sha256"] for k in keys["host_keys"]} == new and keys["restart_needed"] is False
        tenant = {**api("GET", "/api/v1/tenants/rot")[2], "password": "pw-rotation-1"}
        assert {line.split(" ", 1)[1] for line in tenant["known_hosts"]} == publics
        sftp_put(tenant, tmp_path, "users_20260201.csv", GOOD.encode())  # the new lines are trusted
        port = tenant["endpoint"]["port"]
        stale = {**tenant, "known_hosts": [f"[127.0.0.1]:{port} {line.split(' ', 1)[1]}"
                                           for line in before["known_hosts"]]}
        with pytest.raises(paramiko.SSHException):
            sftp_put(stale, tmp_path, "users_20260202.csv", GOOD.encode())


def test_rotation_through_the_api_names_an_unreadable_staged_key_it_set_aside(tmp_path: Path) -> None:
    """A staged key (rotate with announce) found spoilt when the set is
    promoted: the answer names where it was and where it is kept."""
    from bwsandbox.api import HttpService
    from bwsandbox.sandbox import Sandbox
    from bwsandbox.server import hostkeys

    settings = load({"data_dir": tmp_path / "keys", "port": 0, "eu_port": 0, "http_port": 0}, env={})
    with Sandbox(settings, services=[HttpService(settings)]) as sandbox:
        assert sandbox.http_address is not None
        api = Api(f"http://127.0.0.1:{sandbox.http_address[1]}")
        status, _, staged = api("POST", "/api/v1/hostkeys/rotate", {"announce": True})
        assert status == 200 and staged["set_aside"] == [] and staged["remade_now"] == []
        name = hostkeys.KEY_FILES[0][0]
        (hostkeys.keys_dir(settings.data_dir) / "next" / name).write_bytes(b"")
        status, _, promoted = api("POST", "/api/v1/hostkeys/rotate", {})
        assert status == 200
        [aside] = promoted["set_aside"]
        assert aside["was"] == f"hostkeys/next/{name}" and aside["now"].startswith("hostkeys/next-")
        assert (settings.data_dir / aside["now"]).read_bytes() == b""  # kept, not deleted
