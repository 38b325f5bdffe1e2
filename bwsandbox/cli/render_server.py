"""Rendering for the server-side commands (serve banner, tenant list, files,
host keys). Kept apart from render.py (the validator's) so both can grow
without stepping on each other; rich stays confined to the cli layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from bwsandbox.ingest import reports
from bwsandbox.server.hostkeys import HostKeyInfo

FINDING_COLUMNS = ("row", "severity", "code", "column", "message")


def host_keys_text(keys: Sequence[HostKeyInfo], *, title: str = "Host key fingerprints") -> str:
    """Fingerprints the way each client shows them (SPEC §2)."""
    lines = [f"{title}:"]
    for key in keys:
        lines.append(f"  {key.type}")
        lines.append(f"    OpenSSH            {key.sha256}")
        lines.append(f"                       {key.md5}")
        lines.append(f"    PuTTY / FileZilla  {key.putty}")
        if key.type == CURL_KEY_TYPE:
            pin = f"--hostpubsha256 {key.curl_sha256}"
            lines.append(f"    curl               {pin}  (curl/libssh2 uses this key)")
    return "\n".join(lines)


# curl (libssh2) negotiates ECDSA with this server, whatever else is offered,
# so only that key's hash pins it (README "Connecting with clients").
CURL_KEY_TYPE = "ecdsa-sha2-nistp256"


def connect_text(host: str, port: int, username: str, password: str, keys: Sequence[HostKeyInfo]) -> str:
    """How to connect with the common clients."""
    target = f"{username}@{host}" if host not in ("0.0.0.0", "::", "") else f"{username}@127.0.0.1"
    shown = target.split("@", 1)[1]
    ed25519 = next((k for k in keys if k.type == "ssh-ed25519"), None)
    ecdsa = next((k for k in keys if k.type == CURL_KEY_TYPE), None)
    pin = f" -hostkey {ed25519.sha256}" if ed25519 else ""
    curl_pin = f" --hostpubsha256 {ecdsa.curl_sha256}" if ecdsa else ""
    return "\n".join(
        [
            f"  OpenSSH    sftp -P {port} {target}        (password: {password})",
            f"  PuTTY      psftp -P {port}{pin} {target}",
            f"  FileZilla  sftp://{shown}  port {port}  user {username}",
            f"  curl       curl -u {username}:{password}{curl_pin} -T FILE sftp://{shown}:{port}/incoming/",
        ]
    )


def print_table(console: Console, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if not console.is_terminal:
        # Piped or redirected (`| grep`, a log): rich would assume 80 columns
        # and cut names short; nothing is cut where no terminal is.
        console = Console(file=console.file, width=10_000, color_system=None)
    table = Table(*columns, show_lines=False, header_style="bold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def shown_state(state: str) -> str:
    """A file's state as `files` and `report` show it: an engage data file
    `waiting` for its .done marker is, for the user, still queued."""
    return "queued" if state == "waiting" else state


def print_findings(console: Console, report: Mapping[str, object]) -> None:
    """A report's findings as one table (nothing when there are none); a
    file-level finding shows `file` as its row."""
    findings = reports.findings(report)
    if findings:
        print_table(
            console, FINDING_COLUMNS,
            [[f["row"] or "file", f["severity"], f["code"], f["column"], f["message"]] for f in findings],
        )
