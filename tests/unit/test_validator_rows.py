"""The validator's rules across rows, department files, and the report
contract (docs/production.md §3, §4, §5)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from validator_helpers import (
    H,
    applied,
    codes,
    each_engine,  # noqa: F401  (autouse: every test runs on both engines)
    feed,
    found,
    only,
    run,
)

from bwsandbox.spec import messages
from bwsandbox.spec.fields import Profile
from bwsandbox.validator import (
    DirectorySnapshot,
    ExistingUser,
    error_csv,
    report_json,
)

# --- across rows -----------------------------------------------------------------------


def test_duplicate_emails_differing_in_case_flag_every_copy() -> None:
    v = run(feed("a@x.com,A,B", "b@x.com,C,D", "A@X.com,E,F"))
    assert only(v, "EMAIL_DUPLICATE") == [
        (2, "email", messages.SHARED_EMAIL),
        (4, "email", messages.SHARED_EMAIL),
    ]
    assert set(applied(v)) == {3}


def test_duplicate_employee_ids() -> None:
    v = run(feed("a@x.com,A,B,7", "b@x.com,C,D,7", header=f"{H},employee_id"))
    assert found(v) == {("EMPLOYEE_ID_DUPLICATE", 2), ("EMPLOYEE_ID_DUPLICATE", 3)}


MGR = f"{H},manager_email"


def test_manager_rules_use_production_wording() -> None:
    v = run(
        feed(
            "a@x.com,A,B,",
            "b@x.com,C,D,b@x.com",
            "c@x.com,E,F,Nobody@x.com",
            "d@x.com,G,H,A@X.COM",
            header=MGR,
        )
    )
    assert only(v, "MANAGER_SELF") == [(3, "manager_email", messages.OWN_MANAGER)]
    assert only(v, "MANAGER_NOT_FOUND") == [(4, "manager_email", messages.manager_not_found("Nobody@x.com"))]
    assert codes(v) == {"MANAGER_SELF", "MANAGER_NOT_FOUND"}
    changes = {c["email"]: c["fields"] for c in v.plan["changes"]}  # type: ignore[union-attr]
    assert "manager_email" not in changes["c@x.com"]
    assert changes["d@x.com"]["manager_email"] == ["", "A@X.COM"]


def test_manager_in_the_directory_resolves() -> None:
    text = feed("a@x.com,A,B,boss@x.com", header=MGR)
    assert codes(run(text)) == {"MANAGER_NOT_FOUND"}
    assert (
        run(text, directory=DirectorySnapshot(users=(ExistingUser(email="Boss@x.com"),))).report.findings
        == ()
    )


def test_a_manager_whose_own_row_is_skipped_is_not_found() -> None:
    v = run(feed("a@x.com,,B,", "b@x.com,C,D,a@x.com", header=MGR))
    assert found(v) == {("REQUIRED_VALUE_MISSING", 2), ("MANAGER_NOT_FOUND", 3)}


def test_manager_cycles_flag_every_member_and_nothing_else() -> None:
    rows = [
        "top@x.com,T,T,",
        "a@x.com,A,A,b@x.com",
        "b@x.com,B,B,c@x.com",
        "c@x.com,C,C,a@x.com",
        "d@x.com,D,D,a@x.com",
    ]
    v = run(feed(*rows, header=MGR))
    assert found(v) == {("MANAGER_CYCLE", 3), ("MANAGER_CYCLE", 4), ("MANAGER_CYCLE", 5)}
    assert all(f.row in applied(v) for f in v.report.findings)  # value error: rows still apply


def test_identity_is_the_employee_id_when_both_id_columns_are_present() -> None:
    header = f"{H},employee_id,manager_id"
    v = run(
        feed("a@x.com,A,B,E1,", "b@x.com,C,D,E2,E1", "c@x.com,E,F,E3,E9", "d@x.com,G,H,,E1", header=header)
    )
    assert found(v) == {("MANAGER_NOT_FOUND", 4), ("REQUIRED_VALUE_MISSING", 5)}
    assert only(v, "MANAGER_NOT_FOUND")[0][2] == "Could not find manager id: E9"


def test_employee_id_letter_case_must_match_the_directory() -> None:
    known = DirectorySnapshot(users=(ExistingUser(email="a@x.com", employee_id="AB12"),))
    v = run(feed("a@x.com,A,B,ab12", header=f"{H},employee_id"), directory=known)
    assert found(v) == {("EMPLOYEE_ID_CASE", 2)}
    v = run(feed("a@x.com,A,B,XY99", header=f"{H},employee_id"), directory=known)
    assert v.report.findings == ()  # core: an id may change


def test_engage_employee_id_is_immutable() -> None:
    known = DirectorySnapshot(users=(ExistingUser(email="a@x.com", employee_id="AB12"),))
    v = run(feed("a@x.com,XY99", header="email,employee_id"), directory=known, profile=Profile.ENGAGE)
    assert found(v) == {("EMPLOYEE_ID_CHANGED", 2)}


def test_licence_limit_refuses_every_creation_and_keeps_updates() -> None:
    known = DirectorySnapshot(users=(ExistingUser(email="a@x.com"),))
    text = feed("a@x.com,A,B", "b@x.com,C,D", "c@x.com,E,F")
    v = run(text, directory=known, licenses_available=1)
    assert only(v, "LICENSE_LIMIT") == [
        (3, None, messages.license_limit(2, 1)),
        (4, None, messages.license_limit(2, 1)),
    ]
    assert [c["row"] for c in v.plan["changes"]] == [2] and v.report.verdict == "partial"  # type: ignore[union-attr]
    assert run(text, directory=known, licenses_available=2).report.findings == ()


# --- department files ------------------------------------------------------------------------

D = "name,parent,is_active"
MANUAL = ("DEPARTMENT_FILE_MANUAL", None)  # docs/production.md §3: every department file gets this notice


def test_a_department_file_says_production_may_want_it_uploaded_manually() -> None:
    (notice,) = run(feed("Company,,true", header=D)).report.findings
    assert (notice.code, notice.severity, notice.row) == ("DEPARTMENT_FILE_MANUAL", "notice", None)
    assert "uploaded manually" in notice.message and "the sandbox's rule" in notice.message


def test_department_file_is_recognised_by_its_header() -> None:
    v = run(feed("Company,,true", "Sales,Company,yes", header=D))
    assert v.report.kind == "departments" and found(v) == {MANUAL}
    assert applied(v)[3] == {"name": "Sales", "parent": "Company", "is_active": "true"}


def test_department_rules() -> None:
    v = run(feed("Company,,true", "Sales,Commercial,true", "A,B,true", "B,A,true", ",Company,true", header=D))
    assert found(v) == {
        ("DEPARTMENT_PARENT_MISSING", 3),
        ("DEPARTMENT_CYCLE", 4),
        ("DEPARTMENT_CYCLE", 5),
        ("DEPARTMENT_NAME_REQUIRED", 6),
        MANUAL,
    }


def test_a_department_with_active_users_cannot_be_deactivated() -> None:
    known = DirectorySnapshot(users=(ExistingUser(email="a@x.com", department_name="sales"),))
    v = run(feed("Company,,true", "Sales,Company,false", header=D), directory=known)
    assert found(v) == {("DEPARTMENT_HAS_ACTIVE_USERS", 3), MANUAL}
    assert [(f.column, f.value) for f in v.report.findings if f.row] == [("is_active", "false")]
    # Only the deactivation is refused: the rest of the row (its parent) applies.
    sales = [(d.after.parent, d.after.active) for d in v.outcome.departments if d.row == 3]
    assert sales == [("Company", True)]
    known = DirectorySnapshot(users=(ExistingUser(email="a@x.com", department_name="Sales", active=False),))
    assert found(run(feed("Company,,true", "Sales,Company,false", header=D), directory=known)) == {MANUAL}


# --- the report, the error file, determinism ------------------------------------------------


def test_report_json_is_the_contract_and_byte_identical() -> None:
    text = feed("bad,A,B", "a@x.com,,B", "b@x.com,C,D")
    first, second = report_json(run(text).report), report_json(run(text).report)
    assert first == second
    doc = json.loads(first)
    assert set(doc) == {"file", "profile", "sha256", "verdict", "rows", "findings"}
    assert doc["rows"] == {"total": 3, "valid": 1, "skipped": 2} and doc["verdict"] == "partial"
    assert [f["row"] for f in doc["findings"]] == [2, 3]
    assert set(doc["findings"][0]) == {"code", "severity", "row", "column", "value", "message"}


def test_findings_are_sorted_file_first_then_by_row() -> None:
    v = run(feed("bad,A,B", "worse,C,D", header=f"{H},Surname"))
    keys = [f.sort_key() for f in v.report.findings]
    assert keys == sorted(keys) and v.report.findings[0].row is None


def test_error_file_has_original_cells_row_status_and_errors() -> None:
    v = run(feed('bad,"Ann, Jr",B', "a@x.com,C,D", "b@x.com,E,F,G"))
    rows = list(csv.reader(io.StringIO(error_csv(v).decode("utf-8"))))
    assert rows[0] == ["email", "first_name", "last_name", "row", "status", "errors"]
    assert rows[1][:5] == ["bad", "Ann, Jr", "B", "2", "skipped"] and rows[1][5].startswith("EMAIL_INVALID: ")
    assert rows[2][:5] == ["b@x.com", "E", "F", "4", "skipped"]
    assert len(rows) == 3


def test_originals_hold_the_cells_of_flagged_rows_only() -> None:
    v = run(feed("a@x.com,A,B", "bad,C,D"))
    assert dict(v.originals) == {3: ("bad", "C", "D")}


def test_big_files_use_threads_and_give_the_same_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from bwsandbox.validator import engine

    rows = [f"u{i}@x.com,F{i},L{i},u{max(i - 1, 0) // 3}@x.com" for i in range(300)]
    rows[10] = "bad,F,L,"
    rows[20] = "u3@x.com,F,L,"
    rows[30] = "u31@x.com,A"
    text = feed(*rows, header=MGR)
    sequential = run(text).report.to_dict()
    monkeypatch.setattr(engine, "_PARALLEL_BYTES", 1)
    assert run(text).report.to_dict() == sequential
    assert run(text.encode("cp1252")).report.to_dict()["findings"] == sequential["findings"]


def test_a_big_cp1252_file_whose_records_are_read_again_is_no_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big file is first read as UTF-8 while a worker checks; a record decoded
    on the way (a flagged row, the csv-module path) must not end it in a traceback."""
    from bwsandbox.validator import engine

    rows = [f"u{i}@x.com,F{i},L{i}," for i in range(300)]
    rows[5] = "u5@x.com, Zoë,Lee,"  # a slow row, re-read by the csv module
    rows[9] = 'u9@x.com,Bad"quote,L,'  # the whole file on the csv-module path
    data = feed(*rows, header=MGR).encode("cp1252")
    sequential = run(data).report.to_dict()
    assert "ENCODING_CP1252" in {f["code"] for f in sequential["findings"]}
    monkeypatch.setattr(engine, "_PARALLEL_BYTES", 1)
    assert run(data).report.to_dict() == sequential


