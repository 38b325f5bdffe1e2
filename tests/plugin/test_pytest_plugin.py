"""The pytest plugin keeps its promises: registered by entry point, a fresh
tenant per test, marker and overridable-fixture configuration, seeded users
that must validate, engage uploads that get processed, errors inside the
sandbox thread failing the test, and xdist workers that never share ports or
data."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from pathlib import Path
from typing import Any

import pysequoia
import pytest

from bwsandbox import layout
from bwsandbox.errors import UsageError
from bwsandbox.ingest import reports
from bwsandbox.testing import SandboxHandle


def test_each_test_gets_a_fresh_tenant_and_known_hosts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_first(bwsandbox):
            bwsandbox.upload("email,first_name,last_name\\r\\na@x.com,A,B\\r\\n", "u_20261125.csv")
            assert bwsandbox.wait_processed("u_20261125.csv")["verdict"] == "accepted"
            assert [u.email for u in bwsandbox.directory] == ["a@x.com"]

        def test_second_sees_nothing_of_the_first(bwsandbox):
            assert bwsandbox.directory == [] and bwsandbox.emails == []
            assert bwsandbox.known_hosts.read_text().count("ssh-ed25519") == 2  # us + eu
            assert set(bwsandbox.ports) == {"us", "eu"} and bwsandbox.port == bwsandbox.ports["us"]
            assert bwsandbox.fingerprints["ssh-ed25519"].startswith("SHA256:")
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_marker_configures_the_tenant(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.bwsandbox(region="eu", locale="en-GB", licenses=7,
                               users=[{"email": "x@y.com", "first_name": "X", "last_name": "Y"}])
        def test_configured(bwsandbox):
            assert bwsandbox.port == bwsandbox.ports["eu"]
            assert (bwsandbox.tenant.locale, bwsandbox.tenant.licenses) == ("en-GB", 7)
            assert bwsandbox.user("X@Y.COM").first_name == "X"
        """
    )
    pytester.runpytest_subprocess("--strict-markers").assert_outcomes(passed=1)


def test_a_fault_fires_within_its_with_block_and_lifts_after(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time

        import paramiko, pytest

        FEED = b"email,first_name,last_name\\r\\nann@example.com,Ann,Lee\\r\\n"

        def put(sb, name):
            client = paramiko.SSHClient()
            client.load_host_keys(str(sb.known_hosts))
            client.connect(sb.host, sb.port, username=sb.username, password=sb.password,
                           allow_agent=False, look_for_keys=False)
            try:
                with client.open_sftp() as sftp, sftp.open(f"incoming/{name}", "wb") as f:
                    f.write(FEED)
            finally:
                client.close()

        def test_dropped_then_retried(bwsandbox):
            with bwsandbox.fault("disconnect", after_bytes=10) as fault:
                with pytest.raises((paramiko.SSHException, OSError, EOFError)):
                    put(bwsandbox, "users_20261125.csv")
                assert fault.kind == "disconnect"
            dropped = "incomplete upload: the connection was dropped after 10"
            with pytest.raises(AssertionError, match=dropped):
                bwsandbox.wait_processed("users_20261125.csv")
            put(bwsandbox, "users_20261125.csv")  # the fault ended with its block
            while len(bwsandbox.conn.execute("SELECT id FROM files").fetchall()) < 2:
                time.sleep(0.02)  # the retry is recorded (pickup waits a quiet second)
            report = bwsandbox.wait_processed("users_20261125.csv")
            assert report["applied"]["created"] == 1

        def test_refused_login(bwsandbox):
            with bwsandbox.fault("refuse-login", times=1):
                with pytest.raises(paramiko.AuthenticationException):
                    put(bwsandbox, "users_20261126.csv")
                put(bwsandbox, "users_20261126.csv")  # times=1: lifted already
            assert bwsandbox.wait_processed("users_20261126.csv")["verdict"] == "accepted"
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


BREAK_THE_LOOP = """
import asyncio

def break_the_server_loop(bwsandbox):
    sandbox = bwsandbox._server.sandbox
    sandbox.call(lambda: asyncio.get_running_loop().call_soon(lambda: 1 / 0))
    sandbox.call(lambda: None)  # the callback above has run by now
"""


def test_an_error_inside_the_sandbox_thread_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        BREAK_THE_LOOP
        + """
def test_breaks_the_server_loop(bwsandbox):
    break_the_server_loop(bwsandbox)

def test_the_next_test_is_clean(bwsandbox):
    pass
"""
    )
    result = pytester.runpytest_subprocess()
    # The test itself fails (call phase), not a teardown error beside a pass.
    result.assert_outcomes(failed=1, passed=1, errors=0)
    result.stdout.fnmatch_lines([
        "*= FAILURES =*", "*_ test_breaks_the_server_loop _*",
        "*SandboxThreadError: error inside the sandbox:*", "*ZeroDivisionError*",
    ])


