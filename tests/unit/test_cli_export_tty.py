"""`--format csv` / `--format json` on a terminal show a tenant's control
characters escaped; in a pipe they keep the exact bytes (bwsandbox/cli/export.py).
The CLI runs as a real process, its stdout a pseudo-terminal or a pipe."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from ingest_env import Env

TITLE = "\x1b[2J\x1b]0;pwned\x07CTO"  # clears the screen, sets the window title
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    env = Env(tmp_path)  # a real store, inbox and worker (ingest_env.py)
    env.put(env.tenant("acme"), "users_20260301.csv",
            f"email,first_name,last_name,title\nada@x.com,Ada,Lovelace,{TITLE}\n")
    env.worker.process_pending()
    env.conn.close()
    return env.settings.data_dir


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bwsandbox.cli", *args]


def _on_a_terminal(argv: list[str]) -> bytes:
    """What the command writes to stdout when stdout is a pseudo-terminal."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    finally:
        os.close(master)
    return b"".join(chunks)


def _in_a_pipe(argv: list[str]) -> bytes:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60).stdout


@pytest.mark.parametrize("extra", [("--format", "csv"), ("--format", "csv", "--history")])
def test_directory_csv_escapes_on_a_terminal_and_keeps_the_bytes_in_a_pipe(
    data: Path, extra: tuple[str, ...]
) -> None:
    argv = _cli("directory", *extra, "--data-dir", str(data))
    shown = _on_a_terminal(argv)
    assert b"\x1b" not in shown and b"\x07" not in shown
    assert b"\\x1b[2J\\x1b]0;pwned\\x07CTO" in shown  # escaped as the tables show it
    assert TITLE.encode() in _in_a_pipe(argv)  # the exact data for a script


def test_validate_csv_and_json_escape_on_a_terminal_and_keep_the_bytes_in_a_pipe(tmp_path: Path) -> None:
    feed = tmp_path / "users_20260301.csv"
    bad = "\x1b]0;pwned\x07\x9b2J\u202enot-an-email"  # ESC, BEL, C1 CSI, a bidi override
    feed.write_text(f"email,first_name,last_name\n{bad},Ada,Lovelace\n")  # quoted in the finding
    for fmt in ("csv", "json"):
        argv = _cli("validate", "--format", fmt, str(feed))
        shown = _on_a_terminal(argv).decode()
        assert not any(c in shown for c in RAW), fmt
        piped = _in_a_pipe(argv).decode()
        # JSON escapes C0 controls itself (\u001b); DEL, C1 and bidi stay as sent.
        assert (bad if fmt == "csv" else "\x9b2J\u202enot-an-email") in piped, fmt
