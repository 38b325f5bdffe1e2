"""Value rules (docs/production.md §3 limits, docs/validation.md Excel damage).

Each rule is a vectorised polars mask over a whole column; only the flagged
rows come back to Python, where a precise per-value function writes the
message. Columns with few distinct values (dates, booleans) are classified
once per distinct value. The per-value functions are also the normalisers
ingest applies (`normalise`), so the report and the applied data cannot drift.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bwsandbox.spec import messages
from bwsandbox.spec.fields import BOOLEAN_FALSE, BOOLEAN_TRUE, EMAIL_MAX, Field, ValueType
from bwsandbox.spec.fields import trim as trim  # re-exported: the rules trim as normalise does
from bwsandbox.validator.findings import finding, row_of
from bwsandbox.validator.model import Finding

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

# Fast path: what nearly every real address looks like. A miss is not an
# error by itself: `email_problem` then decides, and says precisely why.
EMAIL_FAST = (
    r"^[A-Za-z0-9_%+'-]+(?:\.[A-Za-z0-9_%+'-]+)*@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$"
)
# EMAIL_FAST without capitals: a match is a valid address that is its own
# lower-cased key, so one regex pass serves the syntax check and the key.
EMAIL_PLAIN = EMAIL_FAST.replace("A-Za-z", "a-z").replace("A-Z", "a-z")
_LOCAL_SPECIALS = set("!#$%&'*+/=?^_`{|}~-.")
SCIENTIFIC = r"^[0-9](?:[.,][0-9]+)?[Ee]\+?[0-9]+$"
MOBILE = r"^\+?[0-9]{6,15}$"  # docs/production.md §3 engage: `+` and digits [decided: 6-15 digits, E.164]
_EXCEL_EPOCH = dt.date(1899, 12, 30)



def quoted_local(value: str) -> tuple[str, str] | None:
    """(local part, domain) of an address whose local part is an RFC 5322
    quoted string (`"a b"@example.com`, `"x@y"@example.com`), else None."""
    if not value.startswith('"'):
        return None
    i = 1
    while i < len(value):
        c = value[i]
        if c == "\\":
            if i + 1 >= len(value) or not (" " <= value[i + 1] <= "~"):
                return None
            i += 2
            continue
        if c == '"':
            break
        if not (" " <= c <= "~"):  # qtext: printable ASCII and space
            return None
        i += 1
    else:
        return None
    if i == 1 or i + 1 >= len(value) or value[i + 1] != "@":
        return None
    return value[: i + 1], value[i + 2 :]


def email_problem(value: str) -> str | None:
    """Why an address is invalid, in plain words; None if it is fine."""
    if value != value.strip():
        return "it starts or ends with a space"
    quoted = quoted_local(value)
    if quoted is not None:
        # docs/production.md §6 [decided]: valid (an EMAIL_QUOTED_LOCAL notice says it is
        # unusual); the domain is checked as any other.
        if len(quoted[0]) > 64:
            return "the part before the @ is longer than 64 characters"
        return _domain_problem(quoted[1])
    if any(c.isspace() for c in value):
        return "it contains a space"
    for sep in ",;":
        if sep in value:
            return f"it contains '{sep}'; put one address per cell"
    if "@" not in value:
        return "it has no @"
    if value.count("@") > 1:
        return "it has more than one @"
    local, domain = value.split("@")
    if not local:
        return "nothing before the @"
    if not domain:
        return "nothing after the @"
    if len(local) > 64:
        return "the part before the @ is longer than 64 characters"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "misplaced dot before the @"
    bad = sorted({c for c in local if not (c.isalnum() or c in _LOCAL_SPECIALS)})
    if bad:
        return f"character {bad[0]!r} is not allowed before the @"
    return _domain_problem(domain)


def _domain_problem(domain: str) -> str | None:
    if not domain:
        return "nothing after the @"
    if "." not in domain:
        return f"the domain '{domain}' has no dot (e.g. example.com)"
    labels = domain.split(".")
    if any(not label for label in labels):
        return f"the domain '{domain}' has an empty part"
    for label in labels:
        if label.startswith("-") or label.endswith("-"):
            return f"the domain part '{label}' starts or ends with a hyphen"
        bad = sorted({c for c in label if not (c.isalnum() or c == "-")})
        if bad:
            return f"character {bad[0]!r} is not allowed in the domain"
    tld = labels[-1]
    if not (tld.isalpha() and len(tld) >= 2) and not tld.lower().startswith("xn--"):
        return f"'{tld}' is not a top-level domain"
    return None


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
        prefer_gb = locale == "en-GB"
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
    return ("day first", "month first") if locale == "en-GB" else ("month first", "day first")


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


def read_bool(raw: str) -> str | None:
    """docs/production.md §3 `on_leave` [decided]: true/false, yes/no, 1/0, any case."""
    v = raw.strip().lower()
    if v in BOOLEAN_TRUE:
        return "true"
    if v in BOOLEAN_FALSE:
        return "false"
    return None


def normalise(spec: Field, raw: str, locale: str) -> str | None:
    """The value ingest applies; None means: do not apply this value."""
    raw = trim(raw)
    if raw == "" or not raw.strip():
        return None if spec.required else ""
    if spec.type is ValueType.DATE:
        return read_date(raw, locale).iso
    if spec.type is ValueType.BOOLEAN:
        return read_bool(raw)
    if spec.type is ValueType.ID:
        return raw.strip()[1:] if raw.strip().startswith("'") else raw.strip()
    if spec.type in (ValueType.EMAIL, ValueType.MOBILE):
        return raw.strip()
    return raw


# --- vectorised rules ----------------------------------------------------------
#
# A check registers its column expressions on a Batch and returns a `Post`
# closure. The engine evaluates every expression of every check in ONE polars
# `select` (polars runs them in parallel), then calls the closures, which
# fetch only the flagged rows to write their messages.

Post = Callable[[], Iterable[Finding]]


class Batch:
    """Column expressions evaluated together in one parallel polars pass."""

    def __init__(self, df: pl.DataFrame) -> None:
        self.df = df
        self._exprs: dict[str, pl.Expr] = {}
        self._out: pl.DataFrame | None = None

    def add(self, name: str, expr: pl.Expr) -> str:
        self._exprs[name] = expr
        return name

    def run(self) -> None:
        self._out = self.df.select([e.alias(n) for n, e in self._exprs.items()]) if self._exprs else None

    def array(self, name: str) -> np.ndarray[Any, Any]:
        assert self._out is not None, "Batch.run() first"
        out: np.ndarray[Any, Any] = self._out[name].to_numpy()
        return out

    def rows(self, name: str, col: str) -> list[tuple[int, str]]:
        import numpy as np

        return _rows_at(self.df, np.flatnonzero(self.array(name)), col)


def _rows_at(df: pl.DataFrame, positions: Any, col: str) -> list[tuple[int, str]]:
    if not len(positions):
        return []
    rows: list[tuple[int, str]] = df[positions].select("i", col).rows()
    return rows


def check_email(b: Batch, col: str) -> Post:
    """The identity email: required, ≤ 254 characters, valid syntax (docs/production.md §3, §4)."""
    import numpy as np
    import polars as pl

    c = pl.col(col)
    plain = email_plain(b, col)
    big = b.add(f"{col}:big", (c.str.len_bytes() > EMAIL_MAX).fill_null(False))
    flagged = c.is_not_null() & ((c.str.len_bytes() > EMAIL_MAX) | ~c.str.contains(EMAIL_FAST))

    def post() -> Iterable[Finding]:
        # Only rows that are not plain (or too long) can fail: the exact
        # expression runs again on those few.
        cand = b.df[np.flatnonzero(~b.array(plain) | b.array(big))]
        rows: list[tuple[int, str]] = cand.filter(flagged).select("i", col).rows()
        for i, value in rows:
            row = row_of(i)
            if not value.strip():
                yield finding("EMAIL_REQUIRED", row, messages.EMAIL_REQUIRED, column=col, value=value)
            elif len(value) > 254:
                yield finding(
                    "EMAIL_TOO_LONG",
                    row,
                    f"The email address has {len(value)} characters; the limit is 254.",
                    column=col,
                    value=value,
                )
            else:
                problem = email_problem(value)
                if problem:
                    yield finding(
                        "EMAIL_INVALID", row, f"Invalid email address: {problem}.", column=col, value=value
                    )
                elif quoted_local(value) is not None:
                    yield finding(
                        "EMAIL_QUOTED_LOCAL", row,
                        "The part before the @ is a quoted string: valid by RFC 5322, but unusual, and many "
                        "systems (mail servers, SSO) refuse it. Production does not document it; accepting "
                        "it is the sandbox's rule.", column=col, value=value,
                    )  # fmt: skip

    return post


def email_plain(b: Batch, col: str) -> str:
    """Register (once) the fast-path flag of an email column: a plain lower-case address."""
    import polars as pl

    return b.add(f"{col}:plain", pl.col(col).str.contains(EMAIL_PLAIN).fill_null(False))


def check_length(b: Batch, spec: Field) -> Post:
    import polars as pl

    limit = spec.max_length or 0
    # Bytes >= characters: a cheap over-approximation, made exact on the few flagged rows.
    name = b.add(f"{spec.name}:length", pl.col(spec.name).str.len_bytes() > limit)

    def post() -> Iterable[Finding]:
        for i, value in b.rows(name, spec.name):
            if len(value) > limit:
                yield finding(
                    "VALUE_TOO_LONG",
                    row_of(i),
                    f"{spec.name} has {len(value)} characters; the limit is {limit}.",
                    column=spec.name,
                    value=value,
                )

    return post


def _by_value(
    b: Batch, name: str, col: str, verdict: Callable[[str], tuple[str, str] | None]
) -> Iterable[Finding]:
    """Rows flagged by `name`, judged once per distinct value."""
    rows = b.rows(name, col)
    cache: dict[str, tuple[str, str] | None] = {}
    for i, value in rows:
        if value not in cache:
            cache[value] = verdict(value) if value.strip() else None
        got = cache[value]
        if got:
            yield finding(got[0], row_of(i), got[1], column=col, value=value)


def check_date(b: Batch, col: str, locale: str) -> Post:
    import polars as pl

    name = b.add(f"{col}:date", pl.col(col).str.len_bytes() > 0)

    def verdict(value: str) -> tuple[str, str] | None:
        reading = read_date(value, locale)
        return (reading.code, reading.message) if reading.code else None

    return lambda: _by_value(b, name, col, verdict)


_COMMON_BOOLEANS = sorted(
    {
        "",
        *BOOLEAN_TRUE,
        *BOOLEAN_FALSE,
        *(v.upper() for v in BOOLEAN_TRUE | BOOLEAN_FALSE),
        *(v.title() for v in BOOLEAN_TRUE | BOOLEAN_FALSE),
    }
)


def check_bool(b: Batch, col: str) -> Post:
    import polars as pl

    name = b.add(f"{col}:bool", pl.col(col).is_not_null() & ~pl.col(col).is_in(_COMMON_BOOLEANS))

    def verdict(value: str) -> tuple[str, str] | None:
        if read_bool(value) is not None:
            return None
        return (
            "BOOLEAN_INVALID",
            f'"{value}" is not a yes/no value; use true/false, yes/no or 1/0. It is not applied.',
        )

    return lambda: _by_value(b, name, col, verdict)


def check_mobile(b: Batch, col: str) -> Post:
    import polars as pl

    c = pl.col(col)
    mask = c.is_not_null() & (c.str.strip_chars() != "") & ~c.str.strip_chars().str.contains(MOBILE)
    name = b.add(f"{col}:mobile", mask)

    def post() -> Iterable[Finding]:
        for i, value in b.rows(name, col):
            yield finding(
                "MOBILE_INVALID",
                row_of(i),
                f'"{value}" is not a mobile number: use + and digits only, e.g. +15551234567. '
                "It is not applied.",
                column=col,
                value=value,
            )

    return post


@dataclass(slots=True)
class IdFlags:
    """Per-row facts of an id column, kept to judge lost zeros over the whole file."""

    numeric: np.ndarray[Any, Any]
    padded: np.ndarray[Any, Any]
    size: np.ndarray[Any, Any]


def check_id(b: Batch, col: str) -> tuple[Post, IdFlags]:
    """Excel damage in an id column (docs/validation.md): apostrophe, 1.23E+13 (row-local);
    the flags for `leading_zeros` (file-wide) are filled when the batch has run."""
    import numpy as np
    import polars as pl

    c = pl.col(col)
    apostrophe = b.add(f"{col}:apostrophe", c.str.starts_with("'"))
    numeric = b.add(f"{col}:numeric", c.str.contains(r"^'?[0-9]+$"))
    zero = b.add(f"{col}:zero", c.str.starts_with("0") | c.str.starts_with("'0"))
    length = b.add(f"{col}:length", c.str.len_bytes())
    empty = np.zeros(0, dtype=bool)
    flags = IdFlags(numeric=empty, padded=empty, size=empty)

    def post() -> Iterable[Finding]:
        df = b.df
        for i, value in b.rows(apostrophe, col):
            yield finding(
                "EMPLOYEE_ID_APOSTROPHE",
                row_of(i),
                f'The leading apostrophe of "{value}" (Excel\'s text marker) is stripped.',
                column=col,
                value=value,
            )
        is_numeric = b.array(numeric)
        odd = np.flatnonzero(~is_numeric & df[col].is_not_null().to_numpy())
        for i, value in _rows_at(df, odd, col):
            if re.match(SCIENTIFIC, value.strip()):
                yield finding(
                    "EXCEL_SCIENTIFIC",
                    row_of(i),
                    f'"{value}" looks like a number Excel turned into scientific notation; the real id '
                    "is lost. Format the column as text and export again.",
                    column=col,
                    value=value,
                )
        flags.numeric = is_numeric
        flags.padded = is_numeric & b.array(zero)
        flags.size = (b.array(length).astype(np.int32) - b.array(apostrophe)).astype(np.int32)

    return post, flags


def leading_zeros(
    fetch: Callable[[str, Any], list[str]],
    rec: np.ndarray[Any, Any],
    col: str,
    numeric: np.ndarray[Any, Any],
    padded: np.ndarray[Any, Any],
    size: np.ndarray[Any, Any],
) -> list[Finding]:
    """Ids shorter than the zero-padded norm of their column (docs/validation.md)."""
    import numpy as np

    n_padded = int(padded.sum())
    # Only when zero-padding is the column's norm (half its numeric ids or more).
    if not n_padded or n_padded * 2 < int(numeric.sum()):
        return []
    width = int(np.bincount(size[padded]).argmax())
    short = np.flatnonzero(numeric & ~padded & (size < width)).tolist()
    return [
        finding(
            "LEADING_ZEROS_LOST",
            row_of(int(rec[p])),
            f'"{value}" is shorter than the other ids, which are zero-padded to {width} digits; '
            "Excel may have dropped its leading zeros.",
            column=col,
            value=value,
        )
        for p, value in zip(short, fetch(col, short), strict=True)
    ]
