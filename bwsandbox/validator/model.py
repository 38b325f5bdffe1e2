"""The validator's records: its input context and its output report.

These are contracts: `Report.to_dict()` is the JSON every later part and
users' scripts read (docs/validation.md); `ApplicableRow` is what
ingest applies. Records are frozen; dict/JSON conversion happens at the edge.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bwsandbox.spec.codes import CATALOGUE, Scope, Severity
from bwsandbox.spec.fields import LOCALES, Kind, Profile, custom_key_problem


class Verdict(enum.StrEnum):
    ACCEPTED = "accepted"  # no error
    PARTIAL = "partial"  # some error, something applies
    REJECTED = "rejected"  # nothing in the file can be applied


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    code: str
    severity: Severity
    row: int | None  # spreadsheet row: header = 1, first record = 2; None = whole file
    column: str | None
    value: str | None
    message: str

    @property
    def scope(self) -> Scope:
        return CATALOGUE[self.code].scope

    def sort_key(self) -> tuple[int, int, str, str, str, str]:
        # File-level findings first, then by row; deterministic within a row.
        return (
            0 if self.row is None else 1,
            self.row or 0,
            self.column or "",
            self.code,
            self.value or "",
            self.message,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ExistingUser:
    """A user already in the directory, as the validator needs to know it."""

    email: str
    employee_id: str | None = None
    manager_email: str | None = None
    department_name: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectorySnapshot:
    users: tuple[ExistingUser, ...] = ()
    departments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds on what one feed may cost (docs/security.md "Limits"); the
    server passes its settings of the same names, the defaults are theirs."""

    max_columns: int = 1000  # header cells; more: TOO_MANY_COLUMNS, nothing else is read
    max_json_bytes: int = 128 * 1024**2  # a JSON feed over it: JSON_TOO_LARGE, never parsed

    @classmethod
    def from_dict(cls, doc: object) -> Limits:
        if not isinstance(doc, Mapping) or set(doc) - {"max_columns", "max_json_bytes"}:
            raise ValueError("limits must be an object with max_columns and/or max_json_bytes")
        for key, value in doc.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limits.{key} must be a whole number ≥ 1, not {value!r}")
        return cls(**doc)


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    profile: Profile = Profile.CORE
    locale: str = "en-US"  # en-US or en-GB settles ambiguous dates (docs/production.md §3)
    custom_keys: frozenset[str] = frozenset()
    directory: DirectorySnapshot | None = None
    today: dt.date | None = None
    licenses_available: int | None = None  # None: no licence check
    # Engage: the share of active users a file may terminate (docs/production.md §5 safety
    # net, `engage_termination_limit`). None: terminations are not predicted
    # (an upload's apply reports them, with the same words).
    engage_termination_limit: float | None = 0.20
    limits: Limits = Limits()

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Context:
        """A context from JSON-like data (fixture sidecars, `validate --context`).

        Keys: profile, locale, custom_keys, licenses_available, today (ISO),
        engage_termination_limit (0-1), directory: {users: [{email,
        employee_id, manager_email, department_name, active}], departments:
        [names]}, limits: {max_columns, max_json_bytes}. Unknown keys are an
        error, so a typo is never silently ignored.
        """
        known = {"profile", "locale", "custom_keys", "licenses_available", "today", "directory",
                 "engage_termination_limit", "limits"}
        if not isinstance(doc, Mapping):
            raise ValueError("the context must be a JSON object")
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"unknown context key(s): {', '.join(unknown)}")
        directory = None
        if doc.get("directory") is not None:
            d = doc["directory"]
            if not isinstance(d, Mapping) or set(d) - {"users", "departments"}:
                raise ValueError("directory must be an object with 'users' and 'departments'")
            directory = DirectorySnapshot(
                users=tuple(_existing_user(u) for u in _list(d, "users", "directory.users")),
                departments=tuple(_str(x, "directory.departments[]") for x in _list(d, "departments",
                                                                                 "directory.departments")),
            )
        locale = _str(doc.get("locale", "en-US"), "locale")
        if locale not in LOCALES:
            raise ValueError(f"locale must be one of {', '.join(LOCALES)}, not {locale!r}")
        keys = _list(doc, "custom_keys", "custom_keys")
        profile_name = doc.get("profile", "core")
        for key in keys:
            if (problem := custom_key_problem(key, Profile(profile_name) if profile_name in set(Profile)
                                               else Profile.CORE)) is not None:
                raise ValueError(problem)
        licences = doc.get("licenses_available")
        if licences is not None and (
            isinstance(licences, bool) or not isinstance(licences, int) or licences < 0
        ):
            raise ValueError(f"licenses_available must be a whole number ≥ 0, not {licences!r}")
        today = doc.get("today")
        limit = doc.get("engage_termination_limit", 0.20)
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 <= limit <= 1:
            raise ValueError(f"engage_termination_limit must be a share of users from 0 to 1, not {limit!r}")
        profile = _str(doc.get("profile", "core"), "profile")
        if profile not in {str(p) for p in Profile}:
            raise ValueError(f"profile must be core or engage, not {profile!r}")
        return cls(
            profile=Profile(profile),
            locale=locale,
            custom_keys=frozenset(keys),
            directory=directory,
            today=dt.date.fromisoformat(_str(today, "today")) if today else None,
            licenses_available=licences,
            engage_termination_limit=float(limit),
            limits=Limits.from_dict(doc["limits"]) if "limits" in doc else Limits(),
        )