def test_a_failing_test_keeps_its_own_error_and_the_sandbox_error_still_surfaces(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        BREAK_THE_LOOP
        + """
def test_fails_and_breaks(bwsandbox):
    break_the_server_loop(bwsandbox)
    assert 1 == 2, "the test's own failure"
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_fails_and_breaks*", "*SandboxThreadError: error inside the sandbox:*",
        "*= FAILURES =*", "*AssertionError: the test's own failure*",
    ])


def test_invalid_seeded_users_fail_the_setup_naming_row_and_finding(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.bwsandbox(users=[
            {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"},
            {"email": "not-an-address", "first_name": "Bob", "last_name": "Bad"},
        ])
        def test_never_runs(bwsandbox):
            print("BODY RAN")
        """
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*the tenant's seeded users*are invalid*",
        "*users[[]1[]] (not-an-address): EMAIL_INVALID in 'email': *",
    ])
    result.stdout.no_fnmatch_line("*BODY RAN*")


def test_the_admin_upload_returns_its_findings(bwsandbox: SandboxHandle) -> None:
    report = bwsandbox.admin.upload("email,first_name,last_name\r\nann@example.com,,Lee\r\n")
    assert report["verdict"] == "rejected"
    assert [(f["code"], f["row"]) for f in report["findings"]] == [("REQUIRED_VALUE_MISSING", 2)]
    assert bwsandbox.directory == []


