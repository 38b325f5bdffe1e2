"""Pure parts of the server: fingerprints, known_hosts lines, rotation on
disk, temp names, the lockout table."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from bwsandbox import layout
from bwsandbox.server import hostkeys
from bwsandbox.server.auth import Lockout


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[hostkeys.HostKeyInfo]]:
    data = tmp_path_factory.mktemp("data")
    return data, [hostkeys.describe(k) for k in hostkeys.ensure(data)]


def test_keys_are_generated_once_in_client_preference_order(
    keys: tuple[Path, list[hostkeys.HostKeyInfo]],
) -> None:
    data, infos = keys
    assert [k.type for k in infos] == ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]
    again = [hostkeys.describe(k) for k in hostkeys.ensure(data)]
    assert again == infos  # reused, never regenerated


def test_fingerprints_in_every_client_format(keys: tuple[Path, list[hostkeys.HostKeyInfo]]) -> None:
    _, infos = keys
    ed, ecdsa, rsa = infos
    blob = base64.b64decode(ed.public.split()[1])
    expected = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert ed.sha256 == "SHA256:" + expected
    assert ed.md5 == "MD5:" + ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())
    assert ed.putty == f"ssh-ed25519 255 {ed.sha256}"  # PuTTY/FileZilla say 255 bits
    assert ecdsa.putty.startswith("ecdsa-sha2-nistp256 256 SHA256:")
    assert rsa.bits == 3072
    assert ed.curl_sha256 == expected and len(ed.curl_md5) == 32


def test_known_hosts_line_uses_brackets_except_on_port_22(
    keys: tuple[Path, list[hostkeys.HostKeyInfo]],
) -> None:
    _, (ed, *_rest) = keys
    assert hostkeys.known_hosts_line("127.0.0.1", 2222, ed) == f"[127.0.0.1]:2222 {ed.public}"
    assert hostkeys.known_hosts_line("sftp.example", 22, ed) == f"sftp.example {ed.public}"


def test_rotation_keeps_old_keys_and_announce_stages_new_ones(tmp_path: Path) -> None:
    before = [hostkeys.describe(k) for k in hostkeys.ensure(tmp_path)]
    rotation = hostkeys.rotate(tmp_path, announce=True)
    staged = rotation.keys
    assert not rotation.active and rotation.set_aside == rotation.remade == []
    assert [hostkeys.describe(k) for k in hostkeys.ensure(tmp_path)] == before
    assert [hostkeys.describe(k) for k in hostkeys.announced(tmp_path)] == staged
    rotation = hostkeys.rotate(tmp_path)
    promoted = rotation.keys
    assert rotation.active and promoted == staged and hostkeys.announced(tmp_path) == []
    fresh = hostkeys.rotate(tmp_path).keys
    assert {k.sha256 for k in fresh}.isdisjoint({k.sha256 for k in promoted})
    assert len(list((hostkeys.keys_dir(tmp_path) / "retired").iterdir())) == 2


@pytest.mark.parametrize(
    ("name", "temporary"),
    [
        ("employees.csv", False),
        ("employees.csv.filepart", True),
        (".in.employees.csv", True),
        (".hidden", True),
        ("upload.TMP", True),
        ("employees.202601010000.csv.done.pgp", False),
    ],
)
def test_temporary_names(name: str, temporary: bool) -> None:
    assert layout.is_temporary(name) is temporary


def test_lockout_locks_after_n_failures_in_the_window_and_success_resets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("bwsandbox.server.auth.time.monotonic", lambda: now[0])
    lockout = Lockout(attempts=3, seconds=60)
    assert not lockout.failure("10.0.0.1")
    lockout.success("10.0.0.1")  # a good login forgets earlier failures
    assert not lockout.failure("10.0.0.1") and not lockout.failure("10.0.0.1")
    assert lockout.remaining("10.0.0.1") == 0
    assert lockout.failure("10.0.0.1")  # third failure within the window
    assert lockout.remaining("10.0.0.1") == 60
    assert lockout.remaining("10.0.0.2") == 0  # per source address
    now[0] += 61
    assert lockout.remaining("10.0.0.1") == 0  # lifted
    assert not lockout.failure("10.0.0.1")  # and the count starts again


def test_the_audit_log_writes_a_loop_turns_records_at_the_next_turn_in_order(tmp_path: Path) -> None:
    import asyncio
    import threading

    from bwsandbox.clock import Clock
    from bwsandbox.server import audit

    path = tmp_path / "audit.log"

    async def main() -> None:
        log = audit.AuditLog(path, Clock())
        log.event("open", n=1)
        log.event("close", n=2)
        assert audit.read(path) == []  # not before this turn's replies are out
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert [r["n"] for r in audit.read(path)] == [1, 2]
        worker = threading.Thread(target=log.event, args=("pickup",), kwargs={"n": 3})
        worker.start()
        worker.join()
        for _ in range(20):
            await asyncio.sleep(0.01)
            if len(audit.read(path)) == 3:
                break
        log.event("end", n=4)
        log.close()  # a clean stop writes what is queued
        assert [r["n"] for r in audit.read(path)] == [1, 2, 3, 4]

    asyncio.run(main())
    off_loop = audit.AuditLog(tmp_path / "tools.log", Clock())
    off_loop.event("x", n=1)
    assert [r["n"] for r in audit.read(tmp_path / "tools.log")] == [1]  # no loop: at once
    off_loop.close()


def test_records_queued_behind_a_write_its_closed_loop_never_ran_are_written_at_once(tmp_path: Path) -> None:
    import asyncio

    from bwsandbox.clock import Clock
    from bwsandbox.server import audit

    path, loop = tmp_path / "audit.log", asyncio.new_event_loop()

    async def make() -> audit.AuditLog:
        return audit.AuditLog(path, Clock())

    log = loop.run_until_complete(make())
    log.event("open", n=1)  # its write is scheduled on the loop...
    loop.close()  # ...which closes before running it
    log.event("close", n=2)
    assert [r["n"] for r in audit.read(path)] == [1, 2]  # not held until close()
    log.close()


def test_an_audit_write_that_fails_is_logged_and_the_server_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from bwsandbox.clock import Clock
    from bwsandbox.server import audit

    async def main() -> None:
        log = audit.AuditLog(tmp_path / "audit.log", Clock())
        log._fh.close()  # stands for a write that fails (a full disk)
        log._fh = (tmp_path / "audit.log").open("r", encoding="utf-8")
        log.event("open", n=1)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        log.event("close", n=2)  # still taken, still attempted
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        log.close()

    asyncio.run(main())
    assert [r.getMessage() for r in caplog.records if "audit log" in r.getMessage()] == [
        "audit log: 1 record(s) could not be written: not writable",
        "audit log: 1 record(s) could not be written: not writable",
    ]
