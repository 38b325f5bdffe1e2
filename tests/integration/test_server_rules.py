"""The server's rules with real connections: cut-off uploads, the chroot,
limits and protection, pickup sequences (issue #3, SPEC §2, CLIENTS.md)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import asyncssh
import paramiko
import pytest
from clients import (
    Account,
    Trust,
    asyncssh_connect,
    children,
    openssh_batch,
    openssh_put,
    openssh_spawn,
    paramiko_client,
)
from conftest import Harness, SandboxFactory, tenant_of, wait_until

from bwsandbox import store, tenants
from bwsandbox.cli.main import main
from bwsandbox.config import Settings
from bwsandbox.server import audit, tree
from bwsandbox.spec.fields import Profile
from bwsandbox.tenants import Region


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


# -- pickup ----------------------------------------------------------------------


def test_cut_off_upload_is_recorded_incomplete_and_never_queued(sandbox: Harness, account: Account) -> None:
    async def upload_half_then_vanish() -> None:
        conn = await asyncssh_connect(account, Trust.ACCEPT)
        sftp = await conn.start_sftp_client()
        f = await sftp.open("/incoming/cut.csv", "wb")
        await f.write(b"x" * 50_000)
        conn.abort()  # the client vanishes: no CLOSE for the file

    _run(upload_half_then_vanish())
    tenant = tenant_of(account)
    rows = sandbox.wait_files(tenant, 1)
    assert [(r["name"], r["bytes"], r["state"]) for r in rows] == [("cut.csv", 50_000, "incomplete")]
    assert "before the client closed" in rows[0]["detail"]
    assert not (tree.tenant_root(sandbox.settings.data_dir, sandbox.conn_tenant(tenant)) / "incoming"
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
    drop = tree.tenant_root(harness.settings.data_dir, harness.conn_tenant(name)) / "incoming" / "big.csv"
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
    wait_until(lambda: [r["state"] for r in harness.files(name)][1:] in (["done"], ["failed"]), timeout=30)
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


def test_temp_names_wait_for_their_rename(sandbox: Harness, account: Account) -> None:
    async def go() -> None:
        async with await asyncssh_connect(account, Trust.ACCEPT) as conn, conn.start_sftp_client() as sftp:
            for name in (".in.a.csv", "b.csv.filepart", ".hidden", "c.tmp"):
                async with sftp.open(f"/incoming/{name}", "wb") as f:
                    await f.write(b"z" * 10)
            await sftp.rename("/incoming/b.csv.filepart", "/incoming/b.csv")

    _run(go())
    rows = sandbox.wait_files(tenant_of(account), 1)
    assert [(r["name"], r["bytes"]) for r in rows] == [("b.csv", 10)]
    wait_until(lambda: audit_events(sandbox, "pickup", name="b.csv"))
    assert len(sandbox.files(tenant_of(account))) == 1


def audit_events(sandbox: Harness, event: str, **match: object) -> list[dict[str, object]]:
    return [
        r for r in audit.read(sandbox.sandbox.audit_path)
        if r["event"] == event and all(r.get(k) == v for k, v in match.items())
    ]


def test_engage_drops_into_home_and_hands_over_the_marker(sandbox: Harness, tmp_path: Path) -> None:
    account = sandbox.add_tenant(tmp_path / "home", profile=Profile.ENGAGE)

    async def go() -> None:
        async with await asyncssh_connect(account, Trust.ACCEPT) as conn, conn.start_sftp_client() as sftp:
            assert "incoming" not in await sftp.listdir("/")
            async with sftp.open("/employees.202601010000.csv.pgp", "wb") as f:
                await f.write(b"p" * 321)
            async with sftp.open("/employees.202601010000.csv.done.pgp", "wb"):
                pass

    _run(go())
    rows = sandbox.wait_files(tenant_of(account), 2)
    assert sorted((r["name"], r["bytes"]) for r in rows) == [
        ("employees.202601010000.csv.done.pgp", 0), ("employees.202601010000.csv.pgp", 321),
    ]


# -- the chroot --------------------------------------------------------------------


def test_the_tree_is_a_chroot_with_one_writable_folder(sandbox: Harness, account: Account) -> None:
    tenant = sandbox.conn_tenant(tenant_of(account))
    root = tree.ensure_tree(sandbox.settings.data_dir, tenant, reports_folder=True)
    os.symlink("/etc", root / "reports" / "etc")  # a link planted on disk must not lead out

    async def go() -> None:
        async with await asyncssh_connect(account, Trust.ACCEPT) as conn, conn.start_sftp_client() as sftp:
            # probes clients make all work
            assert sorted(n for n in await sftp.listdir("/") if not n.startswith(".")) == [
                "incoming", "reports",
            ]
            assert await sftp.realpath("..") == "/"
            assert await sftp.realpath("/incoming/../..") == "/"
            assert (await sftp.stat("/incoming")).permissions is not None

            async def refused(action: object) -> asyncssh.SFTPError:
                with pytest.raises(asyncssh.SFTPError) as info:
                    await action  # type: ignore[misc]
                return info.value

            for path in ("../../../../etc/passwd", "/../etc/passwd", "%2e%2e/%2e%2e/etc/passwd",
                         "..\\..\\etc\\passwd", "/reports/etc/passwd"):
                await refused(sftp.open(path, "rb"))
            for path in ("/x.csv", "/reports/x.csv", "/incoming/../x.csv", "/Incoming/x.csv",
                         "/incoming/sub/x.csv", "/reports/etc/evil"):
                err = await refused(sftp.open(path, "wb"))
                assert isinstance(err, asyncssh.SFTPPermissionDenied | asyncssh.SFTPNoSuchFile), path
            assert isinstance(await refused(sftp.open("/x.csv", "wb")), asyncssh.SFTPPermissionDenied)
            await refused(sftp.mkdir("/incoming/sub"))
            await refused(sftp.mkdir("/new"))
            await refused(sftp.rmdir("/incoming"))
            await refused(sftp.remove("/reports"))
            await refused(sftp.symlink("/etc/passwd", "/incoming/link"))
            await refused(sftp.symlink("../../../../etc/passwd", "/incoming/link"))
            await refused(sftp.open(b"/incoming/\xff\xfe.csv", "wb"))
            async with sftp.open("/incoming/ok.csv", "wb") as f:
                await f.write(b"ok")
            await refused(sftp.rename("/incoming/ok.csv", "/ok.csv"))
            await refused(sftp.rename("/incoming", "/elsewhere"))

    _run(go())
    assert not (root / "x.csv").exists() and not (root.parent / "x.csv").exists()
    assert not (root / "incoming" / "link").exists()
    rows = sandbox.wait_files(tenant.name, 1)
    assert [r["name"] for r in rows] == ["ok.csv"]


# -- limits and protection ------------------------------------------------------------


def test_lockout_after_repeated_failures_then_lifted(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    harness = sandbox_factory(lockout_attempts=3, lockout_seconds=1.5)
    account = harness.add_tenant(tmp_path / "home")
    wrong = replace(account, password="wrong")

    async def login(acc: Account) -> str:
        try:
            conn = await asyncssh_connect(acc, Trust.ACCEPT)
        except asyncssh.PermissionDenied as exc:
            return f"denied: {exc.reason}"
        conn.close()
        return "ok"

    for _ in range(3):
        assert _run(login(wrong)).startswith("denied")  # type: ignore[union-attr]
    locked = _run(login(account))
    assert "locked" in str(locked) or "Too many failed logins" in str(locked)
    wait_until(lambda: audit_events(harness, "lockout", peer="127.0.0.1"))
    assert wait_until(lambda: _run(login(account)) == "ok", timeout=15, interval=0.25)


def test_max_auth_attempts_per_connection(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    """asyncssh has no MaxAuthTries (CLIENTS.md pitfall 4): the sandbox cuts
    a connection off after `max_auth_attempts` failures, as OpenSSH does."""
    harness = sandbox_factory(max_auth_attempts=3)
    account = harness.add_tenant(tmp_path / "home")
    tries = 0

    class Guesser(asyncssh.SSHClient):
        def password_auth_requested(self) -> str | None:
            nonlocal tries
            tries += 1
            return f"guess-{tries}" if tries <= 10 else None

    async def go() -> None:
        with pytest.raises(asyncssh.PermissionDenied) as info:
            await asyncssh.connect(
                account.host, account.port, username=account.username, known_hosts=None,
                client_factory=Guesser, preferred_auth="password", client_keys=None,
                agent_path=None, config=None,
            )
        assert "Too many authentication failures" in info.value.reason

    _run(go())
    assert tries == 3
    wait_until(lambda: audit_events(harness, "auth", result="too-many"))


def test_sessions_per_tenant_are_limited(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    harness = sandbox_factory(max_sessions_per_tenant=2)
    account = harness.add_tenant(tmp_path / "home")

    async def go() -> None:
        first = await asyncssh_connect(account, Trust.ACCEPT)
        second = await asyncssh_connect(account, Trust.ACCEPT)
        with pytest.raises(asyncssh.DisconnectError) as info:
            await asyncssh_connect(account, Trust.ACCEPT)
        assert "Too many sessions" in info.value.reason
        first.close()
        await first.wait_closed()
        for _ in range(100):  # the server notices the close a moment later
            try:
                third = await asyncssh_connect(account, Trust.ACCEPT)
                break
            except asyncssh.DisconnectError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("a freed session slot was not reusable")
        third.close()
        second.close()

    _run(go())


def test_idle_sessions_are_closed(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    harness = sandbox_factory(idle_timeout=0.6)
    account = harness.add_tenant(tmp_path / "home")

    async def go() -> None:
        conn = await asyncssh_connect(account, Trust.ACCEPT)
        sftp = await conn.start_sftp_client()
        await sftp.listdir("/")
        await asyncio.wait_for(conn.wait_closed(), 10)

    _run(go())
    wait_until(lambda: audit_events(harness, "idle-timeout"))


def test_files_over_the_size_limit_are_refused_and_never_queued(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    harness = sandbox_factory(max_file_bytes=10_000)
    account = harness.add_tenant(tmp_path / "home")
    big = tmp_path / "big.csv"
    big.write_bytes(b"b" * 50_000)
    fits = tmp_path / "fits.csv"
    fits.write_bytes(b"f" * 10_000)
    result = openssh_batch(account, [f"put {big} incoming/big.csv"], Trust.ACCEPT)
    assert not result.ok
    result = openssh_batch(account, [f"put {fits} incoming/fits.csv"], Trust.ACCEPT)
    assert result.ok, result.out
    rows = harness.wait_files(tenant_of(account), 2)
    states = {r["name"]: r["state"] for r in rows}
    assert states == {"big.csv": "incomplete", "fits.csv": "queued"}


def test_hundred_concurrent_sessions_all_served_each_file_once(sandbox: Harness, account: Account) -> None:
    count = 100
    # Served with the shipped limit, not one raised for the tests.
    assert sandbox.settings.max_sessions_per_tenant == Settings().max_sessions_per_tenant > count

    async def one(i: int) -> None:
        async with (
            await asyncssh_connect(account, Trust.ACCEPT) as conn,
            conn.start_sftp_client() as sftp,
            sftp.open(f"/incoming/f{i:03d}.csv", "wb") as f,
        ):
            await f.write(b"r" * (1000 + i))

    async def all_at_once() -> list[BaseException | None]:
        return await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)

    results = _run(all_at_once())
    assert [r for r in results if r is not None] == []  # type: ignore[union-attr]
    rows = sandbox.wait_files(tenant_of(account), count, timeout=60)
    assert sorted((r["name"], r["bytes"]) for r in rows) == [
        (f"f{i:03d}.csv", 1000 + i) for i in range(count)
    ]
    assert all(r["state"] == "queued" for r in rows)


def test_regions_are_separate(sandbox: Harness, tmp_path: Path) -> None:
    eu = sandbox.add_tenant(tmp_path / "eu", region=Region.EU)
    assert eu.port == sandbox.sandbox.port("eu") != sandbox.sandbox.port("us")
    us_view = replace(eu, port=sandbox.sandbox.port("us"))

    async def login(acc: Account) -> bool:
        try:
            conn = await asyncssh_connect(acc, Trust.ACCEPT)
        except asyncssh.PermissionDenied:
            return False
        conn.close()
        return True

    assert _run(login(eu)) is True
    assert _run(login(us_view)) is False  # an eu account does not exist on the us endpoint


def test_public_key_login_and_its_session_is_counted_once(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """asyncssh validates a public key twice (probe, then signature): the
    session must still count once, and be freed once, against the limit."""
    harness = sandbox_factory(max_sessions_per_tenant=1)
    key = asyncssh.generate_private_key("ssh-ed25519")
    public = key.export_public_key().decode().strip()
    with store.transaction(harness.conn):
        tenants.add(harness.conn, name="keyed", username="u-keyed", password="unused-Pass1",
                    authorized_keys=public, created_at="2026-01-01T00:00:00+00:00")
    port = harness.sandbox.port("us")

    async def login() -> None:
        async with asyncssh.connect(
            "127.0.0.1", port, username="u-keyed", client_keys=[key], known_hosts=None,
            agent_path=None, config=None, preferred_auth="publickey",
        ) as conn, conn.start_sftp_client() as sftp:
            assert "incoming" in await sftp.listdir("/")

    for _ in range(3):  # each waits for the previous session to be freed
        wait_until(lambda: _try(login), timeout=10, interval=0.05)
    other = asyncssh.generate_private_key("ssh-ed25519")

    async def wrong_key() -> None:
        await asyncssh.connect("127.0.0.1", port, username="u-keyed", client_keys=[other],
                               known_hosts=None, agent_path=None, config=None, preferred_auth="publickey")

    with pytest.raises(asyncssh.PermissionDenied):
        _run(wrong_key())


def _try(fn: object) -> bool:
    try:
        _run(fn())  # type: ignore[operator]
    except asyncssh.DisconnectError:
        return False
    return True


def test_files_left_in_the_drop_folder_by_a_crash_cut_off_or_closed(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    harness = sandbox_factory()
    account = harness.add_tenant(tmp_path / "home")
    tenant = harness.conn_tenant(tenant_of(account))
    data_dir, us = harness.settings.data_dir, harness.sandbox.port("us")
    harness.stop()
    root = tree.ensure_tree(data_dir, tenant, reports_folder=True)
    half = root / "incoming" / "half.csv"
    half.write_bytes(b"h" * 123)
    half.chmod(tree.OPEN_MODE)  # still being written when the server died
    closed = root / "incoming" / "closed.csv"
    closed.write_bytes(b"c" * 45)
    closed.chmod(tree.CLOSED_MODE)  # closed cleanly, in its quiet period (rclone's setstat)
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
    # order, SPEC §5) must still list the big one first.
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
    sandbox: Harness, account: Account
) -> None:
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