def test_seed_users_returns_the_report_of_a_valid_seed(bwsandbox: SandboxHandle) -> None:
    report = bwsandbox.seed_users([{"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}])
    assert report["applied"]["created"] == 1 and bwsandbox.user("ann@example.com").last_name == "Lee"


def test_overriding_bwsandbox_tenant_config_configures_every_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from bwsandbox.testing import TenantConfig

        @pytest.fixture
        def bwsandbox_tenant_config():
            return TenantConfig(profile="engage", region="eu", licenses=3, contact="hr@acme.example",
                                users=[{"email": "old@acme.example"}])
        """
    )
    pytester.makepyfile(
        """
        def test_the_override_is_the_tenant(bwsandbox):
            t = bwsandbox.tenant
            assert (str(t.profile), str(t.region), t.licenses, t.contact) == (
                "engage", "eu", 3, "hr@acme.example")
            assert bwsandbox.port == bwsandbox.ports["eu"] and bwsandbox.drop_folder == "/"
            assert [u.email for u in bwsandbox.directory] == ["old@acme.example"]

        def test_and_it_drives_the_feed(bwsandbox):
            roster = "email\\r\\nold@acme.example\\r\\nnew@acme.example\\r\\n"
            report = bwsandbox.wait_processed(bwsandbox.upload_engage(roster, stamp="202611250900"))
            assert (report["applied"]["created"], report["applied"]["unchanged"]) == (1, 1)
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=2)


LIST_ROOT = """
import asyncio, asyncssh

def listing(bwsandbox):
    async def go():
        async with asyncssh.connect(
            bwsandbox.host, bwsandbox.port, username=bwsandbox.username, password=bwsandbox.password,
            known_hosts=str(bwsandbox.known_hosts), client_keys=None, agent_path=None,
        ) as conn, conn.start_sftp_client() as sftp:
            return sorted(n for n in await sftp.listdir("/") if not n.startswith("."))
    return asyncio.run(go())

def test_the_reports_folder(bwsandbox):
    bwsandbox.upload("email,first_name,last_name\\r\\na@x.com,A,B\\r\\n", "u_20261125.csv")
    bwsandbox.wait_processed("u_20261125.csv")
    assert listing(bwsandbox) == EXPECTED
    assert bwsandbox._server.settings.reports_folder is (EXPECTED == ["incoming", "reports"])
"""


def test_overriding_bwsandbox_settings_changes_the_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_default="EXPECTED = ['incoming', 'reports']\n" + LIST_ROOT)
    pytester.runpytest_subprocess("test_default.py").assert_outcomes(passed=1)  # the control

    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def bwsandbox_settings():
            return {"reports_folder": False}
        """
    )
    pytester.makepyfile(test_override="EXPECTED = ['incoming']\n" + LIST_ROOT)
    pytester.runpytest_subprocess("test_override.py").assert_outcomes(passed=1)


@pytest.mark.bwsandbox(profile="engage")
def test_an_engage_file_from_the_integrators_own_tooling_is_processed(bwsandbox: SandboxHandle) -> None:
    # What an integrator's job does with the key it was given: encrypt with
    # its own OpenPGP tooling (here pysequoia, not bwsandbox's helper).
    assert bwsandbox.pgp_public_key.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    cert = pysequoia.Cert.from_bytes(bwsandbox.pgp_public_key.encode())
    encrypted = pysequoia.encrypt(b"email\r\nann@example.com\r\n", recipients=[cert], armor=True)
    bwsandbox.upload(encrypted, "employees.202611251000.csv.pgp")
    bwsandbox.upload(b"", "employees.202611251000.csv.done.pgp")
    assert bwsandbox.wait_processed("employees.202611251000.csv.pgp")["verdict"] == "accepted"
    assert bwsandbox.user("ann@example.com").status == "active"


@pytest.mark.bwsandbox(profile="engage")
def test_an_engage_file_without_its_marker_times_out_saying_why(bwsandbox: SandboxHandle) -> None:
    # What `upload()` alone does for an engage tenant: no marker, so the file
    # waits (docs/production.md §1); the content is irrelevant, it is never decrypted.
    bwsandbox.upload(b"not sent properly", "employees.202611251100.csv.pgp")
    with pytest.raises(TimeoutError, match=r"state: waiting, waiting for .*done\.pgp.*upload_engage\(\)"):
        bwsandbox.wait_processed("employees.202611251100.csv.pgp", timeout=5)


@pytest.mark.bwsandbox(profile="engage")
def test_upload_engage_defaults_to_the_current_minute_and_checks_its_stamp(bwsandbox: SandboxHandle) -> None:
    before = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    name = bwsandbox.upload_engage(b"email\r\nann@example.com\r\n")
    match = re.fullmatch(r"employees\.(\d{12})\.csv\.pgp", name)
    assert match, name
    stamp = dt.datetime.strptime(match.group(1), "%Y%m%d%H%M").replace(tzinfo=dt.UTC)
    assert before <= stamp <= dt.datetime.now(dt.UTC)
    assert bwsandbox.wait_processed(name)["verdict"] == "accepted"
    with pytest.raises(ValueError, match="YYYYMMDDHHMM"):
        bwsandbox.upload_engage(b"email\r\n", stamp="2026-11-25")


def test_upload_engage_refuses_a_core_tenant(bwsandbox: SandboxHandle) -> None:
    with pytest.raises(UsageError, match="engage profile"):
        bwsandbox.upload_engage(b"email\r\n", stamp="202611250900")


def test_xdist_workers_never_share_ports_or_data(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = pytester.path / "where"
    out.mkdir()
    monkeypatch.setenv("WHERE_DIR", str(out))
    pytester.makepyfile(
        """
        import os, pathlib, pytest

        @pytest.mark.parametrize("n", range(8))
        def test_where(bwsandbox, n, worker_id):
            where = f"{bwsandbox.port} {bwsandbox._server.settings.data_dir}"
            pathlib.Path(os.environ["WHERE_DIR"], f"{worker_id}-{n}").write_text(where)
            bwsandbox.upload(b"email,first_name,last_name\\na@x.com,A,B\\n", f"u{n}_20261125.csv")
            assert bwsandbox.wait_processed(f"u{n}_20261125.csv")["verdict"] == "accepted"
            assert [u.email for u in bwsandbox.directory] == ["a@x.com"]
        """
    )
    pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider").assert_outcomes(passed=8)
    by_worker: dict[str, set[str]] = {}
    for f in out.iterdir():
        by_worker.setdefault(f.name.split("-")[0], set()).add(f.read_text())
    assert set(by_worker) == {"gw0", "gw1"}
    assert all(len(places) == 1 for places in by_worker.values())  # one sandbox per worker
    (gw0,), (gw1,) = by_worker["gw0"], by_worker["gw1"]
    assert gw0.split()[0] != gw1.split()[0] and gw0.split()[1] != gw1.split()[1]


@pytest.fixture
def slow_publish(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """The worker publishes reports slowly; (entered, finished) events."""
    real, entered, finished = reports.publish, threading.Event(), threading.Event()

    def publish(folder: Path, name: str, report: Any, errors: bytes | None) -> None:
        entered.set()
        try:
            time.sleep(0.3)
            real(folder, name, report, errors)
        finally:
            finished.set()

    monkeypatch.setattr(reports, "publish", publish)
    return entered, finished


def test_wait_processed_returns_once_the_reports_are_published(
    bwsandbox: SandboxHandle, slow_publish: tuple[threading.Event, threading.Event]
) -> None:
    # A file is `done` before the worker delivers its emails and publishes its reports.
    bwsandbox.upload(b"email,first_name,last_name\na@x.com,A,B\n", "u_20261125.csv")
    bwsandbox.wait_processed("u_20261125.csv")
    assert slow_publish[1].is_set()
    folder = layout.reports_dir(bwsandbox._server.settings.data_dir, bwsandbox.tenant)
    assert (folder / "u_20261125.csv.report.json").is_file()


def test_the_next_reset_waits_for_the_last_files_reports(
    bwsandbox: SandboxHandle, slow_publish: tuple[threading.Event, threading.Event]
) -> None:
    # A reset that wiped the tenant tree while the worker published made it fail (seen in CI).
    entered, finished = slow_publish
    bwsandbox.upload(b"email,first_name,last_name\na@x.com,A,B\n", "u_20261125.csv")
    assert entered.wait(30)
    fresh = bwsandbox._server.reset()
    assert finished.is_set()  # the reset waited for the worker
    fresh.check()  # which published without an error
    folder = layout.reports_dir(fresh._server.settings.data_dir, fresh.tenant)
    assert list(folder.iterdir()) == []  # and nothing of the last test leaks into the next


def test_the_fixture_is_a_handle_on_a_running_sandbox(bwsandbox: SandboxHandle) -> None:
    # The plugin is active in this very suite through its pytest11 entry point.
    assert bwsandbox.username == "test" and bwsandbox.password
    assert bwsandbox.drop_folder == "/incoming"
