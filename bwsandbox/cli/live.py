"""The live view of `bwsandbox serve` (docs/server.md): endpoints, credentials,
host-key fingerprints as FileZilla shows them, and recent files updating as
uploads arrive; its files table keeps to the terminal's width (the least
useful columns go first). On a non-terminal stdout (a service, a CI log),
one timestamped line per file event instead, flushed at once.

Rendering is a pure function of a `Dashboard` snapshot, so it is tested
without a terminal; `run_live` only polls the store and refreshes. File
names come from tenants: they are shown through `cli.safe`, never as markup
and never with their control characters.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bwsandbox.cli import safe
from bwsandbox.ingest import files
from bwsandbox.ingest.files import FileState
from bwsandbox.ingest.reports import applied_text

STATE_STYLE: dict[str, str] = {
    FileState.INCOMPLETE: "red",
    FileState.WAITING: "yellow",
    FileState.QUEUED: "yellow",
    FileState.PROCESSING: "cyan",
    FileState.DONE: "green",
    FileState.FAILED: "bold red",
}
VERDICT_STYLE = {"accepted": "green", "partial": "yellow", "rejected": "bold red"}


@dataclass(frozen=True, slots=True, kw_only=True)
class HostKeyInfo:
    type: str  # e.g. ssh-ed25519
    bits: int  # as PuTTY/FileZilla show it (ed25519: 255)
    sha256: str  # "SHA256:..."
    md5: str  # "MD5:aa:bb:..."


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRow:
    id: int
    tenant: str
    name: str
    bytes: int
    received_at: str
    state: str
    verdict: str | None
    counts: dict[str, int] = field(default_factory=dict)
    detail: str = ""  # why a file is incomplete or failed


@dataclass(frozen=True, slots=True, kw_only=True)
class Dashboard:
    endpoints: dict[str, tuple[str, int]]  # region -> (host, port)
    host_keys: Sequence[HostKeyInfo]
    credentials: Sequence[tuple[str, str, str, str]]  # (tenant, region, username, password or "")
    files: Sequence[FileRow] = ()


def recent_files(conn: sqlite3.Connection, limit: int = 15) -> list[FileRow]:
    out = []
    for r in files.recent(conn, limit):
        try:
            counts = json.loads(r.counts_json) if r.counts_json else {}
        except ValueError:
            counts = {}
        out.append(FileRow(
            id=r.id, tenant=r.tenant, name=r.name, bytes=r.bytes,
            received_at=r.received_at, state=r.state.value, verdict=r.verdict,
            counts={k: int(v) for k, v in counts.items() if isinstance(v, int)},
            detail=r.detail if r.state in (FileState.INCOMPLETE, FileState.FAILED) else "",
        ))
    return out


def _counts(row: FileRow) -> str:
    """`created 3, skipped 1`: the same words as `bwsandbox files` and reports."""
    return applied_text({"applied": row.counts})


# Columns of the files table, most useful first: a narrow terminal drops
# from the end (a wrapped name or count is read; a sliver of every column is not).
_COLUMNS = ("#", "name", "state", "verdict", "applied", "received", "tenant", "bytes")
_WIDTHS = {"#": 4, "name": 24, "state": 10, "verdict": 8, "applied": 18, "received": 19, "tenant": 8,
           "bytes": 9}


def _columns_for(width: int | None, tenants: int) -> list[str]:
    columns = [c for c in _COLUMNS if c != "tenant" or tenants > 1]
    if width is None:
        return columns
    while len(columns) > 4 and sum(_WIDTHS[c] + 3 for c in columns) > width:
        columns.pop()
    return columns


def _files_table(d: Dashboard, width: int | None) -> Table:
    tenants = len({c[0] for c in d.credentials} | {f.tenant for f in d.files})
    columns = _columns_for(width, tenants)
    files = Table(title="Recent files", title_justify="left")
    for col in columns:
        files.add_column(col, no_wrap=col in {"#", "bytes", "state", "received"}, overflow="fold")
    for f in d.files:
        cells = {
            "#": Text(str(f.id)), "tenant": safe.text(f.tenant), "name": safe.text(f.name),
            "bytes": Text(f"{f.bytes:,}"), "received": Text(f.received_at.replace("T", " ")[:19]),
            "state": Text(f.state, style=STATE_STYLE.get(f.state, "")),
            "verdict": Text(f.verdict or "", style=VERDICT_STYLE.get(f.verdict or "", "")),
            "applied": Text(_counts(f)),
        }
        files.add_row(*(cells[c] for c in columns))
    if not d.files:
        files.add_row(*(Text("waiting for uploads…", style="dim") if c == "name" else "" for c in columns))
    return files


def render(d: Dashboard, width: int | None = None) -> RenderableType:
    """The whole screen for one snapshot (`width`: the terminal's, which
    decides the files table's columns)."""
    conn = Table.grid(padding=(0, 2))
    conn.add_column(style="bold")
    conn.add_column()
    for region, (host, port) in sorted(d.endpoints.items()):
        conn.add_row(f"{region.upper()} endpoint", f"sftp://{host}:{port}  (sftp -P {port} USER@{host})")
    for tenant, region, user, password in d.credentials:
        secret = password or "(set by `tenant add`)"
        who = Text.assemble(f"{region}  user ", safe.text(user, style="cyan"), "  password ",
                            safe.text(secret, style="cyan"))
        conn.add_row(safe.text(f"tenant {safe.plain(tenant)}"), who)
    keys = Table.grid(padding=(0, 2))
    keys.add_column(style="bold")
    keys.add_column()
    for k in d.host_keys:
        # FileZilla's unknown-host-key dialog shows "ssh-ed25519 255" and the
        # SHA256 fingerprint (docs/production.md §2); OpenSSH shows the same SHA256 text.
        keys.add_row(f"{k.type} {k.bits}", f"{k.sha256}\n[dim]{k.md5}[/]")
    files = _files_table(d, width)
    return Group(
        Panel(conn, title="bwsandbox — Betterworks SFTP user feed, locally", border_style="blue"),
        Panel(keys, title="Host key fingerprints (accept these on first connection)", border_style="blue"),
        files,
        Text("Ctrl-C stops the sandbox.", style="dim"),
    )


def fit(d: Dashboard, console: Console) -> Dashboard:
    """Keep only as many recent files as the terminal has rows for: a live
    region taller than the screen cannot be redrawn in place."""
    base = len(console.render_lines(render(replace(d, files=()), console.width), pad=False))
    room = max(1, console.size.height - base)
    fitted = replace(d, files=tuple(d.files[:room]))
    # A long name folds onto a second line: drop files until it all fits.
    while len(fitted.files) > 1 and len(
        console.render_lines(render(fitted, console.width), pad=False)
    ) > console.size.height:
        fitted = replace(fitted, files=fitted.files[:-1])
    return fitted


_FINAL = files.FINAL


def log_line(f: FileRow) -> str:
    """The plain line for a file state change when stdout is not a terminal:
    one line, whatever the file's name holds (`cli.safe`)."""
    verdict = f" verdict={f.verdict}" if f.verdict else ""
    counts = f" ({_counts(f)})" if f.counts else ""
    why = f": {safe.plain(f.detail)}" if f.detail else ""
    return (f"file #{f.id} tenant={safe.plain(f.tenant)} name={safe.plain(f.name)} bytes={f.bytes} "
            f"state={f.state}{verdict}{counts}{why}")


@contextmanager
def _logging_through(stream: TextIO) -> Iterator[None]:
    handlers = [
        h for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and h.stream in (sys.__stderr__, sys.__stdout__)
    ]
    previous = [h.setStream(stream) for h in handlers]
    try:
        yield
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            handler.setStream(old)


def run_live(
    snapshot: Callable[[], Dashboard],
    stop: threading.Event,
    *,
    console: Console | None = None,
    interval: float = 0.5,
    stamp: Callable[[], str] | None = None,
) -> None:
    """Refresh the dashboard on a terminal, or print one log line per state
    change otherwise, until `stop` is set.

    A timer (`interval`), not the sandbox's file events, on purpose: it waits
    for nobody, it redraws, and what it shows also changes from other
    processes (`bwsandbox tenant add`, `clock`, `fault` in another terminal),
    which no event in this one announces. Twice a second also bounds the cost
    of a burst of uploads (one redraw per interval, not one per file)."""
    console = console or Console()
    if console.is_terminal:
        # Log lines written straight to the terminal would scroll it under the
        # live region; once Live runs, its sys.stderr proxy prints them above it.
        live = Live(render(fit(snapshot(), console), console.width), console=console, refresh_per_second=4)
        with live, _logging_through(sys.stderr):
            while not stop.wait(interval):
                live.update(render(fit(snapshot(), console), console.width))
        return
    # Files a previous run finished are history, not events of this one.
    seen: dict[int, tuple[str, str | None]] = {
        f.id: (f.state, f.verdict) for f in snapshot().files if f.state in _FINAL
    }
    while True:
        for f in reversed(snapshot().files):
            key = (f.state, f.verdict)
            if seen.get(f.id) != key:
                seen[f.id] = key
                line = log_line(f) if stamp is None else f"{stamp()} {log_line(f)}"
                console.print(line, markup=False, highlight=False, soft_wrap=True)
                console.file.flush()  # a log reader (tail -f, CI) sees it now, not at exit
        if stop.wait(interval):
            return
