"""docs/production.md §6's decisions where production is silent, on both engines: each is
reported with a message that names it the sandbox's rule, and what
`validate --context` predicts is what an upload to that tenant does."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from apply_helpers import rows as apply_rows
from apply_helpers import run as apply_run
from apply_helpers import seeded, snapshot, stored_state, user
from validator_helpers import H, applied, each_engine, feed, found, only, run  # noqa: F401 (fixture)

from bwsandbox import store, tenants
from bwsandbox.clock import Clock
from bwsandbox.ingest.plan import validate
from bwsandbox.ingest.process import process
from bwsandbox.ingest.records import Source
from bwsandbox.spec import messages
from bwsandbox.spec.fields import Profile
from bwsandbox.validator import Context, DirectorySnapshot, ExistingUser

RULE = "the sandbox's rule"

# -- spaces around values and headers -------------------------------------------------


def test_spaces_around_values_are_trimmed_and_said_once_per_column() -> None:
    v = run(feed(" a@x.com ,Ann\t, Lee", "b@x.com,\u00a0Bo\u2003,Ray", "c@x.com,Cy,Dee", header=H))
    assert found(v) == {("VALUE_WHITESPACE", None)}
    by_column = {f.column: f for f in v.report.findings}
    assert set(by_column) == {"email", "first_name", "last_name"}
    assert by_column["first_name"].message.startswith('2 values in "first_name" have spaces before or after '
                                                      "them (rows 2, 3)")
    assert by_column["email"].value == " a@x.com " and RULE in by_column["email"].message
    assert applied(v)[2] == {"email": "a@x.com", "first_name": "Ann", "last_name": "Lee"}
    assert applied(v)[3]["first_name"] == "Bo"


def test_an_address_with_spaces_around_it_is_the_same_user_as_without() -> None:
    v = run(feed("a@x.com,A,B", " A@x.com,C,D"))
    assert found(v) == {("EMAIL_DUPLICATE", 2), ("EMAIL_DUPLICATE", 3), ("VALUE_WHITESPACE", None)}
    known = DirectorySnapshot(users=(ExistingUser(email="boss@x.com"),))
    v = run(feed("a@x.com,A,B,boss@x.com ", header=f"{H},manager_email"), directory=known)
    assert found(v) == {("VALUE_WHITESPACE", None)}  # the manager is found once trimmed


def test_spaces_inside_a_value_are_kept() -> None:
    v = run(feed('a@x.com,"Ann Marie",B', "b b@x.com,C,D"))
    assert found(v) == {("EMAIL_INVALID", 3)}
    assert applied(v)[2]["first_name"] == "Ann Marie"


def test_spaces_around_a_header_are_trimmed_with_a_warning() -> None:
    v = run(feed("a@x.com,A,B", header="email ,first_name,last_name"))
    (f,) = v.report.findings
    assert (f.code, f.severity, f.column, f.value) == ("HEADER_WHITESPACE", "warning", "email", "email ")
    assert RULE in f.message
    assert applied(v)[2] == {"email": "a@x.com", "first_name": "A", "last_name": "B"}


def test_a_big_file_with_spaces_reads_the_same_on_every_path() -> None:
    """Over the parallel threshold (4 MB): the C pass sends every spaced cell
    to the exact rules, which trim it as the small-file path does."""
    body = [f"u{i}@x.com,First{i},Last{i},{i:06d},{'u0@x.com' if i else ''}" for i in range(120_000)]
    body[50_000] = " u50000@x.com,First , Last,  050000 ,u0@x.com "
    body[90_000] = "u90000@x.com,\u00a0F,L\u3000,090000,u0@x.com"
    data = feed(*body, header=f"{H},employee_id,manager_email").encode()
    assert len(data) > 4 << 20
    v = validate(data, Context(), name="big.csv")
    rows = {(f.column, f.message.split(" (")[1].split(")")[0]) for f in v.report.findings}
    assert found(v) == {("VALUE_WHITESPACE", None)}
    assert rows == {("email", "row 50002"), ("first_name", "rows 50002, 90002"),
                    ("last_name", "rows 50002, 90002"), ("employee_id", "row 50002"),
                    ("manager_email", "row 50002")}
    got = {a.row: dict(a.values) for a in v.applicable() if a.row in (50_002, 90_002)}
    assert got[50_002] == {"email": "u50000@x.com", "first_name": "First", "last_name": "Last",
                           "employee_id": "050000", "manager_email": "u0@x.com"}
    assert got[90_002]["first_name"] == "F" and got[90_002]["last_name"] == "L"


# -- quoted local parts -----------------------------------------------------------------


def test_a_quoted_local_part_is_valid_with_a_notice() -> None:
    v = run(feed('"""ann lee""@x.com",A,B', '"""a@b""@x.com",C,D', '"""ann""@nodot",E,F'))
    assert found(v) == {("EMAIL_QUOTED_LOCAL", 2), ("EMAIL_QUOTED_LOCAL", 3), ("EMAIL_INVALID", 4)}
    (_, _, text), _ = only(v, "EMAIL_QUOTED_LOCAL")
    assert "unusual" in text and RULE in text
    assert applied(v)[2]["email"] == '"ann lee"@x.com'


