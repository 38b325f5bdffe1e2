"""The stored users a batch of rows names, as the apply reads them
(`apply.py`), the fields a row gives a user it creates, and a user as their
row leaves them (`Pending`).

`prefetch` reads, for the rows of a batch the merge decides, the stored
users they may reach (by address, and by employee id where that is
identity) from the workspace's `w_dir`. A row whose fields as a new
user's are the stored ones to the byte (`new_text`) is known in SQL to
leave its user as they are, and is neither read nor merged (`quick.py`);
a re-sent roster is mostly such rows (docs/benchmarks.md "Ingest at scale").
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bwsandbox.ingest.records import Action
from bwsandbox.ingest.workspace import tuples
from bwsandbox.validator import accel

# Columns that steer applying instead of being stored as they are.
CONTROL = frozenset({"manager_id", "deactivation_date"})


def new_fields(values: Mapping[str, str]) -> dict[str, str]:
    """The fields a row gives a new user: its values but the ones that steer
    applying, trimmed, without the empty ones; the deactivation date last."""
    fields = {name: value for name, raw in values.items() if name not in CONTROL and (value := raw.strip())}
    if date := values.get("deactivation_date", "").strip():
        fields["deactivation_date"] = date
    return fields


def new_text() -> Callable[[Mapping[str, str]], str]:
    """`json.dumps(new_fields(values))`, as the store holds a user's fields:
    written by the C value module where it is built and not turned off
    (`validator/accel.py`), else by json.dumps (the same text, a property
    test), in about a fifth of the time. Chosen once per apply."""

    def in_python(values: Mapping[str, str]) -> str:
        return json.dumps(new_fields(values))

    if not accel.engines().ccells:
        return in_python
    from bwsandbox.validator._ccells import fields_text

    def in_c(values: Mapping[str, str]) -> str:
        if type(values) is dict and (text := fields_text(values, CONTROL, "deactivation_date")) is not None:
            return text
        return in_python(values)

    return in_c


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored user as a row may find them: the fields as stored (JSON) and
    the values `w_dir` repeats from them."""

    active: bool
    text: str
    eid: str
    key: str
    mkey: str
    dept: str
    ddate: str

    def columns(self) -> tuple[str, str, str, str, str, str]:
        """text, key, eid, mkey, dept and ddate: the `w_pend` columns of a user
        whose fields a row leaves as they are stored."""
        return self.text, self.key, self.eid, self.mkey, self.dept, self.ddate


def decoded(texts: Iterable[str]) -> list[Any]:
    """JSON texts decoded in one json.loads: its decoder shares the names within
    a call, and decodes in about 60 % of the time of one call per text."""
    return list(json.loads("[" + ",".join(texts) + "]"))


@dataclass(slots=True)
class Found:
    """The stored users a batch's rows may name, and how they are found."""

    users: dict[int, Stored] = field(default_factory=dict)
    fields: dict[int, dict[str, str]] = field(default_factory=dict)  # `text` decoded, for the rows that merge
    by_key: dict[str, int] = field(default_factory=dict)  # the last holder of each address
    by_eid: dict[str, int] = field(default_factory=dict)  # under identity by employee id only
    by_lower: dict[str, str] = field(default_factory=dict)  # lower-case id -> the first stored id so spelled

    def decode(self) -> None:
        """The fields of the users the merge may read (`decoded`)."""
        uids = list(self.users)
        self.fields.update(zip(uids, decoded(self.users[uid].text for uid in uids), strict=True))

    def fields_of(self, uid: int) -> dict[str, str]:
        """A user's stored fields (decoded here if `decode` passed them by:
        a second row of theirs, which the apply then refuses)."""
        if (fields := self.fields.get(uid)) is None:
            fields = self.fields[uid] = json.loads(self.users[uid].text)
        return fields


# In uid order, sorted after the search: ordered by the bare column, a
# directory read in place would be walked in the order of its primary key.
_BY = (
    "SELECT uid, active, fields, eid, key, mkey, dept, ddate FROM w_dir"
    " WHERE {} IN (SELECT value FROM json_each(?)) ORDER BY +uid"
)


def prefetch(conn: sqlite3.Connection, keys: list[str], eids: list[str]) -> Found:
    """The stored users a batch's rows may name: by the keys of their
    addresses, by the employee ids `eids` (given only where the id is
    identity), and the stored ids equal to one of those but for letter case."""
    found = Found()
    by_address = tuples(conn, _BY.format("key"), (json.dumps([k for k in keys if k]),)).fetchall()
    by_id = tuples(conn, _BY.format("eid"), (json.dumps(eids),)).fetchall() if eids else []
    for uid, active, text, eid, key, mkey, dept, ddate in by_address + by_id:
        found.users[uid] = Stored(bool(active), text, eid, key, mkey, dept, ddate)
    found.by_key.update((r[4], r[0]) for r in by_address)  # by uid: the last holder of an address wins
    found.by_eid.update((r[3], r[0]) for r in by_id)
    lowered = [e.lower() for e in eids if e not in found.by_eid]
    if lowered:
        for leid, eid in conn.execute(
            "SELECT leid, eid FROM w_leid WHERE leid IN (SELECT value FROM json_each(?)) ORDER BY uid",
            (json.dumps(lowered),),
        ):  # fmt: skip
            found.by_lower.setdefault(leid, eid)
    return found


@dataclass(slots=True)
class Pending:
    """A user as their row leaves them, before they go to the workspace."""

    fields: Mapping[str, str]  # a dict once owned; before, the stored fields (copy on write)
    active: bool
    new: bool
    owned: bool = True
    manager_eid: str | None = None

    def set(self, name: str, value: str) -> None:
        if self.fields.get(name) != value:
            self._own()[name] = value

    def drop(self, name: str) -> None:
        if name in self.fields:
            del self._own()[name]

    def _own(self) -> dict[str, str]:
        fields = self.fields
        if not self.owned or not isinstance(fields, dict):
            fields = self.fields = dict(fields)
            self.owned = True
        return fields


def row_action(res: Pending, before: Stored | None, fields: Mapping[str, str]) -> str:
    """What the row does to its user (stored `fields`): a creation or a new
    status, which every later rule keeps; else new fields or none (both
    dicts are at hand: a field set and then set back is no change). A rule
    that changes the user's fields has `_changes` decide that again (`changes.py`)."""
    if before is None:
        return str(Action.CREATED)
    return user_action(before.active, res.active, changed=res.owned and res.fields != fields)


def user_action(was_active: bool, active: bool, *, changed: bool) -> str:
    """What a row does to a stored user: a new status, else new fields (`changed`) or none."""
    if was_active != active:
        return str(Action.DEACTIVATED if was_active else Action.REACTIVATED)
    return str(Action.UPDATED if changed else Action.UNCHANGED)
