"""The pytest plugin keeps its promises: registered by entry point, a fresh
tenant per test, marker configuration, errors inside the sandbox thread
re-raised in the test, and xdist workers that never share ports or data."""

from __future__ import annotations

import pytest

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


def test_an_error_inside_the_sandbox_thread_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio

        def test_breaks_the_server_loop(bwsandbox):
            sandbox = bwsandbox._server.sandbox
            sandbox.call(lambda: asyncio.get_running_loop().call_soon(lambda: 1 / 0))
            sandbox.call(lambda: None)  # the callback above has run by now
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*SandboxThreadError*", "*ZeroDivisionError*"])


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


def test_the_fixture_is_a_handle_on_a_running_sandbox(bwsandbox: SandboxHandle) -> None:
    # The plugin is active in this very suite through its pytest11 entry point.
    assert bwsandbox.username == "test" and bwsandbox.password
    assert bwsandbox.drop_folder == "/incoming"
