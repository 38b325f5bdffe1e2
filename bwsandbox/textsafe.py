"""Untrusted text made safe to show: file names, cell values, messages that
quote them (security audit).

An uploaded file's name and its cells are the tenant's text. Shown raw, an
escape sequence in them drives the reader's terminal (colours, cursor moves,
a fake prompt, the title bar), a newline in a file name forges a line of a
log, and a bidirectional override makes text read backwards. `printable()`
shows every such character visibly escaped instead (`\\x1b`, `\\n`,
`\\u202e`), so nothing is lost and nothing is obeyed. The CLI's renderers use
it through `bwsandbox.cli.safe` (which also escapes rich markup); emails use
it directly. Pure: no rich, no I/O.
"""

from __future__ import annotations

import unicodedata

# Format characters that reorder or hide text (Trojan Source, CVE-2021-42574):
# the bidi embeddings, overrides and isolates, and the line/paragraph separators.
_REORDERING = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unsafe(c: str) -> bool:
    if c.isprintable() and c not in _REORDERING:
        return False
    if c == " ":
        return False
    category = unicodedata.category(c)
    # Cc: C0, DEL, C1 (ESC, CSI, BEL...); Cs: a lone surrogate (a non-UTF-8
    # name decoded with surrogateescape); Zl/Zp: line and paragraph separators.
    return category in ("Cc", "Cs", "Zl", "Zp") or c in _REORDERING


def _escape(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep: str = "") -> str:
    """`text` with every control, surrogate and reordering character shown
    escaped; the characters in `keep` (say, "\\n" for a multi-line body) stay."""
    if text.isprintable() and not _REORDERING.intersection(text):
        return text  # the common case, without a loop
    return "".join(_escape(c) if c not in keep and _unsafe(c) else c for c in text)


def one_line(text: str) -> str:
    """`text` as one line of a log or a table cell: a newline shows as `\\n`."""
    return printable(text)
