"""Filesystem conventions shared by the ingest and cli layers: where a
running `serve` says which ports it listens on, how every file another
process may read (reports in the SFTP tree, outboxed emails, status files)
is written, and how a file that may be huge or endless is read."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

_PIECE = 1 << 20  # a bounded read asks for at most this much at a time


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


class TooLarge(Exception):
    """More than `limit` bytes. `size` is the file's size when stat knew it
    before the read; None when the read stopped one byte past the limit (a
    device, a pipe, a file that grew), so only "more than `limit`" is known.
    Callers turn it into their own message (a usage error, a refused file)."""

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(f"{'more than ' + format(limit, ',') if size is None else format(size, ',')} "
                         f"bytes, over the limit of {limit:,}")
        self.size = size
        self.limit = limit


def read_bounded(source: Path | BinaryIO, limit: int) -> bytes:
    """All of `source` (a path, or a binary stream such as stdin) when it
    holds at most `limit` bytes; `TooLarge` otherwise.

    A path is stat'ed first: a regular file over the limit is refused before
    it is opened, and one within it is read in one call of its size (plus a
    byte, so a file that grew since is noticed). Anything else is read in
    1 MiB pieces until its end or one byte past the limit, joined at the
    end: read(n) on a file object reserves n bytes up front, so asking for
    limit + 1 (2 GiB by default) at once fails under a memory limit even
    for a two-line file, and an endless device is never read past the limit.
    """
    if isinstance(source, Path):
        st = source.stat()
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:
            raise TooLarge(st.st_size, limit)
        first = st.st_size + 1 if stat.S_ISREG(st.st_mode) else _PIECE
        with source.open("rb") as fh:
            return _read_pieces(fh, limit, first)
    return _read_pieces(source, limit, _PIECE)


def _read_pieces(fh: BinaryIO, limit: int, first: int) -> bytes:
    pieces: list[bytes] = []
    total, want = 0, first
    while total <= limit:
        piece = fh.read(min(want, limit + 1 - total))
        if not piece:
            break
        pieces.append(piece)
        total += len(piece)
        want = _PIECE
    if total > limit:
        raise TooLarge(None, limit)
    return b"".join(pieces)
