"""Where `--format csv` and `--format json` output goes: the one place that
decides between the data's exact bytes and text safe to show (security audit).

- stdout is a file or a pipe: the exact data, for scripts and spreadsheets
  (the CSV cells keep `validator.formulas`' leading `'`, nothing else);
- stdout is a terminal: a person reads it, so a tenant's control, surrogate
  or reordering character is shown escaped as the tables show it
  (`textsafe.printable`: `\\x1b`, `\\u202e`): an `ESC [2J` in a title never
  clears the screen, an `ESC ] 0;…BEL` never sets the window title. CSV
  keeps its line ends (a CRLF shows as one); JSON comes out ASCII-only, its
  `\\uXXXX` escapes keeping it valid JSON with the same values (json.dumps
  escapes C0 controls anyway; `ensure_ascii=False` lets DEL, C1 such as
  CSI `\\x9b` and bidi overrides through).
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from bwsandbox.textsafe import printable


class _Shown:
    """A text stream for a person: whatever is written is shown escaped."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(printable(text, keep="\n"))


def _terminal() -> bool:
    return sys.stdout.isatty()


def csv_stdout() -> TextIO | _Shown:
    """Where a `csv.writer` of `--format csv` writes: stdout, escaped on a terminal."""
    return _Shown(sys.stdout) if _terminal() else sys.stdout


def write_csv_bytes(data: bytes) -> None:
    """A CSV already encoded (`validate`'s error file, UTF-8, CRLF) to stdout."""
    if _terminal():
        csv_stdout().write(data.decode("utf-8", "replace").replace("\r\n", "\n"))
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def write_json(doc: object) -> None:
    """`doc` as indented JSON on stdout: non-ASCII as written in a pipe, escaped on a terminal."""
    sys.stdout.write(json.dumps(doc, ensure_ascii=_terminal(), indent=2) + "\n")