def test_reading_in_parts_gives_the_same_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from bwsandbox.validator import structure

    rows = [f'u{i}@x.com,"F{i}\nsecond line, with comma",L{i},u{max(i - 1, 0) // 3}@x.com' for i in range(60)]
    rows[7] = "bad,F,L,"
    rows[9] = "u3@x.com,F,L,u9@x.com"
    rows[30] = 'u30@x.com,"A ""quoted"" name",L,u2@x.com'
    text = feed(*rows, header=MGR)
    whole = run(text)
    monkeypatch.setattr(structure, "_PART_BYTES", 200)
    parts = run(text)
    assert parts.report.to_dict() == whole.report.to_dict()
    assert [dict(r.values) for r in parts.applicable()] == [dict(r.values) for r in whole.applicable()]
    assert dict(parts.originals) == dict(whole.originals)


def test_split_points_never_cut_a_quoted_newline() -> None:
    from bwsandbox.validator.structure import split_points

    text = b'h\n"a\nb\nc",1\nx,2\n"d\ne",3\ny,4\n'
    for parts in range(1, 8):
        ranges = split_points(text, 2, parts)
        assert ranges[0][0] == 2 and ranges[-1][1] == len(text)
        for a, b in ranges:
            chunk = text[a:b]
            assert chunk.count(b'"') % 2 == 0 and (b == len(text) or chunk.endswith(b"\n"))


