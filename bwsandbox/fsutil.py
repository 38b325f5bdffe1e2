"""Filesystem conventions shared by the ingest and cli layers: where a
running `serve` says which ports it listens on, and how every file another
process may read (reports in the SFTP tree, outboxed emails, status files)
is written."""

from __future__ import annotations

import os
from pathlib import Path


def runtime_status_path(data_dir: Path) -> Path:
    """DATA_DIR/status.json: written by `serve` once listening (with its pid),
    removed on a clean stop; `hostkey known-hosts` reads the real ports here."""
    return data_dir / "status.json"


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader never sees half a file: a hidden
    temporary next to it (the SFTP tree does not list dot files), then
    os.replace. The parent directory must exist."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
