"""Tenants: one Betterworks customer each, stored in the SQLite store.

A tenant lives in one region (`us` or `eu`, docs/production.md §2: each endpoint has its own
tenants), has one profile (docs/production.md §1), one password issued by "support" (stored
hashed with scrypt), optional authorized public keys, the one Technical
Contact address errors go to (docs/production.md §5), a licence count, a locale that settles
ambiguous dates, and the custom keys it defined (docs/production.md §3).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import os
import sqlite3
import unicodedata
from dataclasses import dataclass

from bwsandbox import store
from bwsandbox.errors import UsageError
from bwsandbox.spec.fields import LOCALES, Profile, custom_key_problem
from bwsandbox.textsafe import one_line


class Region(enum.StrEnum):
    US = "us"
    EU = "eu"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    name: str
    region: Region
    profile: Profile
    username: str
    password_hash: str
    authorized_keys: str = ""
    contact: str = ""
    licenses: int = 1000
    locale: str = "en-US"
    custom_keys: frozenset[str] = frozenset()

    def check_password(self, password: str) -> bool:
        return verify_password(password, self.password_hash)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "region": str(self.region),
            "profile": str(self.profile),
            "username": self.username,
            "contact": self.contact,
            "licenses": self.licenses,
            "locale": self.locale,
            "custom_keys": sorted(self.custom_keys),
        }


# scrypt at OWASP's minimum for password storage (Password Storage Cheat
# Sheet), in the low-memory form the cheat sheet lists as equal in strength:
# N = 2^14, r = 8, p = 5 (16 MiB per hash, ~0.2 s here) instead of N = 2^17,
# r = 8, p = 1 (128 MiB, ~0.4 s). The sandbox runs inside integrators' processes and
# CI runners, where two logins at once held 256 MiB of the serving process's
# peak (docs/benchmarks.md "Ingest at scale"). The parameters are stored with
# each hash, so hashes made with other ones (N = 2^17 p = 1, or the first
# format's N = 2^14 p = 1, stored as "scrypt$SALT$DIGEST") still verify.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 5
_SCRYPT_MAXMEM = 256 * 1024 * 1024  # 128 * r * N bytes for any N a stored hash may name (up to 2^17)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=_SCRYPT_MAXMEM, dklen=32)
    params = f"ln={SCRYPT_N.bit_length() - 1},r={SCRYPT_R},p={SCRYPT_P}"
    return f"scrypt${params}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    """(n, r, p, salt, digest) of a stored hash, or None if it is not one."""
    parts = stored.split("$")
    try:
        if len(parts) == 3 and parts[0] == "scrypt":  # the first format: N = 2^14, r = 8, p = 1
            return 2**14, 8, 1, base64.b64decode(parts[1]), base64.b64decode(parts[2])
        if len(parts) == 4 and parts[0] == "scrypt":
            params = dict(item.split("=", 1) for item in parts[1].split(","))
            n, r, p = 2 ** int(params["ln"]), int(params["r"]), int(params["p"])
            if not (10 <= n.bit_length() - 1 <= 17 and 1 <= r <= 16 and 1 <= p <= 16 and n * r * p <= 2**21):
                return None  # never spend unbounded time or memory on a stored string
            return n, r, p, base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except (KeyError, ValueError):
        return None
    return None


def verify_password(password: str, stored: str) -> bool:
    parsed = _parse(stored)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32)
    return hmac.compare_digest(digest, expected)


def _from_row(row: sqlite3.Row) -> Tenant:
    return Tenant(
        name=row["name"],
        region=Region(row["region"]),
        profile=Profile(row["profile"]),
        username=row["username"],
        password_hash=row["password_hash"],
        authorized_keys=row["authorized_keys"],
        contact=row["contact"],
        licenses=int(row["licenses"]),
        locale=row["locale"],
        custom_keys=frozenset(json.loads(row["custom_keys"])),
    )


# A tenant's name is a folder name on disk (layout.tenant_home, the pickup
# spool and quarantine) and part of file names (notify's outbox writes
# `.NNNNNN-<name>.eml.tmp`: up to 29 bytes more with a 19-digit id). One file
# name holds 255 bytes (layout.NAME_MAX), so a name must be counted in bytes,
# not characters ("😀" is 4 bytes); 100 leaves room for any such prefix or
# suffix and is the limit the API always had for ASCII names.
MAX_NAME_BYTES = 100

# The name also goes into email headers (notify's X-Bwsandbox-Tenant), log
# lines, outbox file names and the terminal, none of which can hold every
# character: a CR or LF forges a header or a line, ESC or BEL drives a
# terminal (Cc); bidi overrides and zero-width characters reorder or hide text,
# so two names that differ read the same (Cf, CVE-2021-42574); U+2028/U+2029
# break a line in many viewers (Zl, Zp). A name is an identifier, not prose: it
# loses nothing by refusing them all, Cf's ZWJ/ZWNJ included (emoji sequences,
# some Persian and Indic spellings), rather than judging which are harmless.
_REFUSED_CATEGORIES = {"Cc": "a control character", "Cf": "an invisible format character",
                       "Zl": "a line separator", "Zp": "a paragraph separator"}


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a tenant's name, or None: the one rule the CLI,
    the API and declared tenants share."""
    if not name:
        return "the tenant name cannot be empty"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return f"the tenant name {name!r} is not valid UTF-8 text"
    if size > MAX_NAME_BYTES:
        return (f"the tenant name is {size} bytes in UTF-8 ({len(name)} characters); the limit is "
                f"{MAX_NAME_BYTES} bytes, because the name is a folder name on disk")
    if "/" in name or "\0" in name or name.startswith("."):
        return f"invalid tenant name {name!r}: it names a folder, so no '/', no NUL and no leading '.'"
    for position, c in enumerate(name, 1):
        if (kind := _REFUSED_CATEGORIES.get(unicodedata.category(c))) is not None:
            return (f"invalid tenant name {name!r}: character {position} is U+{ord(c):04X}, {kind}; "
                    "a name goes into email headers, file names and terminals, so no control, "
                    "format or line-separator characters")
    return None


