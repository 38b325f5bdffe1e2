"""A row that changes only values of its user (`ingest/valuechange.py`) is
written from its quick row, without the merge, exactly as the merge would
write it: the same outcome, fields in the same order, and the same work
rows for the rules, whatever the directory, the profile or the values."""

from __future__ import annotations

from unittest import mock

import pytest
from apply_helpers import policy, rows, seeded, user
from hypothesis import given, settings
from hypothesis import strategies as st

from bwsandbox.ingest import apply, valuechange, workspace
from bwsandbox.ingest.records import Outcome, Policy, State, User
from bwsandbox.spec.fields import Profile
from bwsandbox.validator.model import ApplicableRow

EMAILS = ["a@x.com", "b@x.com", "c@x.com", "d@x.com"]
COLUMNS = ["title", "manager_email", "department_name", "employee_id", "deactivation_date", "location"]
VALUES = st.sampled_from(["", " ", "Eng", "Ops", " Eng", "é\U0001f600", "a@x.com", "B@x.com", "2026-01-01",
                          "2026-12-31", "A", "a"])  # fmt: skip
_PEND = ", ".join(workspace.PEND_COLUMNS)


def _work(
    state: State, f: list[ApplicableRow], terms: Policy, every_row_in: bool, compact: bool = False
) -> tuple[object, ...]:
    """The outcome (fields in their order) and the `w_pend` rows of the users
    it changes (`compact`: the users' fields spelled as SQLite spells JSON)."""
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, state)
        if compact:
            conn.execute("UPDATE w_dir SET fields = json(fields)")
        outcome = apply.run(conn, f, terms, every_row_in=every_row_in)
        pend = conn.execute(f"SELECT {_PEND} FROM w_pend WHERE action != 'unchanged' ORDER BY uid").fetchall()
        return (
            sorted(outcome.counts.items()),
            [(i.code, i.row, i.column, i.value) for i in outcome.findings],
            [(c.action, c.uid, c.row, list(c.fields.items()), c.active, c.before) for c in outcome.users],
            outcome.overwritten,
            pend,
        )


def _same_either_way(state: State, f: list[ApplicableRow], terms: Policy, compact: bool = False) -> None:
    assert _work(state, f, terms, False, compact) == _work(state, f, terms, True, compact)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), profile=st.sampled_from(list(Profile)),
       columns=st.lists(st.sampled_from(COLUMNS), unique=True, max_size=4),
       emails=st.lists(st.sampled_from(EMAILS), unique=True, min_size=1, max_size=4),
       compact=st.booleans())  # fmt: skip
def test_a_change_of_values_is_written_as_the_merge_writes_it(
    data: st.DataObject, profile: Profile, columns: list[str], emails: list[str], compact: bool
) -> None:
    """A directory made by a first file (its fields spelled as Python or as
    SQLite spells JSON), then a second file of the same columns whose values
    are the first's, changed, blank or padded: the users it changes go to
    the work tables as the merge puts them."""
    first = [user(e, **{c: data.draw(VALUES) for c in columns}) for e in emails]
    state = seeded(*first)
    if data.draw(st.booleans()):  # some users deactivated meanwhile, some values stored untrimmed
        pad = st.sampled_from(["", "", " "])
        state = State(users={uid: User(uid=uid, active=data.draw(st.booleans()), fields={
                                 name: value if name == "email" else value + data.draw(pad)
                                 for name, value in u.fields.items()})
                             for uid, u in state.users.items()}, departments=state.departments)  # fmt: skip
    stored = {u.key: u.fields for u in state.users.values()}
    kept = st.booleans()  # a value sent again (padded, or as stored), else one drawn anew
    again = [{name: [value, f" {value}", stored[r["email"]].get(name, "")] for name, value in r.items()}
             for r in first]  # fmt: skip
    second = [{name: data.draw(st.sampled_from(sent)) if data.draw(kept) else data.draw(VALUES)
               for name, sent in r.items()} for r in again]  # fmt: skip
    for r, e in zip(second, emails, strict=True):
        r["email"], r["first_name"] = e, data.draw(st.sampled_from(["F", "G", " F", ""]))
    f = rows(*second)
    _same_either_way(state, f, policy(f, profile=profile, termination_limit=1.0), compact)


