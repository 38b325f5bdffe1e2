"""Rules that need the directory, judged once by the apply layer: one test
of "the manager exists", row refusals before value refusals, a refused
link is not judged again, and a refused file counts every row as skipped."""

from __future__ import annotations

import datetime as dt

from bwsandbox.ingest.plan import Judgement, validate
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
