"""Serving the API in the sandbox's own event loop (uvicorn's `Server.serve()`),
as one more Sandbox service: it starts before the SFTP listeners accept
connections (so /healthz answers 503 "starting" until they do) and stops
after them.

Bound to loopback by default. Bound anywhere else, a token is required
(`api_token`, BWSANDBOX_API_TOKEN): the API creates accounts and reads
every email, so it is never open to a network without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from typing import TYPE_CHECKING, Any

from bwsandbox.config import Settings
from bwsandbox.errors import ConfigError, ServerError

if TYPE_CHECKING:
    from bwsandbox.sandbox import Sandbox

log = logging.getLogger("bwsandbox.api")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None
        self._sandbox: Sandbox | None = None
        self.closing = asyncio.Event()

    async def start(self, sandbox: Sandbox) -> None:
        import uvicorn

        from bwsandbox.api.app import create_app

        host = self.settings.http_host
        if not is_loopback(host) and not self.settings.api_token:
            raise ConfigError(
                f"the HTTP API would listen on {host}, beyond this machine, without a token: set "
                "api_token (BWSANDBOX_API_TOKEN) so clients must send `Authorization: Bearer TOKEN`"
            )
        self.closing = asyncio.Event()
        self._sandbox = sandbox
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.create_server((host, self.settings.http_port or 0), family=family)
        except OSError as exc:
            raise ServerError(f"the HTTP API cannot listen on {host}:{self.settings.http_port}: "
                              f"{exc.strerror or exc}") from exc
        sock.setblocking(False)
        app = create_app(sandbox, self)
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", http="h11", ws="none",
            timeout_graceful_shutdown=2, server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="bwsandbox-http")
        for _ in range(1000):
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if not self._server.started:
            await self.stop()
            raise ServerError("the HTTP API did not start")
        port = sock.getsockname()[1]
        sandbox.http_address = (host, port)
        log.info("HTTP API and web UI on http://%s:%d/", host if ":" not in host else f"[{host}]", port)

    async def stop(self) -> None:
        self.closing.set()
        if self._sandbox is not None:
            self._sandbox.file_events.notify()  # long polls answer now, so the server can close
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