def is_text(value: str) -> bool:
    """No lone surrogate: JSON's "\ud800", or command-line bytes that were not UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {value!r}")
    if not is_text(value):
        raise ValueError(f"{what} is not valid Unicode text: {value!r}")
    return value


def _list(doc: Mapping[str, Any], key: str, what: str) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list, not {value!r}")
    return value


def _existing_user(u: object) -> ExistingUser:
    if not isinstance(u, Mapping):
        raise ValueError(f"directory.users[] must be objects, not {u!r}")
    fields = {"email", "employee_id", "manager_email", "department_name", "active"}
    if "email" not in u or set(u) - fields:
        raise ValueError(f"directory user needs 'email' and only {', '.join(sorted(fields))}: {dict(u)!r}")
    for key in fields - {"active"}:
        if key in u and not (u[key] is None and key != "email"):
            _str(u[key], f"directory user {key}")
    if "active" in u and not isinstance(u["active"], bool):
        raise ValueError(f"directory user active must be true or false, not {u['active']!r}")
    return ExistingUser(**u)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicableRow:
    """One record as ingest should apply it.

    `values` holds only the columns that are processed (unknown columns and
    values with a value-scoped error are left out), normalised: dates as ISO
    `yyyy-mm-dd`, booleans as "true"/"false", employee ids without the Excel
    apostrophe, empty cells as "" (which clears an optional field, docs/production.md §5).
    """

    row: int
    values: Mapping[str, str]
    # Columns whose value a value-scope error left out: the apply layer must
    # not read their absence as a missing value.
    dropped: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    file: str
    profile: Profile
    sha256: str
    kind: Kind
    total: int
    valid: int
    skipped: int
    findings: tuple[Finding, ...]
    columns: tuple[str, ...] = ()  # processed columns, in file order
    header: tuple[str, ...] = ()  # the file's header as written

    @property
    def verdict(self) -> Verdict:
        if any(f.severity is Severity.ERROR and f.scope is Scope.FILE for f in self.findings):
            return Verdict.REJECTED
        if self.total and self.valid == 0 and self.has_errors:
            return Verdict.REJECTED
        return Verdict.PARTIAL if self.has_errors else Verdict.ACCEPTED

    @property
    def has_errors(self) -> bool:
        return any(f.severity is Severity.ERROR for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        """The JSON contract of `bwsandbox validate --format json`."""
        return {
            "file": self.file,
            "profile": str(self.profile),
            "sha256": self.sha256,
            "verdict": str(self.verdict),
            "rows": {"total": self.total, "valid": self.valid, "skipped": self.skipped},
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Validation:
    """What `validate()` returns: the report, and the rows ingest may apply.

    Rows are produced lazily (`applicable()`), so validating a million-row file
    does not build a million dicts unless ingest asks for them.
    """

    report: Report
    rows_factory: Callable[[], Iterator[ApplicableRow]] = field(default=lambda: iter(()))
    # The original cells of the rows that have findings, for the error file.
    originals: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    def applicable(self) -> Iterator[ApplicableRow]:
        return self.rows_factory()