# -- nested JSON values -------------------------------------------------------------------


def test_a_nested_json_value_costs_the_value_in_an_optional_field_and_the_entry_in_a_required_one() -> None:
    doc = [
        {"email": "a@x.com", "first_name": "A", "last_name": "B", "title": ["x"], "location": "Rome"},
        {"email": {"work": "b@x.com"}, "first_name": "C", "last_name": "D"},
        {"email": "c@x.com", "first_name": "E", "last_name": "F", "unknown": {"a": 1}},
    ]
    v = run(json.dumps(doc))
    assert found(v) == {("JSON_VALUE_NESTED", 2), ("JSON_ENTRY_INVALID", 3), ("CUSTOM_KEY_UNDEFINED", None),
                        ("JSON_KEYS_DIFFER", None)}  # a column not processed: its nested value costs nothing
    (row, column, text), = only(v, "JSON_VALUE_NESTED")
    assert (row, column) == (2, "title") and RULE in text
    assert applied(v)[2] == {"email": "a@x.com", "first_name": "A", "last_name": "B", "location": "Rome"}
    assert 3 not in applied(v) and v.report.skipped == 1
    assert "required field 'email'" in only(v, "JSON_ENTRY_INVALID")[0][2]


# -- a date in the other day/month order ------------------------------------------------

DATES = f"{H},deactivation_date"


def test_a_date_readable_only_day_first_is_read_so_in_a_month_first_tenant() -> None:
    v = run(feed("a@x.com,A,B,13/01/2031", header=DATES), locale="en-US")
    ((row, _, text),) = only(v, "DATE_OTHER_ORDER")
    assert row == 2 and "can only be read day first: 13 January 2031" in text and RULE in text
    assert applied(v)[2]["deactivation_date"] == "2031-01-13"


def test_it_is_a_warning_when_the_column_also_holds_ambiguous_dates() -> None:
    v = run(feed("a@x.com,A,B,03/04/2031", "b@x.com,C,D,13/01/2031", header=DATES), locale="en-US")
    assert found(v) == {("DATE_AMBIGUOUS", 2), ("DATE_ORDER_MIXED", 3)}
    ((_, _, text),) = only(v, "DATE_ORDER_MIXED")
    assert 'row 2: "03/04/2031"' in text and "mixes conventions" in text
    mixed = next(f for f in v.report.findings if f.code == "DATE_ORDER_MIXED")
    assert mixed.severity == "warning"
    assert [applied(v)[r]["deactivation_date"] for r in (2, 3)] == ["2031-03-04", "2031-01-13"]
    v = run(feed("a@x.com,A,B,03/04/2031", "b@x.com,C,D,04/13/2031", header=DATES), locale="en-GB")
    assert found(v) == {("DATE_AMBIGUOUS", 2), ("DATE_ORDER_MIXED", 3)}


# -- ids and emails another directory user holds ------------------------------------------

ADA = ExistingUser(email="ada@x.com", employee_id="17")
GRACE = ExistingUser(email="grace@x.com", employee_id="42")


def test_identity_by_email_an_id_another_user_holds_is_refused_on_that_field() -> None:
    known = DirectorySnapshot(users=(ADA, GRACE))
    v = run(feed("grace@x.com,G,H,17", "new@x.com,N,M,42", header=f"{H},employee_id"), directory=known)
    assert found(v) == {("EMPLOYEE_ID_TAKEN", 2), ("EMPLOYEE_ID_TAKEN", 3)}
    assert RULE in only(v, "EMPLOYEE_ID_TAKEN")[0][2]
    changes = {c["email"]: c["fields"] for c in v.plan["changes"]}  # type: ignore[union-attr]
    assert set(changes["grace@x.com"]) == {"first_name", "last_name"}  # the rest applies
    # Freed by its holder's own row in the same file: no finding, whatever the order.
    v = run(feed("grace@x.com,G,H,17", "ada@x.com,A,L,99", header=f"{H},employee_id"), directory=known)
    assert found(v) == set()


