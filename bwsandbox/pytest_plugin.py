"""pytest fixtures for integrators' test suites (issue #5), registered through
the `pytest11` entry point when bwsandbox is installed.

    bwsandbox_server          session scope: one sandbox per session (and per
                              xdist worker: own temp dir, own ports)
    bwsandbox_settings        overridable: settings overrides for the server
    bwsandbox_tenant_config   overridable: the tenant (or use the marker)
    bwsandbox                 function scope: a fresh tenant on the server

    @pytest.mark.bwsandbox(profile="core", locale="en-GB", licenses=5,
                           users=[{"email": ..., "first_name": ..., ...}])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bwsandbox.testing import SandboxHandle, SandboxServer, TenantConfig


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
    bwsandbox_server.check()  # anything that failed between two tests surfaces here
    handle = bwsandbox_server.reset(bwsandbox_tenant_config)
    yield handle
    bwsandbox_server.check()
