"""The records applying works on and produces: a directory given as a
`State` (`validate --context`, tests), the `Policy` a file is applied
under, and the `Outcome` — the changes, counts, overwritten manual edits
and directory-only issues.
Frozen where they are values; `Outcome` is filled while a file is applied.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bwsandbox.spec.fields import Profile
from bwsandbox.validator.model import Finding


def email_key(address: str) -> str:
    """Identity key of an email: production matches emails case-insensitively (docs/production.md §3).
    An address already in that form is its own key (the same string, not a
    copy: a million keys then cost no memory of their own)."""
    address = address.strip()
    key = address.lower()
    return address if key == address else key


def address_key(values: Mapping[str, str]) -> str:
    """The identity key of a row's address ('' for a row without one)."""
    return email_key(values.get("email", ""))


class Action(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DEACTIVATED = "deactivated"
    REACTIVATED = "reactivated"
    TERMINATED = "terminated"  # engage: left out of a full-roster file
    UNCHANGED = "unchanged"


class Source(enum.StrEnum):
    FILE = "file"  # an SFTP upload: overrides manual edits
    ADMIN = "admin"  # Admin module (individual update or manual upload): a manual edit
    CLOCK = "clock"  # a future deactivation date reached


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    uid: int
    fields: Mapping[str, str]  # email, first_name, ..., deactivation_date, custom keys
    active: bool = True

    @property
    def email(self) -> str:
        return self.fields.get("email", "")

    @property
    def key(self) -> str:
        return email_key(self.email)


@dataclass(frozen=True, slots=True, kw_only=True)
class Department:
    name: str
    parent: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ManualEdit:
    """A field last set by the Admin module, not yet overwritten by a file."""

    uid: int
    field: str
    value: str
    at: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    users: Mapping[int, User] = field(default_factory=dict)
    departments: Mapping[str, Department] = field(default_factory=dict)  # key: lower-case name
    manual: Mapping[tuple[int, str], ManualEdit] = field(default_factory=dict)

    def active_count(self) -> int:
        return sum(1 for u in self.users.values() if u.active)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    profile: Profile = Profile.CORE
    source: Source = Source.FILE
    source_label: str = ""  # what history shows: "file 12 employees.csv" / "admin set-user"
    today: str = "1970-01-01"  # ISO date of the sandbox clock
    now: str = "1970-01-01T00:00:00+00:00"
    licenses: int | None = None  # total licences; None: unlimited
    termination_limit: float = 0.20
    columns: frozenset[str] = frozenset()  # processed columns of the file
    mentioned: frozenset[str] = frozenset()  # lower-case emails on rows that were skipped


@dataclass(frozen=True, slots=True, kw_only=True)
class UserChange:
    """A user's change: the user before (None: created) and the fields and
    status after. `after` is made when asked for: a million-row outcome
    then holds one object per change, not two."""

    action: Action
    before: User | None
    uid: int
    fields: Mapping[str, str]
    active: bool
    row: int | None

    @property
    def after(self) -> User:
        return User(uid=self.uid, fields=self.fields, active=self.active)

    @property
    def diff(self) -> tuple[tuple[str, str, str], ...]:
        """(field, old, new), "status" included; computed on demand to keep a
        million-row outcome small."""
        if self.action is Action.UNCHANGED:
            return ()
        return field_diff(self.before, self.fields, self.active)


@dataclass(frozen=True, slots=True, kw_only=True)
class DepartmentChange:
    action: Action
    before: Department | None
    after: Department
    row: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Overwrite:
    """A manual edit that a file's value replaced (docs/production.md §5, "record every one")."""

    email: str
    field: str
    manual_value: str
    file_value: str
    edited_at: str
    edited_by: str
    row: int | None


class Changes(Protocol):
    """The changes of an outcome: a list, or read from a workspace as they
    are asked for (`workspace.Changes`). Never holds an unchanged user."""

    def __iter__(self) -> Iterator[UserChange]: ...
    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class FirstChanges:
    """The first changes of an outcome and how many it has in all: what a
    report or a plan shows of them, kept once their workspace is gone (a
    million-change plan is not a million objects)."""

    shown: tuple[UserChange, ...]
    total: int

    def __iter__(self) -> Iterator[UserChange]:
        return iter(self.shown)

    def __len__(self) -> int:
        return self.total


@dataclass(slots=True, kw_only=True)
class Outcome:
    users: Changes = field(default_factory=list)
    departments: list[DepartmentChange] = field(default_factory=list)
    overwritten: list[Overwrite] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # what only the directory shows
    manual_set: list[ManualEdit] = field(default_factory=list)  # admin edits made
    manual_cleared: list[tuple[int, str]] = field(default_factory=list)  # file took over
    counts: dict[str, int] = field(default_factory=dict)
    refused: bool = False  # the whole file was refused (engage safety net)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    @property
    def changed(self) -> bool:
        return bool(
            len(self.users)
            or self.departments
            or self.manual_set
            or self.manual_cleared
        )

    def state_after(self, state: State) -> State:
        users = dict(state.users)
        for change in self.users:
            users[change.uid] = change.after
        departments = dict(state.departments)
        for dchange in self.departments:
            departments[dchange.after.name.lower()] = dchange.after
        manual = dict(state.manual)
        for key in self.manual_cleared:
            manual.pop(key, None)
        for edit in self.manual_set:
            manual[(edit.uid, edit.field)] = edit
        return State(users=users, departments=departments, manual=manual)


def fields_diff(old_fields: Mapping[str, str], fields: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(field, old, new) from `old_fields` to `fields`: the fields' part of `field_diff`
    (a field missing and a field empty are alike; a field cleared shows as "")."""
    diff = [
        (name, old_fields.get(name, ""), value)
        for name, value in fields.items()
        if old_fields.get(name, "") != value
    ]
    diff.extend((name, old, "") for name, old in old_fields.items() if name not in fields and old)
    return diff


def field_diff(
    before: User | None, fields: Mapping[str, str], active: bool
) -> tuple[tuple[str, str, str], ...]:
    """(field, old, new) from `before` to the user with `fields` and status `active`."""
    diff = fields_diff(before.fields if before else {}, fields)
    if before is None or before.active != active:
        diff.append(
            (
                "status",
                "" if before is None else ("active" if before.active else "deactivated"),
                "active" if active else "deactivated",
            )
        )
    return tuple(diff)