def test_identity_by_id_an_address_another_active_user_holds_is_refused() -> None:
    header = f"{H},employee_id,manager_id"
    known = DirectorySnapshot(users=(ADA, GRACE))
    v = run(feed("ada@x.com,A,B,99,", header=header), directory=known)
    ((row, column, text),) = only(v, "EMAIL_TAKEN")
    assert (row, column) == (2, "email") and text.startswith(messages.SHARED_EMAIL) and RULE in text
    assert v.report.skipped == 1
    # Ada's own row moves her to another address: free.
    v = run(feed("ada@x.com,A,B,99,", "ada.l@x.com,A,L,17,", header=header), directory=known)
    assert found(v) == set()
    # A deactivated holder does not count; a holder without an id yet is the same user.
    known = DirectorySnapshot(users=(ExistingUser(email="ada@x.com", employee_id="17", active=False),
                                     ExistingUser(email="bo@x.com")))
    v = run(feed("ada@x.com,A,B,99,", "bo@x.com,B,O,7,", header=header), directory=known)
    assert found(v) == set()


def test_what_validate_predicts_for_taken_ids_and_emails_is_what_an_upload_does(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "sandbox.db")
    clock = Clock(fixed=dt.datetime(2026, 3, 15, 9, 0, tzinfo=dt.UTC))
    with store.transaction(conn):
        tenant = tenants.add(conn, name="acme", username="acme", password="pw",
                             created_at="2026-01-01T00:00:00+00:00")
    seed = feed("ada@x.com,Ada,L,17", "grace@x.com,Grace,H,42", header=f"{H},employee_id").encode()
    process(conn, data_dir=tmp_path, tenant=tenant, name="seed.csv", data=seed, clock=clock,
            source=Source.FILE, label="seed", termination_limit=0.2)
    for body in (feed("grace@x.com,G,H,17", header=f"{H},employee_id"),
                 feed("ada@x.com,A,B,99,", "grace@x.com,G,H,42,17", header=f"{H},employee_id,manager_id")):
        known = snapshot(stored_state(conn, "acme"))
        predicted = validate(body.encode(), Context(directory=known), name="f.csv").report.to_dict()
        report = process(conn, data_dir=tmp_path, tenant=tenant, name="users_20260315.csv",
                         data=body.encode(), clock=clock, source=Source.FILE, label="f",
                         termination_limit=0.2).report
        assert report["findings"] == predicted["findings"] and report["rows"] == predicted["rows"]
        assert report["findings"]  # each body has its finding
    conn.close()


# -- engage -------------------------------------------------------------------------------------


def test_engage_dimension_keys_may_have_capitals() -> None:
    v = run(feed("a@x.com,CC-1,x", header="email,CostCenter,costcenter"), profile=Profile.ENGAGE,
            custom_keys=frozenset({"CostCenter"}))
    assert found(v) == {("DIMENSION_KEY_CAPITALS", None), ("HEADER_CASE", None)}
    assert applied(v)[2] == {"email": "a@x.com", "CostCenter": "CC-1"}
    with pytest.raises(ValueError, match="capitals are for engage"):
        Context.from_dict({"profile": "core", "custom_keys": ["CostCenter"]})
    engage = Context.from_dict({"profile": "engage", "custom_keys": ["CostCenter"]})
    assert engage.custom_keys == {"CostCenter"}


def _engage_state(n: int) -> tuple[Context, object]:
    state = seeded(*(user(f"u{i}@x.com") for i in range(n)))
    return Context(profile=Profile.ENGAGE, directory=snapshot(state)), state


@pytest.mark.parametrize(("kept", "code"), [(9, "TERMINATIONS"), (7, "TERMINATION_LIMIT")])
def test_engage_terminations_are_said_up_front_as_an_upload_says_them(kept: int, code: str) -> None:
    context, state = _engage_state(10)
    body = feed(*(f"u{i}@x.com,F,L" for i in range(kept)))
    v = validate(body.encode(), context, name="employees.csv")
    (predicted,) = v.report.findings
    assert predicted.code == code and predicted.row is None
    share = f"{10 - kept} of the 10 active users"
    assert share in predicted.message
    outcome, _ = apply_run(state, apply_rows(*(user(f"u{i}@x.com") for i in range(kept))),  # type: ignore[arg-type]
                           profile=Profile.ENGAGE, termination_limit=0.2)
    (issue,) = outcome.findings
    assert (issue.code, issue.message) == (predicted.code, predicted.message)
    if code == "TERMINATION_LIMIT":
        assert "setting engage_termination_limit" in predicted.message and outcome.refused
        assert str(v.report.verdict) == "rejected"


def test_the_termination_limit_of_a_context_and_its_default() -> None:
    assert Context().engage_termination_limit == 0.20  # on by default, like Okta's 20 %
    context = Context.from_dict({"profile": "engage", "engage_termination_limit": 0.5,
                                 "directory": {"users": [{"email": f"u{i}@x.com"} for i in range(10)]}})
    v = validate(feed(*(f"u{i}@x.com,F,L" for i in range(7))).encode(), context, name="e.csv")
    assert found(v) == {("TERMINATIONS", None)}
    with pytest.raises(ValueError, match="engage_termination_limit"):
        Context.from_dict({"engage_termination_limit": 2})