def add(
    conn: sqlite3.Connection,
    *,
    name: str,
    username: str,
    password: str,
    region: Region = Region.US,
    profile: Profile = Profile.CORE,
    licenses: int = 1000,
    contact: str = "",
    locale: str = "en-US",
    custom_keys: frozenset[str] = frozenset(),
    authorized_keys: str = "",
    created_at: str,
    password_hash: str | None = None,
) -> Tenant:
    """A new tenant. `password_hash`: `hash_password(password)` made earlier
    (it costs ~0.2 s), for a caller that reuses one password."""
    if (problem := name_problem(name)) is not None:
        raise UsageError(problem)
    if locale not in LOCALES:
        raise UsageError(f"locale must be one of {', '.join(LOCALES)}, not {locale!r}")
    if licenses < 0:
        raise UsageError("licences cannot be negative")
    if licenses > store.INT_MAX:
        raise UsageError(f"licences too large: {licenses}")
    if not username:
        raise UsageError("the username cannot be empty")
    if not password:
        raise UsageError("the password cannot be empty")
    from bwsandbox.validator.emails import email_problem  # the validator, loaded when used

    if contact and (problem := email_problem(contact)) is not None:
        raise UsageError(f"the contact {contact!r} is not an email address: {problem}")
    for key in custom_keys:
        if (problem := custom_key_problem(key, profile)) is not None:
            raise UsageError(problem)
    _check_authorized_keys(authorized_keys)
    if get(conn, name) is not None:
        raise UsageError(f"tenant {name!r} already exists")
    if by_username(conn, region, username) is not None:
        raise UsageError(f"username {username!r} is already used in region {region}")
    conn.execute(
        "INSERT INTO tenants (name, region, profile, username, password_hash, authorized_keys,"
        " contact, licenses, locale, custom_keys, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            name,
            str(region),
            str(profile),
            username,
            password_hash or hash_password(password),
            authorized_keys,
            contact,
            licenses,
            locale,
            json.dumps(sorted(custom_keys)),
            created_at,
        ),
    )
    tenant = get(conn, name)
    assert tenant is not None
    return tenant


def _check_authorized_keys(text: str) -> None:
    """Each line must be a public key the server can match (server/auth.py
    skips a bad line silently, so a typo would only show as a refused login)."""
    from bwsandbox.sshlib import asyncssh
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            asyncssh.import_public_key(line)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise UsageError(f"authorized key {number} is not an OpenSSH public key: {exc}") from exc


def get(conn: sqlite3.Connection, name: str) -> Tenant | None:
    row = conn.execute("SELECT * FROM tenants WHERE name = ?", (name,)).fetchone()
    return _from_row(row) if row else None


# The messages below list stored names through one_line: a name stored before
# name_problem refused control characters must not drive the reader's terminal.
def require(conn: sqlite3.Connection, name: str) -> Tenant:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # command-line bytes that were not UTF-8 (surrogateescape)
        raise UsageError(f"the tenant name {name!r} is not valid UTF-8 text") from None
    tenant = get(conn, name)
    if tenant is None:
        known = ", ".join(one_line(t.name) for t in all_tenants(conn)) or "none"
        raise UsageError(f"no tenant named {name!r} (tenants: {known})")
    return tenant


def require_or_only(conn: sqlite3.Connection, name: str | None) -> Tenant:
    """The tenant named, or, with no name, the sandbox's only tenant (a
    command needs `--tenant` only when there is a choice)."""
    if name is not None:
        return require(conn, name)
    every = all_tenants(conn)
    if len(every) == 1:
        return every[0]
    if not every:
        raise UsageError("this sandbox has no tenant yet (`bwsandbox tenant add`, or `bwsandbox serve`)")
    raise UsageError(f"this sandbox has {len(every)} tenants ({', '.join(one_line(t.name) for t in every)}): "
                     "say which with --tenant NAME")


def by_username(conn: sqlite3.Connection, region: Region, username: str) -> Tenant | None:
    row = conn.execute(
        "SELECT * FROM tenants WHERE region = ? AND username = ?", (str(region), username)
    ).fetchone()
    return _from_row(row) if row else None


def all_tenants(conn: sqlite3.Connection) -> list[Tenant]:
    return [_from_row(r) for r in conn.execute("SELECT * FROM tenants ORDER BY region, name")]
