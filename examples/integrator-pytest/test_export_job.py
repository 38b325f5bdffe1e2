"""An export job's upload, as an integrator tests it: the `bwsandbox`
fixture's tenant, a real SFTP upload with paramiko over loopback, the host
key checked against the fixture's known_hosts, then what production would
show: the processed report, the user directory, the report published in
/reports, no email."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import paramiko
import pytest

from bwsandbox.testing import SandboxHandle

EXPORT = (
    "email,first_name,last_name,employee_id,manager_email,title\r\n"
    "ada@example.com,Ada,Lovelace,0001,,CEO\r\n"
    "grace@example.com,Grace,Hopper,0002,ada@example.com,CTO\r\n"
)
NAME = "users_20261125.csv"


def connect(bwsandbox: SandboxHandle, known_hosts: Path | None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()  # RejectPolicy: an unknown host key is refused
    if known_hosts is not None:
        client.load_host_keys(str(known_hosts))
    client.connect(
        bwsandbox.host, bwsandbox.port, username=bwsandbox.username, password=bwsandbox.password,
        allow_agent=False, look_for_keys=False, timeout=20,
    )
    return client


def test_export_job_upload_is_processed(bwsandbox: SandboxHandle, tmp_path: Path) -> None:
    export = tmp_path / NAME
    export.write_bytes(EXPORT.encode())

    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(bwsandbox, known_hosts=None).close()  # the key really is checked

    with connect(bwsandbox, bwsandbox.known_hosts) as client, client.open_sftp() as sftp:
        sftp.put(str(export), f"{bwsandbox.drop_folder.rstrip('/')}/{NAME}")
        report = bwsandbox.wait_processed(NAME)
        with sftp.open(f"/reports/{NAME}.report.json") as fh:
            published = json.loads(fh.read())
        incoming = sftp.listdir(bwsandbox.drop_folder)

    assert report["verdict"] == "accepted"
    assert [f for f in report["findings"] if f["severity"] == "error"] == []
    assert report["sha256"] == hashlib.sha256(export.read_bytes()).hexdigest()
    assert report["applied"]["created"] == 2
    assert published["verdict"] == "accepted" and published["sha256"] == report["sha256"]
    assert NAME not in incoming  # picked up: the file left the drop folder

    users = {u.email: u for u in bwsandbox.directory}
    assert sorted(users) == ["ada@example.com", "grace@example.com"]
    assert users["grace@example.com"].manager_email == "ada@example.com"
    assert users["grace@example.com"].employee_id == "0002"  # leading zeros kept
    assert {u.status for u in users.values()} == {"active"}
    assert bwsandbox.emails == []  # no error, no email to the Technical Contact
