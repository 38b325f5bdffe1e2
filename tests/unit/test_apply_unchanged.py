"""Users a row leaves as they are stay out of the rules' table (`w_pend`)
unless a rule reads them there (`changes.ChangeRules._back_in`): the outcome is
the one of putting every row's user in, whatever the directory (shared
addresses, inactive or missing managers, manual edits, deactivated
departments, engage rosters, licences)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from unittest import mock

import pytest
from apply_helpers import policy, rows, seeded, user
from hypothesis import given, settings
from hypothesis import strategies as st

from bwsandbox.ingest import workspace
from bwsandbox.ingest.apply import apply_users, run
from bwsandbox.ingest.records import Department, ManualEdit, Outcome, State, User
from bwsandbox.spec.fields import Profile
from bwsandbox.validator.model import ApplicableRow

EMAILS = ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com"]
_TITLE = st.sampled_from(["", "Eng", "Ops"])
_MANAGER = st.sampled_from(["", *EMAILS, "B@X.com", "nobody@x.com"])
_DEPT = st.sampled_from(["", "Eng", "Old", "old"])
_ID = st.sampled_from(["", "", "1", "2", "A", "a"])
_DATE = st.sampled_from(["", "", "", "2026-12-31"])  # a future date: the user stays active until then
_DRAWN = {  # a value a file may send for a column (untrimmed too: the apply trims)
    "title": st.sampled_from(["", "Eng", "Ops", "Eng ", " "]), "manager_email": _MANAGER,
    "department_name": _DEPT, "employee_id": st.sampled_from(["", "1", "A", "a", " A"]),
    "deactivation_date": st.sampled_from(["", "2026-01-01", "2026-12-31"]),
}  # fmt: skip
# The order a file's columns give a new user's fields (`apply.new_fields`): a
# user stored so is the one a re-sent row may find as it is without the merge.
_FILE_ORDER = ("department_name", "employee_id", "manager_email", "title", "deactivation_date")


@st.composite
def directories(draw: st.DrawFn) -> State:
    """Users drawn directly (not made by a file): an address may have two
    holders, managers may be inactive or missing, a department closed."""
    users: dict[int, User] = {}
    for uid in range(1, draw(st.integers(0, 7)) + 1):
        email = draw(st.sampled_from(EMAILS))
        fields = {"email": draw(st.sampled_from([email, email.upper()])), "last_name": "L"}
        if draw(st.integers(0, 3)):  # a user without a name a new one needs (made by hand, not a file)
            fields = {"email": fields["email"], "first_name": "F", "last_name": "L"}
        drawn = {"title": _TITLE, "manager_email": _MANAGER, "department_name": _DEPT, "employee_id": _ID,
                 "deactivation_date": _DATE}  # fmt: skip
        for name in _FILE_ORDER if draw(st.booleans()) else drawn:  # as a file stores them, or not
            if value := draw(drawn[name]):
                fields[name] = value
        users[uid] = User(uid=uid, fields=fields, active=draw(st.integers(0, 3)) > 0)
    departments = {
        "eng": Department(name="Eng"),
        "old": Department(name="Old", active=draw(st.booleans())),
    }
    manual = {}
    for uid in draw(st.lists(st.sampled_from(sorted(users)), max_size=2)) if users else []:
        name = draw(st.sampled_from(["title", "manager_email", "department_name"]))
        manual[(uid, name)] = ManualEdit(uid=uid, field=name, value="Manual", at="t", source="admin")
    return State(users=users, departments=departments, manual=manual)


@st.composite
def files(draw: st.DrawFn, state: State) -> list[ApplicableRow]:
    """Rows that mostly repeat a stored user (so they leave them as they
    are), some that change them or name someone new."""
    columns = sorted(draw(st.sets(st.sampled_from(["title", "manager_email", "department_name",
                                                   "deactivation_date", "employee_id"]))))  # fmt: skip
    resend = draw(st.booleans())  # every row as stored, where a user is stored
    stored = {u.key: u for u in state.users.values()}  # the last holder of each address
    records = []
    for email in draw(st.lists(st.sampled_from(EMAILS), unique=True, max_size=5)):
        same = stored.get(email)
        names = ("email", "first_name", "last_name")
        values = dict(user(email)) if same is None else {k: same.fields.get(k, "") for k in names}
        for column in columns:
            if same is not None and (resend or draw(st.booleans())):
                value = same.fields.get(column, "")  # as stored, or with a space the apply trims
                values[column] = draw(st.sampled_from([value, f" {value}"])) if value else value
            else:
                values[column] = draw(_DRAWN[column])
        records.append(values)
    f = rows(*records)
    for i, arow in enumerate(f):  # a value the validator refused: left out of the row, and said so
        refused = draw(st.sampled_from(["", "", "", *sorted(arow.values)]))
        if refused not in ("", "email"):
            kept = {name: value for name, value in arow.values.items() if name != refused}
            f[i] = replace(arow, values=kept, dropped=frozenset({refused}))
    return f


def _seen(outcome: Outcome) -> tuple[object, ...]:
    return (
        outcome.refused,
        sorted(outcome.counts.items()),
        [(f.code, f.row, f.column, f.value, f.message) for f in outcome.findings],
        [(c.action, c.uid, c.row, dict(c.fields), c.active, c.before) for c in outcome.users],
        outcome.overwritten,
        outcome.manual_cleared,
        outcome.departments,
    )


@settings(max_examples=500, deadline=None)
@given(data=st.data(), profile=st.sampled_from(list(Profile)), licenses=st.sampled_from([None, 2]),
       limit=st.sampled_from([0.2, 1.0]), batch=st.sampled_from([1, 2, workspace.BATCH]))  # fmt: skip
def test_keeping_unchanged_users_out_changes_no_outcome(
    data: st.DataObject, profile: Profile, licenses: int | None, limit: float, batch: int
) -> None:
    state = data.draw(directories())
    f = data.draw(files(state))
    terms = policy(f, profile=profile, licenses=licenses, termination_limit=limit)
    with mock.patch.object(workspace, "BATCH", batch):  # rows that meet across batches, too
        kept_out = apply_users(state, f, terms)
    every_row_in = apply_users(state, f, terms, every_row_in=True)
    assert _seen(kept_out) == _seen(every_row_in)


def test_a_resent_roster_leaves_its_users_out_of_the_rules_and_counts_them() -> None:
    state = seeded(user("a@x.com", title="Eng"), user("b@x.com", manager_email="a@x.com"))
    f = rows(user("a@x.com", title="Eng"), user("b@x.com", manager_email="a@x.com"))
    outcome = apply_users(state, f, policy(f))
    assert outcome.counts == {"unchanged": 2} and not outcome.changed


def _same_either_way(state: State, f: list[ApplicableRow], profile: Profile = Profile.CORE) -> Outcome:
    terms = policy(f, profile=profile, termination_limit=1.0)
    kept_out = apply_users(state, f, terms)
    assert _seen(kept_out) == _seen(apply_users(state, f, terms, every_row_in=True))
    return kept_out


A_AND_B = (user("a@x.com"), user("b@x.com", manager_email="a@x.com"))


@pytest.mark.parametrize(
    ("state", "f", "profile"),
    [
        # the manager the file deactivates
        (seeded(*A_AND_B), [user("a@x.com", deactivation_date="2026-01-01"), A_AND_B[1]], Profile.CORE),
        # the manager a full roster leaves out (terminated)
        (seeded(*A_AND_B), [A_AND_B[1]], Profile.ENGAGE),
        # a manager nobody is
        (seeded(user("b@x.com", manager_email="gone@x.com")), [user("b@x.com", manager_email="gone@x.com")],
         Profile.CORE),
    ],
    ids=["deactivated-by-the-file", "left-out-of-the-roster", "nobody"],
)  # fmt: skip
def test_an_unchanged_row_whose_manager_is_no_active_user_is_still_told_so(
    state: State, f: list[dict[str, str]], profile: Profile
) -> None:
    """The row is brought back for the rule, as a row that changes its user would be."""
    outcome = _same_either_way(state, rows(*f), profile)
    assert [i.code for i in outcome.findings if i.code != "TERMINATIONS"] == ["MANAGER_NOT_FOUND"]


def test_an_inactive_manager_is_no_manager_for_an_unchanged_row_either() -> None:
    state = State(users={1: User(uid=1, fields=A_AND_B[0], active=False), 2: User(uid=2, fields=A_AND_B[1])})
    outcome = _same_either_way(state, rows(A_AND_B[1]))
    assert [(i.code, i.row) for i in outcome.findings] == [("MANAGER_NOT_FOUND", 2)]


def test_an_unchanged_row_takes_over_the_manual_edits_of_its_columns() -> None:
    state = seeded(user("a@x.com", title="Eng"))
    edit = ManualEdit(uid=1, field="title", value="Manual", at="t", source="admin")
    state = State(users=state.users, departments=state.departments, manual={(1, "title"): edit})
    outcome = _same_either_way(state, rows(user("a@x.com", title="Eng")))
    assert outcome.manual_cleared == [(1, "title")]
    assert [o.manual_value for o in outcome.overwritten] == ["Manual"]


def test_only_the_users_a_rule_reads_are_brought_back() -> None:
    """A re-sent roster whose manager's title changed: the reports' rows
    leave them as they are and their manager stays active, so the rules
    read the manager alone (a tenth of the users changing must not bring
    their reports back, or the rules pass over most of the roster again)."""
    state = seeded(user("a@x.com", title="Eng"), user("b@x.com", manager_email="a@x.com"),
                   user("c@x.com", manager_email="a@x.com"))  # fmt: skip
    f = rows(user("a@x.com", title="Lead"), user("b@x.com", manager_email="a@x.com"),
             user("c@x.com", manager_email="a@x.com"))  # fmt: skip
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, state)
        outcome = run(conn, f, policy(f))
        assert [r[0] for r in conn.execute("SELECT key FROM w_pend")] == ["a@x.com"]
        assert outcome.counts == {"updated": 1, "unchanged": 2}


@pytest.mark.parametrize(
    ("stored", "active", "row", "profile", "code", "action"),
    [
        # the roster's inactive user is employed again
        (user("a@x.com"), False, user("a@x.com"), Profile.ENGAGE, None, "reactivated"),
        # a past date in the file deactivates; a blank one reactivates
        (user("a@x.com", deactivation_date="2026-01-01"), True,
         user("a@x.com", deactivation_date="2026-01-01"), Profile.CORE, None, "deactivated"),
        (user("a@x.com"), False, user("a@x.com", deactivation_date=""), Profile.CORE, None, "reactivated"),
        # an id the apply reads untrimmed: in Engage, a changed id skips the row
        (user("a@x.com", employee_id="A"), True, user("a@x.com", employee_id=" A"), Profile.ENGAGE,
         "EMPLOYEE_ID_CHANGED", "skipped"),
        # a required name empty: kept, and said
        ({"email": "a@x.com", "last_name": "L"}, True, user("a@x.com", first=""), Profile.CORE,
         "REQUIRED_VALUE_KEPT", "unchanged"),
    ],
    ids=["engage-reactivates", "past-date", "blank-date", "untrimmed-id", "required-name-empty"],
)  # fmt: skip
def test_a_row_whose_fields_are_the_stored_ones_may_still_change_its_user(
    stored: dict[str, str], active: bool, row: dict[str, str], profile: Profile, code: str | None, action: str
) -> None:
    """The row's fields as a new user's are the stored ones, to the byte
    (the quick yes of `_known_same`), yet its status, its id or a kept name
    makes it more than unchanged: the merge decides it."""
    state = State(users={1: User(uid=1, fields=stored, active=active)})
    outcome = _same_either_way(state, rows(row), profile)
    assert [i.code for i in outcome.findings if i.code != "TERMINATIONS"] == ([code] if code else [])
    assert {k: n for k, n in outcome.counts.items() if n} == {action: 1}


def test_two_rows_reaching_one_user_are_refused_even_if_one_leaves_them_as_they_are() -> None:
    """The validator refuses them (EMAIL_DUPLICATE); the apply never merges them either."""
    state = seeded(user("a@x.com", title="Eng"))
    f = rows(user("a@x.com", title="Eng"), user("A@x.com", title="Ops"))
    with pytest.raises(ValueError, match="two rows reach one user"):
        apply_users(state, f, policy(f))


def test_the_managers_address_is_read_as_its_last_holder_holds_it() -> None:
    """Two users share the manager's address, the later one inactive: the
    address is theirs (a row reaches its address's last holder), so the
    unchanged row's manager is not an active user."""
    manager = user("a@x.com")
    state = State(users={1: User(uid=1, fields=manager), 2: User(uid=2, fields=manager, active=False),
                         3: User(uid=3, fields=A_AND_B[1])})  # fmt: skip
    outcome = _same_either_way(state, rows(A_AND_B[1]))
    assert [(i.code, i.row) for i in outcome.findings] == [("MANAGER_NOT_FOUND", 2)]


def test_a_row_is_known_unchanged_only_against_its_addresss_last_holder() -> None:
    """Two users hold one address: the row's fields are the first one's to
    the byte, but a row reaches the last holder, whom it changes."""
    row = user("a@x.com", title="Eng")
    state = State(users={1: User(uid=1, fields=row), 2: User(uid=2, fields=user("a@x.com", title="Ops"))})
    outcome = _same_either_way(state, rows(row))
    assert [(c.action, c.uid) for c in outcome.users] == [("updated", 2)]
    assert outcome.counts == {"updated": 1}


def test_two_rows_of_one_row_number_reaching_one_user_are_refused_too() -> None:
    """Rows made by hand (the validator numbers them by the file's lines):
    one leaves the user as they are, the other would change them."""
    state = seeded(user("a@x.com", title="Eng"), user("b@x.com"))
    f = [ApplicableRow(row=5, values=user("a@x.com", title="Eng")),
         ApplicableRow(row=5, values=user("a@x.com", title="Ops"))]  # fmt: skip
    for every_row_in in (False, True):
        with pytest.raises(ValueError, match="two rows reach one user"):
            apply_users(state, f, policy(f), every_row_in=every_row_in)


@pytest.mark.parametrize("stored", [(), (user("b@x.com"),)], ids=["first-load", "into-a-directory"])
def test_two_rows_creating_one_address_are_refused(stored: tuple[dict[str, str], ...]) -> None:
    """Rows made by hand (the validator refuses a repeated address,
    EMAIL_DUPLICATE): the address index of the work table refuses the second
    new user as it is made."""
    state = seeded(*stored) if stored else State()
    f = rows(user("a@x.com"), user("A@x.com", title="Ops"))
    for every_row_in in (False, True):
        with pytest.raises(ValueError, match="two rows create one address"):
            apply_users(state, f, policy(f), every_row_in=every_row_in)


@pytest.mark.parametrize(
    ("limit", "batch"), [(999, workspace.BATCH), (None, workspace.BATCH), (None, 1), (999, 7)]
)
def test_rows_compared_in_statements_of_any_size_get_one_answer(limit: int | None, batch: int) -> None:
    """`quick.known_same` binds a batch's rows into as many statements as its
    chunk sizes and the connection's limit on parameters ask (SQLite before
    3.32 allows 999; None: the build's own): every seventh row changes its
    user, the others leave theirs as they are, whatever the chunks."""
    n = 1_500
    state = seeded(*(user(f"u{i}@x.com", title="Eng") for i in range(n)))
    f = rows(*(user(f"u{i}@x.com", title="Ops" if i % 7 == 0 else "Eng") for i in range(n)))
    private = workspace.private

    @contextlib.contextmanager
    def limited() -> Iterator[sqlite3.Connection]:
        with private() as conn:
            if limit is not None:
                conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
            yield conn

    with mock.patch.object(workspace, "private", limited), mock.patch.object(workspace, "BATCH", batch):
        outcome = _same_either_way(state, f)
    changed = len(range(0, n, 7))
    assert outcome.counts == {"updated": changed, "unchanged": n - changed}
    assert [c.uid for c in outcome.users] == [1 + i for i in range(0, n, 7)]
