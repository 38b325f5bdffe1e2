"""Email addresses (docs/production.md §3, §4): the identity email's rule, and
the syntax check that says precisely why an address is invalid (also used
for a tenant's Technical Contact).
"""

from __future__ import annotations

from collections.abc import Iterable

from bwsandbox.spec import messages
from bwsandbox.spec.fields import EMAIL_MAX
from bwsandbox.validator import ckinds
from bwsandbox.validator.batch import Batch, Post
from bwsandbox.validator.findings import finding, row_of
from bwsandbox.validator.model import Finding

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


def fast_column(index: int, identity: bool) -> ckinds.FastColumn:
    """How the C pass reads an email column: the identity email has its
    limit and may not be empty; a manager's address is only a key to hash.
    A cell the C pass cannot pass as EMAIL_FAST is judged by `check_email`."""
    if identity:
        return ckinds.column(index, ckinds.EMAIL, limit=EMAIL_MAX, required=True)
    return ckinds.column(index, ckinds.EMAIL)


def check_email(b: Batch, col: str) -> Post:
    """The identity email: required, at most EMAIL_MAX characters, valid syntax
    (docs/production.md §3, §4)."""
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
            elif len(value) > EMAIL_MAX:
                yield finding(
                    "EMAIL_TOO_LONG",
                    row,
                    f"The email address has {len(value)} characters; the limit is {EMAIL_MAX}.",
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
