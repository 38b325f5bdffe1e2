"""Date values (docs/production.md §3): mm/dd/yyyy, yyyy/mm/dd, dd/mm/yyyy,
the tenant's locale settling day and month; ISO dates and Excel serial
numbers are named as such. `read_date` is also what ingest applies
(`values.normaliser`), so the report and the applied date cannot drift.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

from bwsandbox.validator import ckinds
from bwsandbox.validator.batch import Batch, Post, by_value

_EXCEL_EPOCH = dt.date(1899, 12, 30)


@dataclass(frozen=True, slots=True)
class DateReading:
    iso: str | None  # None: not a usable date
    code: str | None = None  # finding code, if any
    message: str = ""


_SLASH = re.compile(r"^(\d{1,4})/(\d{1,2})/(\d{1,4})$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_SERIAL = re.compile(r"^\d{4,5}(?:\.0+)?$")


def _mk(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def day_first(locale: str) -> bool:
    """Whether the tenant's locale reads d/d/yyyy day first (en-GB), not month first."""
    return locale == "en-GB"


@lru_cache(maxsize=65536)
def read_date(raw: str, locale: str) -> DateReading:
    """docs/production.md §3: mm/dd/yyyy, yyyy/mm/dd, dd/mm/yyyy; the locale settles day/month."""
    value = raw.strip()
    m = _SLASH.match(value)
    if m:
        a, b, c = m.groups()
        if len(a) == 4 and len(c) <= 2:
            date = _mk(int(a), int(b), int(c))
            return _ok_or_impossible(date, value)
        if len(c) != 4 or len(a) > 2:
            return DateReading(
                None,
                "DATE_INVALID",
                f'"{value}" is not a date: use a four-digit year (mm/dd/yyyy, yyyy/mm/dd or dd/mm/yyyy).',
            )
        first, second, year = int(a), int(b), int(c)
        us = _mk(year, first, second)
        gb = _mk(year, second, first)
        prefer_gb = day_first(locale)
        chosen = (gb or us) if prefer_gb else (us or gb)
        if chosen is None:
            return _ok_or_impossible(None, value)
        if us and gb and us != gb:
            fmt = "dd/mm/yyyy" if prefer_gb else "mm/dd/yyyy"
            return DateReading(
                chosen.isoformat(),
                "DATE_AMBIGUOUS",
                f'"{value}" could be day/month or month/day; read as {fmt} (tenant locale '
                f"{locale}): {chosen.isoformat()}.",
            )
        if (gb if prefer_gb else us) is None:
            # docs/production.md §6 [decided]: a date that reads only in the other order
            # (13/01/2025 in a month-first tenant) is read that one way.
            return DateReading(chosen.isoformat(), "DATE_OTHER_ORDER", other_order(value, chosen, locale))
        return DateReading(chosen.isoformat())
    m = _ISO.match(value)
    if m:
        date = _mk(int(m[1]), int(m[2]), int(m[3]))
        if date is None:
            return _ok_or_impossible(None, value)
        return DateReading(
            date.isoformat(),
            "DATE_ISO",
            f'"{value}" is an ISO date, which production does not document; the sandbox '
            "accepts it. Prefer mm/dd/yyyy or yyyy/mm/dd.",
        )
    if _SERIAL.match(value):
        serial = int(float(value))
        guess = _EXCEL_EPOCH + dt.timedelta(days=serial)
        return DateReading(
            None,
            "DATE_EXCEL_SERIAL",
            f'"{value}" is an Excel serial number (it would be {guess:%m/%d/%Y}), not a '
            "date; format the column as a date before saving the CSV.",
        )
    return DateReading(
        None, "DATE_INVALID", f'"{value}" is not a date; use mm/dd/yyyy, yyyy/mm/dd or dd/mm/yyyy.'
    )


ORDER_RULE = ("Production does not document this case; reading a date the one way it can be read is "
              "the sandbox's rule.")


def _order_words(locale: str) -> tuple[str, str]:
    """(the tenant's order, the other one) in words."""
    return ("day first", "month first") if day_first(locale) else ("month first", "day first")


def other_order(value: str, date: dt.date, locale: str) -> str:
    own, other = _order_words(locale)
    return (f'"{value}" can only be read {other}: {date.day} {date:%B %Y} ({date.isoformat()}); this '
            f"tenant reads dates {own} ({locale}). {ORDER_RULE}")


def mixed_orders(value: str, date: str, locale: str, ambiguous_row: int, ambiguous: str) -> str:
    own, other = _order_words(locale)
    return (f'"{value}" can only be read {other} ({date}), but this column also holds dates that read '
            f'either way (row {ambiguous_row}: "{ambiguous}"), which are read {own} for this tenant '
            f"({locale}): the file mixes conventions, so check those. {ORDER_RULE}")


def _ok_or_impossible(date: dt.date | None, value: str) -> DateReading:
    if date is None:
        return DateReading(None, "DATE_IMPOSSIBLE", f'"{value}" is not a real calendar date.')
    return DateReading(date.isoformat())


def fast_column(index: int, locale: str) -> ckinds.FastColumn:
    """How the C pass reads a date column: dates in the tenant's order pass;
    anything else (ISO, the other order, a serial...) goes to `check_date`."""
    return ckinds.column(index, ckinds.DATE_GB if day_first(locale) else ckinds.DATE_US)


def check_date(b: Batch, col: str, locale: str) -> Post:
    import polars as pl

    name = b.add(f"{col}:date", pl.col(col).str.len_bytes() > 0)

    def verdict(value: str) -> tuple[str, str] | None:
        reading = read_date(value, locale)
        return (reading.code, reading.message) if reading.code else None

    return lambda: by_value(b, name, col, verdict)