def test_a_json_entry_without_a_name_cannot_create_a_user() -> None:
    data = json.dumps(
        [{"email": "a@x.com", "first_name": "A", "last_name": "B"}, {"email": "b@x.com", "last_name": "C"}]
    )
    v = run(data)
    assert ("REQUIRED_VALUE_MISSING", 3) in found(v)
    assert [c["row"] for c in v.plan["changes"]] == [2]  # type: ignore[union-attr]


def test_old_mac_line_endings_are_read_as_records() -> None:
    v = run("email,first_name,last_name\ra@x.com,A,B\rbad,C,D\r")
    assert found(v) == {("EMAIL_INVALID", 3)}
    assert applied(v) == {2: {"email": "a@x.com", "first_name": "A", "last_name": "B"}}


def test_keys_hashed_raw_on_the_fast_path_match_folded_keys_across_rows() -> None:
    # Plain lower-case addresses and ids without an apostrophe are hashed raw;
    # the others are folded first. Both kinds must meet as one key.
    hdr = f"{H},employee_id,manager_email"
    v = run(
        feed(
            "boss@x.com,B,B,'007,",
            "Ann@X.com,A,A,008,BOSS@x.com",
            "ann@x.com,C,C,007,boss@x.com",
            "tom@x.com,T,T,',Ann@x.com",
            "ÉVA@x.com,E,E,,éva@x.com",
            "Zed@X,Z,Z,009,",
            header=hdr,
        )
    )
    assert found(v) == {
        ("EMPLOYEE_ID_APOSTROPHE", 2),
        ("EMPLOYEE_ID_APOSTROPHE", 5),
        ("EMPLOYEE_ID_DUPLICATE", 2),
        ("EMPLOYEE_ID_DUPLICATE", 4),
        ("EMAIL_DUPLICATE", 3),
        ("EMAIL_DUPLICATE", 4),
        ("MANAGER_NOT_FOUND", 5),  # its manager's email is a duplicate, so that row is skipped
        ("MANAGER_SELF", 6),
        ("EMAIL_INVALID", 7),  # not plain: checked exactly on the slow path
    }
