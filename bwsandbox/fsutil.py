"""Filesystem conventions shared by the ingest and cli layers: where a
running `serve` says which ports it listens on, and how every file another
process may read (reports in the SFTP tree, outboxed emails, status files)
is written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def runtime_status_path(data_dir: Path) -> Path:
    """DATA_DIR/status.json: written by `serve` once listening (with its pid),
    removed on a clean stop; `hostkey known-hosts` reads the real ports here."""
    return data_dir / "status.json"


def running_status(data_dir: Path) -> dict[str, Any]:
    """DATA_DIR/status.json of a running `serve` (written by serve, removed
    on a clean stop); {} if none is running. A file left by a killed server
    names a dead pid and is ignored."""
    try:
        status = json.loads(runtime_status_path(data_dir).read_text(encoding="utf-8"))
        pid = int(status["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # alive, another user's
    except (OSError, OverflowError):
        return {}
    return status if isinstance(status, dict) else {}


def running_endpoints(data_dir: Path) -> dict[str, tuple[str, int]]:
    """The endpoints a running `serve` listens on; {} if none is running."""
    try:
        return {
            region: (str(ep["host"]), int(ep["port"]))
            for region, ep in running_status(data_dir).get("endpoints", {}).items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def running_fingerprints(data_dir: Path) -> set[str]:
    """SHA256 fingerprints of the host keys a running `serve` offers."""
    keys = running_status(data_dir).get("host_keys", [])
    return {str(k.get("sha256")) for k in keys if isinstance(k, dict)} if isinstance(keys, list) else set()


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader never sees half a file: a hidden
    temporary next to it (the SFTP tree does not list dot files), then
    os.replace. The parent directory must exist."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