def _merged(state: State, f: list[ApplicableRow], terms: Policy) -> tuple[Outcome, int]:
    """The outcome, and how many rows went through the merge."""
    merged = 0
    real = apply._Applier._merge

    def counting(self: apply._Applier, *args: object) -> None:
        nonlocal merged
        merged += 1
        real(self, *args)  # type: ignore[arg-type]

    with mock.patch.object(apply._Applier, "_merge", counting):
        return apply.apply_users(state, f, terms), merged


@pytest.mark.parametrize("engine", ["accelerated", "pure"])
def test_a_roster_with_some_titles_changed_is_not_merged_row_by_row(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from validator_helpers import use_engine

    use_engine(engine, monkeypatch)
    stored = [user(f"u{i}@x.com", title="Eng", manager_email="u0@x.com" if i else "", location="Oslo")
              for i in range(9)]  # fmt: skip
    state = seeded(*stored)
    f = rows(*(dict(r, title="Lead") if i % 3 == 0 else r for i, r in enumerate(stored)))
    terms = policy(f)
    outcome, merged = _merged(state, f, terms)
    assert outcome.counts == {"updated": 3, "unchanged": 6} and merged == 0
    assert [(c.uid, list(c.fields.items())) for c in outcome.users] == [
        (uid, [(k, v) for k, v in dict(stored[uid - 1], title="Lead").items() if v]) for uid in (1, 4, 7)
    ]
    _same_either_way(state, f, terms)


@pytest.mark.parametrize(
    ("stored", "row", "profile", "active"),
    [
        (user("a@x.com", title="Eng"), user("a@x.com", title="Lead", location="Oslo"), Profile.CORE, True),
        (user("a@x.com", title="Eng", location="Oslo"), user("a@x.com", location="Oslo", title="Lead"),
         Profile.CORE, True),  # the same names, in another order
        (user("a@x.com", title="Eng"), user("a@x.com", title="Lead"), Profile.ENGAGE, False),  # reactivated
        (user("a@x.com", title="Eng", employee_id="A"), user("a@x.com", title="Lead", employee_id="B"),
         Profile.ENGAGE, True),  # an id that cannot change
        (user("a@x.com", title="Eng "), user("a@x.com", title="Eng "), Profile.CORE, True),  # kept as stored
    ],
    ids=["a-new-field", "another-order", "engage-reactivates", "another-id", "stored-untrimmed"],
)  # fmt: skip
def test_a_row_the_quick_change_does_not_know_goes_to_the_merge(
    stored: dict[str, str], row: dict[str, str], profile: Profile, active: bool
) -> None:
    state = State(users={1: User(uid=1, fields=stored, active=active)})
    f = rows(row)
    terms = policy(f, profile=profile, termination_limit=1.0)
    settled: list[set[int]] = []
    real = valuechange.settle

    def spy(*args: object, **kw: object) -> object:
        got = real(*args, **kw)  # type: ignore[arg-type]
        settled.append(got[2])
        return got

    with mock.patch.object(valuechange, "settle", spy):
        apply.apply_users(state, f, terms)
    assert settled == [set()]  # found changing their user, and left to the merge
    _same_either_way(state, f, terms)


def test_a_row_changing_only_the_status_keeps_the_text_of_the_stored_fields() -> None:
    """The stored fields spelled as SQLite spells JSON, the row's fields the
    same: the user is reactivated, and their fields stay as they are stored."""
    fields = user("a@x.com", deactivation_date="2026-12-31")
    state = State(users={1: User(uid=1, fields=fields, active=False)})
    f = rows(fields)
    _same_either_way(state, f, policy(f), compact=True)
    *_, pend = _work(state, f, policy(f), False, compact=True)
    text = '{"email":"a@x.com","first_name":"F","last_name":"L","deactivation_date":"2026-12-31"}'
    assert [(p[5], p[-1]) for p in pend] == [(text, "reactivated")]  # type: ignore[attr-defined]
