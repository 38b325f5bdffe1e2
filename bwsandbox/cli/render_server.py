"""Rendering for the server-side commands (serve banner, tenant list, files,
host keys). Kept apart from render.py (the validator's) so both can grow
without stepping on each other; rich stays confined to the cli layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from bwsandbox.server.hostkeys import HostKeyInfo


def host_keys_text(keys: Sequence[HostKeyInfo], *, title: str = "Host key fingerprints") -> str:
    """Fingerprints the way each client shows them (SPEC §2)."""
    lines = [f"{title}:"]
    for key in keys:
        lines.append(f"  {key.type}")
        lines.append(f"    OpenSSH            {key.sha256}")
        lines.append(f"                       {key.md5}")
        lines.append(f"    PuTTY / FileZilla  {key.putty}")
        lines.append(f"    curl               --hostpubsha256 {key.curl_sha256}")
    return "\n".join(lines)


def connect_text(host: str, port: int, username: str, password: str, ed25519: HostKeyInfo | None) -> str:
    """How to connect with the common clients."""
    target = f"{username}@{host}" if host not in ("0.0.0.0", "::", "") else f"{username}@127.0.0.1"
    shown = target.split("@", 1)[1]
    pin = f" -hostkey {ed25519.sha256}" if ed25519 else ""
    return "\n".join(
        [
            f"  OpenSSH    sftp -P {port} {target}        (password: {password})",
            f"  PuTTY      psftp -P {port}{pin} {target}",
            f"  FileZilla  sftp://{shown}  port {port}  user {username}",
            f"  curl       curl -u {username}:{password} -T FILE sftp://{shown}:{port}/incoming/",
        ]
    )


def print_table(console: Console, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(*columns, show_lines=False, header_style="bold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
