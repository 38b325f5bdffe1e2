"""The one way the CLI shows text it did not write (security audit).

File names, cell values, email subjects and the messages that quote them
are the tenant's text. Every renderer of the CLI (the validate and report
layouts, `files`, `directory`, `emails`, `serve`'s live view and log lines)
passes them through here:

- control characters, lone surrogates and text-reordering characters are
  shown escaped (`\\x1b`, `\\n`, `\\u202e`: `bwsandbox.textsafe`), so an escape
  sequence never drives the terminal and a newline never forges a log line;
- rich markup is escaped where a string would be parsed as markup, so
  `[bold]` or `[link=…]` in a name is shown as written.
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from bwsandbox.textsafe import one_line, printable


def plain(value: object) -> str:
    """One line of plain text (a log line, a JSON-free listing); None is ""."""
    return "" if value is None else one_line(str(value))


def markup(value: object) -> str:
    """`plain(value)` to embed in a rich markup string."""
    return escape(plain(value))


def text(value: object, style: str = "") -> Text:
    """`plain(value)` as a rich Text (never parsed as markup)."""
    return Text(plain(value), style=style)


def lines(value: object, style: str = "") -> Text:
    """A multi-line text (an email body): its own newlines stay, every other
    control character is escaped."""
    return Text(printable("" if value is None else str(value), keep="\n"), style=style)
