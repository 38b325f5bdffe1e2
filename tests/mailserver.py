"""A real SMTP server for the tests that need one (aiosmtpd, on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def smtp_server(on_data: Callable[[bytes], None]) -> Iterator[int]:
    """An SMTP server for the duration, on a free port (yielded): `on_data` is
    called with each message, as received, while the client waits for its reply."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            on_data(envelope.original_content)
            return "250 OK"

    with socket.socket() as probe:  # Controller's readiness check cannot use port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
