"""Rules that need the directory, judged once by the apply layer: one test
of "the manager exists", row refusals before value refusals, a refused
link is not judged again, and a refused file counts every row as skipped."""

from __future__ import annotations

import datetime as dt

from bwsandbox.ingest.plan import Judgement, state_of, validate
from bwsandbox.ingest.records import State
from bwsandbox.spec.fields import Profile
from bwsandbox.validator import Context, DirectorySnapshot, ExistingUser

TODAY = dt.date(2026, 12, 6)


def judge(csv: str, *users: ExistingUser, **context: object) -> Judgement:
    known = DirectorySnapshot(users=users)
    return validate(csv.encode(), Context(directory=known, today=TODAY, **context), name="f.csv")  # type: ignore[arg-type]


def codes(j: Judgement) -> list[tuple[str, int | None]]:
    return [(f.code, f.row) for f in j.report.findings]


def managers(j: Judgement) -> dict[str, list[str]]:
    return {c["email"]: c["fields"].get("manager_email") for c in j.plan["changes"]}  # type: ignore[union-attr,index]


def test_a_manager_must_be_active_once_the_file_is_applied_by_address_or_by_id() -> None:
    m = ExistingUser(email="m@x.com", employee_id="M1")
    a = ExistingUser(email="a@x.com", employee_id="A1")
    old = ExistingUser(email="old@x.com", employee_id="O1", active=False)
    head = "email,first_name,last_name,manager_email,deactivation_date\r\n"
    # the file deactivates m@ and names it as a manager: not found
    j = judge(head + "m@x.com,M,M,,01/01/2020\r\na@x.com,A,A,m@x.com,\r\n", m, a, old)
    assert codes(j) == [("MANAGER_NOT_FOUND", 3)] and managers(j).get("a@x.com") is None
    # already deactivated: not found either, by address or by id
    j = judge("email,first_name,last_name,manager_email\r\na@x.com,A,A,old@x.com\r\n", m, a, old)
    assert codes(j) == [("MANAGER_NOT_FOUND", 2)]
    j = judge("email,first_name,last_name,employee_id,manager_id\r\na@x.com,A,A,A1,O1\r\n", m, a, old)
    assert codes(j) == [("MANAGER_NOT_FOUND", 2)] and "O1" in j.report.findings[0].message


def test_engage_a_manager_the_file_terminates_is_not_found() -> None:
    users = [ExistingUser(email=f"u{i}@x.com") for i in range(10)]
    rows = "".join(f"u{i}@x.com,{'u9@x.com' if i == 1 else ''}\r\n" for i in range(9))
    j = judge("email,manager_email\r\n" + rows, *users, profile=Profile.ENGAGE)
    assert ("MANAGER_NOT_FOUND", 3) in codes(j)


def test_a_row_the_licences_refuse_gets_no_value_finding_too() -> None:
    a = ExistingUser(email="a@x.com", employee_id="E5")
    j = judge("email,first_name,last_name,employee_id\r\nb@x.com,B,B,E5\r\nc@x.com,C,C,E6\r\n", a,
              licenses_available=1)
    assert sorted(codes(j)) == [("LICENSE_LIMIT", 2), ("LICENSE_LIMIT", 3)]


def test_a_refused_manager_is_not_judged_again_as_a_loop() -> None:
    a = ExistingUser(email="a@x.com", manager_email="b@x.com")
    b = ExistingUser(email="b@x.com")
    head = "email,first_name,last_name,manager_email\r\n"
    j = judge(head + "a@x.com,A,A,nobody@x.com\r\nb@x.com,B,B,a@x.com\r\n", a, b)
    assert codes(j) == [("MANAGER_NOT_FOUND", 2), ("MANAGER_CYCLE", 3)]


def test_a_file_refused_by_the_safety_net_counts_every_row_as_skipped() -> None:
    users = [ExistingUser(email=f"u{i}@x.com") for i in range(10)]
    j = judge("email\r\nu0@x.com\r\nu1@x.com\r\nnew@x.com\r\nbad-address\r\n", *users, profile=Profile.ENGAGE)
    assert "TERMINATION_LIMIT" in {c for c, _ in codes(j)}
    rows, applied = j.report.to_dict()["rows"], j.plan["applied"]
    assert rows == {"total": 4, "valid": 0, "skipped": 4}
    assert applied["skipped"] == 4  # type: ignore[index]


ID_HEAD = "email,first_name,last_name,employee_id,manager_id\r\n"


def test_refused_loops_leave_no_loop_once_the_old_managers_are_back() -> None:
    a, b, c = (ExistingUser(email="a@x.com"), ExistingUser(email="b@x.com", manager_email="a@x.com"),
               ExistingUser(email="c@x.com", manager_email="b@x.com"))
    head = "email,first_name,last_name,manager_email\r\n"
    j = judge(head + "a@x.com,A,A,c@x.com\r\nb@x.com,B,B,c@x.com\r\nc@x.com,C,C,b@x.com\r\n", a, b, c)
    # b -> c closes a loop with c -> b (which the file only repeats); with b back
    # on a, a -> c closes a -> c -> b -> a: both new links are refused, c's kept.
    assert codes(j) == [("MANAGER_CYCLE", 2), ("MANAGER_CYCLE", 3)]
    after = j.outcome.state_after(_state(a, b, c))
    chain = {u.email: u.fields.get("manager_email", "") for u in after.users.values()}
    assert chain == {"a@x.com": "", "b@x.com": "a@x.com", "c@x.com": "b@x.com"}


def _state(*users: ExistingUser) -> State:
    return state_of(DirectorySnapshot(users=users))


def test_an_exact_id_is_its_own_user_whatever_others_hold_in_other_case() -> None:
    users = (ExistingUser(email="a@x.com", employee_id="E1"), ExistingUser(email="b@x.com", employee_id="e1"))
    for order in (users, users[::-1]):
        assert codes(judge(ID_HEAD + "b@x.com,B,B,e1,\r\n", *order)) == []


def test_a_manager_id_resolves_to_its_user_not_to_whoever_has_the_address() -> None:
    d_old = ExistingUser(email="d@x.com", employee_id="E1", active=False)
    a = ExistingUser(email="a@x.com", employee_id="E2")
    j = judge(ID_HEAD + "d@x.com,D,D,E9,\r\na@x.com,A,A,E2,E1\r\n", d_old, a)
    assert codes(j) == [("MANAGER_NOT_FOUND", 3)]


def test_a_kept_manager_follows_the_managers_new_address() -> None:
    m = ExistingUser(email="m@x.com", employee_id="M1")
    a = ExistingUser(email="a@x.com", employee_id="A1", manager_email="m@x.com")
    j = judge(ID_HEAD + "m2@x.com,M,M,M1,\r\na@x.com,A,A,A1,ZZ\r\n", m, a)
    assert codes(j) == [("MANAGER_NOT_FOUND", 3)]
    assert managers(j)["a@x.com"] == ["m@x.com", "m2@x.com"]


def test_following_a_rename_never_makes_a_user_their_own_manager() -> None:
    m_old = ExistingUser(email="m@x.com", employee_id="M1", active=False)
    a = ExistingUser(email="a@x.com", manager_email="m@x.com")
    j = judge(ID_HEAD + "a@x.com,M,M,M1,\r\n", m_old, a)
    after = j.outcome.state_after(_state(m_old, a))
    assert all(u.fields.get("manager_email", "") != u.email for u in after.users.values())
