"""The core and engage templates (docs/production.md §3) and the alias table for did-you-mean.

Every rule here mimics production; the tag after each rule says whose it is:
[doc] vendor documented, [decided] the sandbox's own rule (a "sandbox rule" in
docs/production.md).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass


class Profile(enum.StrEnum):
    """docs/production.md §1: two products with different rules."""

    CORE = "core"
    ENGAGE = "engage"


def identity_by_employee_id(profile: Profile, columns: Iterable[str]) -> bool:
    """docs/production.md §3: with both `employee_id` and `manager_id` columns, a core file
    identifies its users by employee id, not by email."""
    return profile is Profile.CORE and {"employee_id", "manager_id"} <= set(columns)


class Kind(enum.StrEnum):
    """What a file holds. Department files are recognised by header (docs/production.md §3)."""

    USERS = "users"
    DEPARTMENTS = "departments"


class ValueType(enum.StrEnum):
    TEXT = "text"
    EMAIL = "email"
    DATE = "date"
    BOOLEAN = "boolean"
    ID = "id"
    MOBILE = "mobile"


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    name: str
    type: ValueType = ValueType.TEXT
    required: bool = False  # required to create a user
    max_length: int | None = None


# An email address's limit, for every email field (docs/production.md §3 [doc]).
EMAIL_MAX = 254

# docs/production.md §3, core profile user file.
CORE_FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field(name="email", type=ValueType.EMAIL, required=True, max_length=EMAIL_MAX),  # [doc]
        Field(name="first_name", required=True, max_length=254),  # [doc]
        Field(name="last_name", required=True, max_length=150),  # [doc]
        Field(name="employee_id", type=ValueType.ID),
        Field(name="manager_email", type=ValueType.EMAIL, max_length=EMAIL_MAX),
        Field(name="manager_id", type=ValueType.ID),
        Field(name="department_name"),
        Field(name="title"),
        Field(name="location"),
        Field(name="preferred_name"),
        Field(name="phone"),
        Field(name="on_leave", type=ValueType.BOOLEAN),
        Field(name="deactivation_date", type=ValueType.DATE),
        *(Field(name=f"custom_0{i}") for i in range(1, 6)),  # legacy custom fields [doc]
    )
}

# docs/production.md §3, engage profile file: headers case-sensitive, only email required.
ENGAGE_FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field(name="email", type=ValueType.EMAIL, required=True, max_length=EMAIL_MAX),
        Field(name="first_name", max_length=254),
        Field(name="last_name", max_length=150),
        Field(name="employee_id", type=ValueType.ID),  # immutable once set [doc]
        Field(name="mobile", type=ValueType.MOBILE),  # `+` and digits [doc]
        Field(name="locale"),
        Field(name="manager_email", type=ValueType.EMAIL, max_length=EMAIL_MAX),
    )
}

# docs/production.md §3 department file [doc].
DEPARTMENT_FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field(name="name", required=True),
        Field(name="parent"),
        Field(name="is_active", type=ValueType.BOOLEAN),
    )
}

# The names a new core user needs: read by the validator and the apply layer from here.
NEW_USER_NAMES = tuple(f.name for f in CORE_FIELDS.values() if f.required and f.name != "email")

OPTIONAL_CLEARABLE = frozenset(
    name for name, f in CORE_FIELDS.items() if not f.required
)

# Custom keys: `[a-z0-9_]` only, and only if the tenant defined them [doc].
CUSTOM_KEY_RE = re.compile(r"^[a-z0-9_]+$")
# Engage dimension keys are case-sensitive and may hold capitals; the
# [a-z0-9_] rule is for core custom keys only (docs/production.md §3 [decided]).
DIMENSION_KEY_RE = re.compile(r"^[A-Za-z0-9_]+$")


def custom_key_problem(key: object, profile: Profile = Profile.CORE) -> str | None:
    """Why `key` cannot be a tenant's custom key (docs/production.md §3: [a-z0-9_] only; an
    engage dimension key may hold capitals, docs/production.md §3), or None."""
    if profile is Profile.ENGAGE:
        if isinstance(key, str) and DIMENSION_KEY_RE.match(key):
            return None
        return f"invalid dimension key {key!r}: use letters, digits and _ only"
    if isinstance(key, str) and CUSTOM_KEY_RE.match(key):
        return None
    hint = " (capitals are for engage dimension keys only)" if isinstance(key, str) and \
        DIMENSION_KEY_RE.match(key) else ""
    return f"invalid custom key {key!r}: use lowercase letters, digits and _ only{hint}"

# docs/production.md §1 core file names: "any unique name, with the date in it; .csv or
# .json" [doc]. A date as yyyymmdd / yyyy-mm-dd / dd-mm-yyyy (any of - _ .).
DATE_IN_NAME = re.compile(
    r"(?<!\d)(?:(?:19|20)\d{2}[-_.]?(?:0[1-9]|1[0-2])[-_.]?(?:0[1-9]|[12]\d|3[01])"
    r"|(?:0[1-9]|[12]\d|3[01])[-_.]?(?:0[1-9]|1[0-2])[-_.]?(?:19|20)\d{2})"
)
FEED_SUFFIXES = (".csv", ".json")

# docs/production.md §6 [decided]: leading and trailing spaces around a value (or a header)
# are trimmed, with a warning, since production's handling is undocumented.
# Spaces are the tab and Unicode's space separators (no-break space
# included); a line break inside a quoted value is the value's own. The
# validator's C fast path (`_cells.c`, edge_space) knows exactly these.
SPACES = "\t \u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u202f\u205f\u3000"


def trim(value: str) -> str:
    """A value without the spaces around it (SPACES)."""
    return value.strip(SPACES)


# Tenant locales: they settle ambiguous dates (docs/production.md §3).
LOCALES = ("en-US", "en-GB")

# docs/production.md §3 `on_leave` [decided]: true/false, yes/no, 1/0, any case.
BOOLEAN_TRUE = frozenset({"true", "yes", "1"})
BOOLEAN_FALSE = frozenset({"false", "no", "0"})

# docs/validation.md: renamed or misspelt headers integrators send. Checked before any
# fuzzy matching, so the hint is the one a human would give. Keys are
# normalised: lower case, with spaces, dashes and dots removed.
HEADER_ALIASES: dict[str, str] = {
    "firstname": "first_name",
    "first": "first_name",
    "givenname": "first_name",
    "forename": "first_name",
    "lastname": "last_name",
    "last": "last_name",
    "surname": "last_name",
    "familyname": "last_name",
    "email": "email",
    "emailaddress": "email",
    "mail": "email",
    "workemail": "email",
    "businessemail": "email",
    "primaryemail": "email",
    "employeeid": "employee_id",
    "employeenumber": "employee_id",
    "empid": "employee_id",
    "workerid": "employee_id",
    "managerid": "manager_id",
    "supervisorid": "manager_id",
    "manageremail": "manager_email",
    "supervisoremail": "manager_email",
    "reportsto": "manager_email",
    "manager": "manager_email",
    "department": "department_name",
    "dept": "department_name",
    "departmentname": "department_name",
    "jobtitle": "title",
    "position": "title",
    "office": "location",
    "worklocation": "location",
    "nickname": "preferred_name",
    "preferredname": "preferred_name",
    "phonenumber": "phone",
    "mobile": "phone",
    "onleave": "on_leave",
    "leave": "on_leave",
    "terminationdate": "deactivation_date",
    "enddate": "deactivation_date",
    "deactivationdate": "deactivation_date",
    "termdate": "deactivation_date",
}

# Headers that look like a field but have no Betterworks column at all:
# the hint says so instead of guessing a wrong target.
HEADER_NO_TARGET: dict[str, str] = {
    "hiredate": "Betterworks has no hire date column; remove it or define a custom key",
    "startdate": "Betterworks has no start date column; remove it or define a custom key",
}


def normalise_header(name: str) -> str:
    """Alias-table key for a header: case and separators do not matter."""
    return re.sub(r"[\s_\-.]", "", name).lower()
