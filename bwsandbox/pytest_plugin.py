"""pytest fixtures for integrators' test suites (docs/python-api.md), registered through
the `pytest11` entry point when bwsandbox is installed.

    bwsandbox_server          session scope: one sandbox per session (and per
                              xdist worker: own temp dir, own ports)
    bwsandbox_settings        overridable: settings overrides for the server
    bwsandbox_tenant_config   overridable: the tenant (or use the marker)
    bwsandbox                 function scope: a fresh tenant on the server

    @pytest.mark.bwsandbox(profile="core", locale="en-GB", licenses=5,
                           users=[{"email": ..., "first_name": ..., ...}])

Failures are pinned on the test that caused them: an error inside the
sandbox's threads fails the test's call phase (hook `pytest_runtest_call`),
or its teardown when it happens after the test body; seeded users that the
Admin module refuses fail its setup.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bwsandbox.testing import SandboxHandle, SandboxServer, SeedUsersError, TenantConfig


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "bwsandbox(profile, region, locale, licenses, contact, custom_keys, users): "
        "configure the tenant the `bwsandbox` fixture creates",
    )


@pytest.fixture(scope="session")
def bwsandbox_settings() -> dict[str, Any]:
    """Override to change server settings, e.g. {"reports_folder": False}."""
    return {}


@pytest.fixture(scope="session")
def bwsandbox_server(
    tmp_path_factory: pytest.TempPathFactory, bwsandbox_settings: dict[str, Any]
) -> Iterator[SandboxServer]:
    """The session's sandbox: server and ingestion on free ports, a temp data dir."""
    server = SandboxServer(tmp_path_factory.mktemp("bwsandbox"), **bwsandbox_settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bwsandbox_tenant_config(request: pytest.FixtureRequest) -> TenantConfig:
    """The marker's arguments; override the fixture for a suite-wide default."""
    marker = request.node.get_closest_marker("bwsandbox")
    return TenantConfig(**marker.kwargs) if marker else TenantConfig()


@pytest.fixture
def bwsandbox(
    bwsandbox_server: SandboxServer, bwsandbox_tenant_config: TenantConfig
) -> Iterator[SandboxHandle]:
    """A fresh tenant: credentials, known_hosts, upload(), upload_engage(), wait_processed(), directory."""
    bwsandbox_server.check()  # anything that failed between two tests surfaces here
    try:
        handle = bwsandbox_server.reset(bwsandbox_tenant_config)
    except SeedUsersError as exc:  # the message names each row: no traceback needed
        raise pytest.fail.Exception(str(exc), pytrace=False) from None
    yield handle
    bwsandbox_server.check()  # what failed after the test body (see pytest_runtest_call)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail the test itself, not only its teardown, when the sandbox's
    threads raised while it ran. A test that already failed keeps its own
    error; the sandbox's then surfaces at teardown."""
    __tracebackhide__ = True  # the report starts at the sandbox's error, not this hook
    yield
    handle = item.funcargs.get("bwsandbox") if isinstance(item, pytest.Function) else None
    if isinstance(handle, SandboxHandle):
        handle.check()
