"""Pickup with real connections: a complete upload is handed over exactly
once, in order, whatever the client's sequence; cut-off uploads never are;
what a crash leaves is recovered (docs/production.md §2, docs/server.md "Pickup")."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest
from clients import (
    Account,
    Trust,
    asyncssh_connect,
    children,
    openssh_put,
    openssh_spawn,
    paramiko_client,
)
from conftest import Harness, SandboxFactory, run_async, tenant_of, wait_until

from bwsandbox import layout
from bwsandbox.cli.main import main
from bwsandbox.spec.fields import Profile

# -- pickup ----------------------------------------------------------------------


def test_cut_off_upload_is_recorded_incomplete_and_never_queued(sandbox: Harness, account: Account) -> None:
    async def upload_half_then_vanish() -> None:
        conn = await asyncssh_connect(account, Trust.ACCEPT)
        sftp = await conn.start_sftp_client()
        f = await sftp.open("/incoming/cut.csv", "wb")
        await f.write(b"x" * 50_000)
        conn.abort()  # the client vanishes: no CLOSE for the file

    run_async(upload_half_then_vanish())
    tenant = tenant_of(account)
    rows = sandbox.wait_files(tenant, 1)
    assert [(r["name"], r["bytes"], r["state"]) for r in rows] == [("cut.csv", 50_000, "incomplete")]
    assert "before the client closed" in rows[0]["detail"]
    assert not (layout.tenant_root(sandbox.settings.data_dir, sandbox.conn_tenant(tenant)) / "incoming"
                / "cut.csv").exists()


@pytest.mark.parametrize("victim", ["ssh", "sftp"])
def test_killed_openssh_sftp_upload_is_recorded_incomplete_and_never_processed(
    victim: str, sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real `sftp` cut off mid-transfer by SIGKILL: to `ssh` the network
    went away (TCP closed, no SSH goodbye); to `sftp` the program died, so
    its ssh sends EOF and closes the channel without the SFTP CLOSE."""
    harness = sandbox_factory(ingest=True)  # with the worker: "never processed" can be seen
    account = harness.add_tenant(tmp_path / "home")
    name = tenant_of(account)
    drop = layout.tenant_root(harness.settings.data_dir, harness.conn_tenant(name)) / "incoming" / "big.csv"
    big = tmp_path / "big.csv"
    big.write_bytes(os.urandom(8 * 2**20))
    # -l: at most 4 Mbit/s, so the 8 MiB take ~16 s and the kill lands mid-transfer.
    sftp = openssh_spawn(account, [f"put {big} /incoming/big.csv"], Trust.ACCEPT, extra=["-l", "4000"])
    try:
        wait_until(lambda: drop.exists() and drop.stat().st_size >= 2**19, timeout=30)
        [sftp_pid] = children(sftp.pid)  # sshpass -> sftp
        [ssh_pid] = children(sftp_pid)  # sftp -> ssh
        os.kill(ssh_pid if victim == "ssh" else sftp_pid, signal.SIGKILL)
        out, _ = sftp.communicate(timeout=30)
    finally:
        if sftp.poll() is None:
            sftp.kill()
            sftp.communicate()
    assert sftp.returncode != 0, out
    wait_until(lambda: not Path(f"/proc/{ssh_pid}").exists())  # its ssh ends with it

    [row] = harness.wait_files(name, 1)
    assert (row["name"], row["state"]) == ("big.csv", "incomplete")
    assert 2**19 <= row["bytes"] < big.stat().st_size
    assert "before the client closed" in row["detail"]
    assert not drop.exists()  # nothing left for a later pickup either

    # Never processed: a complete upload after it goes all the way through
    # the worker, while the cut-off one stays as it was.
    feed = tmp_path / "users-20260101.csv"
    feed.write_text("email,first_name,last_name,manager_email,department_name,title,deactivation_date\n"
                    "zoe@acme.com,Zoe,Ray,,,,\n")
    assert openssh_put(account, feed, "/incoming/users-20260101.csv", Trust.KNOWN).ok
    wait_until(lambda: [r["state"] for r in harness.files(name)][1:] in (["done"], ["failed"]), timeout=30,
               events=harness.sandbox.file_events)
    data_dir = str(harness.settings.data_dir)
    assert main(["files", "--tenant", name, "--format", "json", "--data-dir", data_dir]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert (listed["big.csv"]["state"], listed["big.csv"]["verdict"]) == ("incomplete", None)
    assert listed["big.csv"]["bytes"] == row["bytes"]
    assert listed["users-20260101.csv"]["state"] == "done"


def _one_session(
    sandbox_factory: SandboxFactory, tmp_path: Path, steps: Callable[[paramiko.SFTPClient], None]
) -> list[tuple[str, int, str]]:
    """Run `steps` in one paramiko session; (name, bytes, state) of what was picked up.

    A quiet period far longer than any client stall on a loaded CI machine
    keeps the sequence in one piece (the shared test sandbox uses the 1 s default)."""
    sandbox = sandbox_factory(pickup_quiet_seconds=5.0)
    account = sandbox.add_tenant(tmp_path / "home")
    client = paramiko_client(account, Trust.ACCEPT)
    try:
        sftp = client.open_sftp()
        steps(sftp)
        sftp.close()
    finally:
        client.close()
    return [(r["name"], r["bytes"], r["state"]) for r in sandbox.wait_files(tenant_of(account), 2)]


def _write(sftp: paramiko.SFTPClient, path: str, data: bytes) -> None:
    with sftp.open(path, "wb") as f:
        f.write(data)


def test_setstat_after_close_and_v3_rename_onto_an_existing_name(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    def steps(sftp: paramiko.SFTPClient) -> None:
        _write(sftp, "incoming/x.csv", b"1" * 1000)
        sftp.utime("incoming/x.csv", (1_700_000_000, 1_700_000_000))  # rclone: setstat after close
        assert sftp.stat("incoming/x.csv").st_size == 1000  # paramiko: stat after close
        _write(sftp, "incoming/x.csv.tmp", b"2" * 2000)
        sftp.rename("incoming/x.csv.tmp", "incoming/x.csv")  # v3 RENAME onto an existing name

    assert _one_session(sandbox_factory, tmp_path, steps) == [
        ("x.csv", 1000, "queued"), ("x.csv", 2000, "queued"),
    ]


def test_a_file_is_picked_up_while_its_session_stays_connected_and_polls(
    sandbox: Harness, account: Account
) -> None:
    """docs/production.md §5: available once complete, not once the session ends. The job
    uploads two files in one session and keeps listing the drop folder and
    /reports (as paramiko, ssh2-sftp-client and FileZilla jobs do): each file
    leaves /incoming about one window after its own close."""
    client = paramiko_client(account, Trust.ACCEPT)
    try:
        sftp = client.open_sftp()
        gone: dict[str, float] = {}
        closed: dict[str, float] = {}
        for name in ("one.csv", "two.csv"):
            _write(sftp, f"incoming/{name}", b"email\na@x.com\n")
            closed[name] = time.monotonic()
            deadline = closed[name] + 10  # the session-quiet rule waited up to 30 s here
            while name in sftp.listdir("incoming"):
                sftp.listdir("reports")
                assert time.monotonic() < deadline, f"{name} still in /incoming while the session polls"
                time.sleep(0.05)
            gone[name] = time.monotonic()
        # gone from /incoming is handed over; the Inbox records it from a thread
        rows = sandbox.wait_files(tenant_of(account), 2)
        assert [(r["name"], r["state"]) for r in rows] == [("one.csv", "queued"), ("two.csv", "queued")]
        sftp.close()
    finally:
        client.close()
    for name in closed:
        assert gone[name] - closed[name] >= 0.9  # the window rclone's setstat needs is kept


def test_temp_names_wait_for_their_rename(sandbox: Harness, account: Account) -> None:
    async def go() -> None:
        async with await asyncssh_connect(account, Trust.ACCEPT) as conn, conn.start_sftp_client() as sftp:
            for name in (".in.a.csv", "b.csv.filepart", ".hidden", "c.tmp"):
                async with sftp.open(f"/incoming/{name}", "wb") as f:
                    await f.write(b"z" * 10)
            await sftp.rename("/incoming/b.csv.filepart", "/incoming/b.csv")

    run_async(go())
    rows = sandbox.wait_files(tenant_of(account), 1)
    assert [(r["name"], r["bytes"]) for r in rows] == [("b.csv", 10)]
    wait_until(lambda: sandbox.audit_events("pickup", name="b.csv"))
    assert len(sandbox.files(tenant_of(account))) == 1


def test_engage_drops_into_home_and_hands_over_the_marker(sandbox: Harness, tmp_path: Path) -> None:
    account = sandbox.add_tenant(tmp_path / "home", profile=Profile.ENGAGE)

    async def go() -> None:
        async with await asyncssh_connect(account, Trust.ACCEPT) as conn, conn.start_sftp_client() as sftp:
            assert "incoming" not in await sftp.listdir("/")
            async with sftp.open("/employees.202601010000.csv.pgp", "wb") as f:
                await f.write(b"p" * 321)
            async with sftp.open("/employees.202601010000.csv.done.pgp", "wb"):
                pass

    run_async(go())
    rows = sandbox.wait_files(tenant_of(account), 2)
    assert sorted((r["name"], r["bytes"]) for r in rows) == [
        ("employees.202601010000.csv.done.pgp", 0), ("employees.202601010000.csv.pgp", 321),
    ]




def test_files_left_in_the_drop_folder_by_a_crash_cut_off_or_closed(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    harness = sandbox_factory()
    account = harness.add_tenant(tmp_path / "home")
    tenant = harness.conn_tenant(tenant_of(account))
    data_dir, us = harness.settings.data_dir, harness.sandbox.port("us")
    harness.stop()
    root = layout.ensure_tree(data_dir, tenant, reports_folder=True)
    half = root / "incoming" / "half.csv"
    half.write_bytes(b"h" * 123)
    half.chmod(layout.OPEN_MODE)  # still being written when the server died
    closed = root / "incoming" / "closed.csv"
    closed.write_bytes(b"c" * 45)
    closed.chmod(layout.CLOSED_MODE)  # closed cleanly, in its quiet period (rclone's setstat)
    (root / "incoming" / "x.filepart").write_bytes(b"t")  # temp names stay for their client
    harness = sandbox_factory(data_dir, port=us)
    rows = harness.wait_files(tenant.name, 2)
    assert sorted((r["name"], r["bytes"], r["state"]) for r in rows) == [
        ("closed.csv", 45, "queued"), ("half.csv", 123, "incomplete"),
    ]
    assert (root / "incoming" / "x.filepart").exists()
    assert not half.exists() and not closed.exists()


def test_uploads_a_killed_server_had_spooled_are_recorded_once_at_start_up(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    # kill -9 between pickup's rename into the spool and the Inbox's commit:
    # the spool path says whose upload it is and whether it was complete.
    harness = sandbox_factory()
    account = harness.add_tenant(tmp_path / "home")
    name = tenant_of(account)
    client = paramiko_client(account, Trust.ACCEPT)
    try:
        with client.open_sftp() as sftp, sftp.open("incoming/before.csv", "wb") as f:
            f.write(b"a@x.com\n" * 10)
    finally:
        client.close()
    [before] = harness.wait_files(name, 1)
    data_dir, us = harness.settings.data_dir, harness.sandbox.port("us")
    harness.stop()
    spool = data_dir / "spool" / name
    (spool / "complete").mkdir(parents=True, exist_ok=True)
    (spool / "incomplete").mkdir(parents=True, exist_ok=True)
    (spool / "complete" / f"{'a' * 32}-users.csv").write_bytes(b"u" * 77)
    (spool / "incomplete" / f"{'b' * 32}-cut.csv").write_bytes(b"c" * 5)
    # Killed after the commit, before the spool copy was unlinked: the hard
    # link to the stored file must not be recorded a second time.
    os.link(before["stored_path"], spool / "complete" / f"{'c' * 32}-before.csv")
    nobody = data_dir / "spool" / "nobody" / "complete"
    nobody.mkdir(parents=True)  # a tenant that no longer exists: left alone
    (nobody / f"{'d' * 32}-x.csv").write_bytes(b"x")
    harness = sandbox_factory(data_dir, port=us)
    rows = harness.wait_files(name, 3)
    assert [(r["name"], r["bytes"], r["state"]) for r in rows] == [
        ("before.csv", 80, "queued"), ("users.csv", 77, "queued"), ("cut.csv", 5, "incomplete"),
    ]
    assert "found in the spool" in rows[2]["detail"]
    assert list((spool / "complete").iterdir()) == [] and list((spool / "incomplete").iterdir()) == []
    assert (nobody / f"{'d' * 32}-x.csv").read_bytes() == b"x"


def test_removing_a_complete_upload_before_pickup_hands_it_over(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    # lftp's temp-file overwrite removes NAME before renaming .in.NAME onto it:
    # the earlier complete upload must still be picked up (once).
    def steps(sftp: paramiko.SFTPClient) -> None:
        _write(sftp, "incoming/same.csv", b"1" * 1000)
        sftp.remove("incoming/same.csv")
        assert "same.csv" not in sftp.listdir("incoming")
        _write(sftp, "incoming/.in.same.csv", b"2" * 2000)
        sftp.rename("incoming/.in.same.csv", "incoming/same.csv")

    assert _one_session(sandbox_factory, tmp_path, steps) == [
        ("same.csv", 1000, "queued"), ("same.csv", 2000, "queued"),
    ]


def test_a_tenants_handovers_reach_the_queue_in_the_order_they_were_made(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    # The first upload is big (its hash takes a while), the second tiny and
    # handed over right after it at the session's end: the queue (arrival
    # order, docs/production.md §5) must still list the big one first.
    def steps(sftp: paramiko.SFTPClient) -> None:
        _write(sftp, "incoming/first.csv", b"1" * 30_000_000)
        sftp.rename("incoming/first.csv", "incoming/first.csv.tmp")  # a temp name: not picked up
        sftp.rename("incoming/first.csv.tmp", "incoming/big.csv")
        _write(sftp, "incoming/small.csv.tmp", b"2")
        sftp.rename("incoming/small.csv.tmp", "incoming/big.csv")  # hands the big one over now
        sftp.rename("incoming/big.csv", "incoming/small.csv")

    assert _one_session(sandbox_factory, tmp_path, steps) == [
        ("big.csv", 30_000_000, "queued"), ("small.csv", 1, "queued"),
    ]


def test_a_name_another_session_is_still_writing_is_refused_not_mixed(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    # A quiet period no client stall reaches: other.csv must still be there to rename.
    sandbox = sandbox_factory(pickup_quiet_seconds=5.0)
    account = sandbox.add_tenant(tmp_path / "home")
    a, b = paramiko_client(account, Trust.ACCEPT), paramiko_client(account, Trust.ACCEPT)
    try:
        sa, sb = a.open_sftp(), b.open_sftp()
        with sa.open("incoming/race.csv", "wb") as f:
            f.write(b"a" * 100)
            f.flush()
            for attempt in (
                lambda: sb.open("incoming/race.csv", "wb"),
                lambda: sb.remove("incoming/race.csv"),
                lambda: sb.rename("incoming/race.csv", "incoming/other.csv"),
            ):
                with pytest.raises(OSError, match="being uploaded by another session"):
                    attempt()
            _write(sb, "incoming/other.csv", b"b" * 7)
            with pytest.raises(OSError, match="being uploaded by another session"):
                sb.rename("incoming/other.csv", "incoming/race.csv")
            f.write(b"a" * 50)
        sa.close()
        sb.close()
    finally:
        a.close()
        b.close()
    rows = sandbox.wait_files(tenant_of(account), 2)
    assert sorted((r["name"], r["bytes"]) for r in rows) == [("other.csv", 7), ("race.csv", 150)]
