"""The record every part of the server shares about one SSH connection.

Below the modules that use it (the login in `auth`, the SFTP session in
`sftp`, the hand-over in `pickup`, the `listener` that counts sessions), so
none of them imports another for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from bwsandbox.tenants import Tenant


@dataclass(slots=True, eq=False)
class Session:
    """One authenticated SSH connection, shared with its SFTP sessions."""

    id: int
    peer: str
    conn: asyncssh.SSHServerConnection
    tenant: Tenant | None = None
    last_activity: float = field(default_factory=time.monotonic)
    stall: float = 0.0  # seconds each authentication answer and SFTP reply waits (a `stall` fault)
    handles: int = 0  # file and directory handles open on its SFTP channels (server/handles.py)
    handles_given_back: bool = False  # its connection ended: `handles` was given back whole


def session_of(conn: Any) -> Session:
    """The Session the login attached to an asyncssh connection."""
    session = conn.get_extra_info("bwsandbox_session")
    assert isinstance(session, Session)
    return session
