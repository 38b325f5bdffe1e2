"""The validator's rules, one behaviour per test (issue #2; SPEC §3, §4, §6)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bwsandbox.spec import messages
from bwsandbox.spec.fields import Profile
from bwsandbox.validator import (
    Context,
    DirectorySnapshot,
    ExistingUser,
    Validation,
    error_csv,
    report_json,
    validate,
)

H = "email,first_name,last_name"


def run(text: str | bytes, **context: object) -> Validation:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return validate(data, Context(**context), name="t.csv")  # type: ignore[arg-type]


def found(v: Validation) -> set[tuple[str, int | None]]:
    return {(f.code, f.row) for f in v.report.findings}


def codes(v: Validation) -> set[str]:
    return {f.code for f in v.report.findings}


def only(v: Validation, code: str) -> list[tuple[int | None, str | None, str]]:
    return [(f.row, f.column, f.message) for f in v.report.findings if f.code == code]


def applied(v: Validation) -> dict[int, dict[str, str]]:
    return {r.row: dict(r.values) for r in v.applicable()}


def feed(*rows: str, header: str = H) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


# --- format and encoding --------------------------------------------------------


def test_empty_and_whitespace_files_are_rejected_as_empty() -> None:
    for data in (b"", b"  \r\n"):
        v = run(data)
        assert codes(v) == {"EMPTY_FILE"} and v.report.verdict == "rejected"


def test_a_workbook_is_not_text() -> None:
    assert codes(run(b"PK\x03\x04rest-of-zip")) == {"NOT_TEXT"}


def test_utf16_is_recognised_and_rejected() -> None:
    v = run(feed("a@x.com,A,B").encode("utf-16"))
    assert codes(v) == {"ENCODING_UTF16"} and v.report.verdict == "rejected"


def test_cp1252_is_read_with_a_warning_and_values_survive() -> None:
    v = run(feed("jose@x.com,José,Müller").encode("cp1252"))
    assert codes(v) == {"ENCODING_CP1252"}
    assert applied(v)[2]["first_name"] == "José"
    assert v.report.verdict == "accepted"


def test_bytes_invalid_in_both_utf8_and_cp1252_are_rejected() -> None:
    assert "ENCODING_INVALID" in codes(run(feed("a@x.com,A\x81,B").encode("latin-1")))


def test_utf8_bom_is_stripped_so_the_first_header_is_recognised() -> None:
    v = run(b"\xef\xbb\xbf" + feed("a@x.com,A,B").encode())
    assert codes(v) == {"BOM_PRESENT"}
    assert applied(v)[2]["email"] == "a@x.com"


def test_json_is_detected_from_content_not_extension() -> None:
    data = json.dumps([{"email": "a@x.com", "first_name": "A", "last_name": "B", "on_leave": True}])
    v = run(data)
    assert v.report.findings == ()
    assert applied(v) == {2: {"email": "a@x.com", "first_name": "A", "last_name": "B", "on_leave": "true"}}


def test_json_missing_key_leaves_the_field_alone_and_null_clears_it() -> None:
    data = json.dumps(
        [
            {"email": "a@x.com", "first_name": "A", "last_name": "B", "title": "CEO"},
            {"email": "b@x.com", "first_name": "C", "last_name": "D", "title": None},
            {"email": "c@x.com", "first_name": "E", "last_name": "F"},
        ]
    )
    v = run(data)
    assert codes(v) == {"JSON_KEYS_DIFFER"}
    rows = applied(v)
    assert rows[2]["title"] == "CEO" and rows[3]["title"] == "" and "title" not in rows[4]


@pytest.mark.parametrize(
    ("data", "code"),
    [("[{", "JSON_MALFORMED"), ('{"email": "a@x.com"}', "JSON_NOT_ARRAY"), ("[1]", "JSON_ENTRY_INVALID")],
)
def test_bad_json(data: str, code: str) -> None:
    assert code in codes(run(data))


# --- dialect and structure ------------------------------------------------------------


def test_semicolon_file_is_rejected_and_says_so() -> None:
    v = run(feed("a@x.com;A;B", header="email;first_name;last_name"))
    assert codes(v) == {"DELIMITER_SEMICOLON"}
    assert "semicolon" in v.report.findings[0].message and v.report.verdict == "rejected"


def test_tab_file_is_rejected() -> None:
    assert codes(run(feed("a@x.com\tA\tB", header="email\tfirst_name\tlast_name"))) == {"DELIMITER_OTHER"}


def test_crlf_and_lf_give_the_same_report() -> None:
    text = feed("a@x.com,A,B", "bad,C,D")
    crlf = run(text).report.to_dict()
    lf = run(text.replace("\r\n", "\n")).report.to_dict()
    assert crlf["findings"] == lf["findings"] and crlf["verdict"] == lf["verdict"]


def test_mixed_line_endings_are_a_notice() -> None:
    assert "MIXED_LINE_ENDINGS" in codes(run(H + "\r\na@x.com,A,B\nb@x.com,C,D\r\n"))


def test_rows_are_counted_in_records_not_lines() -> None:
    text = feed('a@x.com,"Ann\nMarie",B', '"b@x.com",C,"Smith, Jr"', "bad,E,F")
    v = run(text)
    assert found(v) == {("EMAIL_INVALID", 4)}
    rows = applied(v)
    assert rows[2]["first_name"] == "Ann\nMarie" and rows[3]["last_name"] == "Smith, Jr"


def test_ragged_rows_are_skipped_with_the_cell_count() -> None:
    v = run(feed("a@x.com,A", "b@x.com,C,D,E", "c@x.com,F,G"))
    assert found(v) == {("ROW_TOO_FEW_CELLS", 2), ("ROW_TOO_MANY_CELLS", 3)}
    assert set(applied(v)) == {4}
    assert v.report.total == 3 and v.report.skipped == 2 and v.report.valid == 1


def test_a_comma_inside_quotes_is_not_a_cell_boundary() -> None:
    v = run(feed('a@x.com,"A, the first",B'))
    assert v.report.findings == ()


def test_blank_rows_are_ignored_and_not_counted() -> None:
    v = run(feed("a@x.com,A,B", ",,", "", "b@x.com,C,D"))
    assert found(v) == {("ROW_BLANK", 3), ("ROW_BLANK", 4)}
    assert v.report.total == 2 and v.report.valid == 2 and str(v.report.verdict) == "accepted"


def test_unclosed_quote_rejects_the_file_at_the_row_it_opens() -> None:
    v = run(feed("a@x.com,A,B", 'b@x.com,"C,D', "c@x.com,E,F"))
    assert found(v) == {("UNCLOSED_QUOTE", 3)} and v.report.verdict == "rejected"


def test_stray_quote_is_read_as_the_csv_module_reads_it() -> None:
    v = run(feed('a@x.com,Ann "Jr",B', "bad,C,D"))
    assert found(v) == {("STRAY_QUOTE", 2), ("EMAIL_INVALID", 3)}
    assert applied(v)[2]["first_name"] == 'Ann "Jr"'


def test_header_only_file_has_no_data_rows() -> None:
    assert codes(run(H + "\r\n")) == {"NO_DATA_ROWS"}


# --- header ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "hint"),
    [
        ("FirstName", "first_name"),
        ("E-mail", "email"),
        ("Surname", "last_name"),
        ("work_email", "email"),
        ("supervisor_email", "manager_email"),
        ("frist_name", "first_name"),
    ],
)
def test_unknown_header_is_not_processed_with_a_did_you_mean(header: str, hint: str) -> None:
    v = run(feed("a@x.com,A,B,x", header=f"{H},{header}"))
    [(row, column, message)] = only(v, "HEADER_UNKNOWN")
    assert row is None and column == header and f'Did you mean "{hint}"' in message
    assert header not in applied(v)[2]


def test_hire_date_says_there_is_no_such_column() -> None:
    [(_, _, message)] = only(run(feed("a@x.com,A,B,x", header=f"{H},hire_date")), "HEADER_UNKNOWN")
    assert "no hire date column" in message


def test_duplicate_and_missing_required_columns_reject_the_file() -> None:
    assert run(feed("a@x.com,A,B,a@x.com", header=f"{H},email")).report.verdict == "rejected"
    v = run(feed("A,B", header="first_name,last_name"))
    assert codes(v) == {"HEADER_REQUIRED_MISSING"} and v.report.verdict == "rejected"
    assert v.report.total == 1 and v.report.skipped == 1


def test_defined_custom_key_is_processed_and_undefined_one_is_not() -> None:
    text = feed("a@x.com,A,B,CC1", header=f"{H},cost_center")
    assert codes(run(text)) == {"CUSTOM_KEY_UNDEFINED"}
    v = run(text, custom_keys=frozenset({"cost_center"}))
    assert v.report.findings == () and applied(v)[2]["cost_center"] == "CC1"


def test_engage_headers_are_case_sensitive_and_only_email_is_required() -> None:
    v = run(feed("a@x.com,A", header="Email,first_name"), profile=Profile.ENGAGE)
    assert codes(v) == {"HEADER_CASE", "HEADER_REQUIRED_MISSING"}
    v = run(feed("a@x.com,+15551234567", header="email,mobile"), profile=Profile.ENGAGE)
    assert v.report.findings == ()


# --- values ----------------------------------------------------------------------------


def test_missing_email_uses_production_wording() -> None:
    assert only(run(feed(",A,B")), "EMAIL_REQUIRED") == [(2, "email", messages.EMAIL_REQUIRED)]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("ann.example.com", "no @"),
        ("ann@@x.com", "more than one @"),
        ("ann@example", "has no dot"),
        ("ann smith@x.com", "space"),
        ("ann..b@x.com", "dot"),
        ("ann@x.c", "top-level"),
        ("a@x.com;b@x.com", "one address per cell"),
    ],
)
def test_invalid_email_says_precisely_why(address: str, reason: str) -> None:
    [(row, _, message)] = only(run(feed(f'"{address}",A,B')), "EMAIL_INVALID")
    assert row == 2 and reason in message


def test_unusual_but_valid_addresses_pass_the_slow_path() -> None:
    v = run(feed("o'neil+hr@sub.example.co.uk,A,B", "josé@exämple.de,C,D"))
    assert v.report.findings == ()


def test_length_limits_are_exact() -> None:
    ok = run(feed(f"a@x.com,{'F' * 254},{'L' * 150}"))
    assert ok.report.findings == ()
    v = run(feed(f"a@x.com,{'F' * 255},B", f"b@x.com,A,{'L' * 151}"))
    assert found(v) == {("VALUE_TOO_LONG", 2), ("VALUE_TOO_LONG", 3)}
    long_email = "a" * 60 + "@" + "b" * 190 + ".com"
    assert found(run(feed(f"{long_email},A,B"))) == {("EMAIL_TOO_LONG", 2)}


def test_names_are_required_to_create_but_not_to_update() -> None:
    text = feed("a@x.com,,B", "b@x.com,C,")
    assert found(run(text)) == {("REQUIRED_VALUE_MISSING", 2), ("REQUIRED_VALUE_MISSING", 3)}
    known = DirectorySnapshot(users=(ExistingUser(email="A@x.com"), ExistingUser(email="b@x.com")))
    v = run(text, directory=known)
    assert v.report.findings == ()
    assert applied(v)[2] == {"email": "a@x.com", "last_name": "B"}  # a required field is never cleared


DATES = "email,first_name,last_name,deactivation_date"


@pytest.mark.parametrize(
    ("value", "locale", "iso", "code"),
    [
        ("12/31/2027", "en-US", "2027-12-31", None),
        ("31/12/2027", "en-US", "2027-12-31", None),
        ("2027/01/15", "en-GB", "2027-01-15", None),
        ("03/04/2027", "en-US", "2027-03-04", "DATE_AMBIGUOUS"),
        ("03/04/2027", "en-GB", "2027-04-03", "DATE_AMBIGUOUS"),
        ("05/05/2027", "en-GB", "2027-05-05", None),
        ("2027-03-04", "en-US", "2027-03-04", "DATE_ISO"),
        ("", "en-US", "", None),
    ],
)
def test_dates_are_normalised_to_iso(value: str, locale: str, iso: str, code: str | None) -> None:
    v = run(feed(f"a@x.com,A,B,{value}", header=DATES), locale=locale)
    assert codes(v) == ({code} if code else set())
    assert applied(v)[2]["deactivation_date"] == iso


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("02/30/2027", "DATE_IMPOSSIBLE"),
        ("2027-13-01", "DATE_IMPOSSIBLE"),
        ("43952", "DATE_EXCEL_SERIAL"),
        ("soon", "DATE_INVALID"),
        ("3/4/27", "DATE_INVALID"),
    ],
)
def test_bad_dates_are_value_errors_and_the_row_still_applies(value: str, code: str) -> None:
    v = run(feed(f"a@x.com,A,B,{value}", header=DATES))
    assert found(v) == {(code, 2)}
    assert applied(v)[2] == {"email": "a@x.com", "first_name": "A", "last_name": "B"}
    assert v.report.verdict == "partial" and v.report.valid == 1


def test_booleans_accept_the_documented_spellings() -> None:
    rows = [f"u{i}@x.com,A,B,{b}" for i, b in enumerate(["TRUE", "no", "1", " Yes ", "maybe"])]
    v = run(feed(*rows, header=f"{H},on_leave"))
    assert found(v) == {("BOOLEAN_INVALID", 6)}
    got = applied(v)
    assert [got[r].get("on_leave") for r in range(2, 7)] == ["true", "false", "true", "true", None]


def test_excel_damage_in_employee_ids() -> None:
    rows = ["a@x.com,A,B,'00017", "b@x.com,C,D,1.23E+13", "c@x.com,E,F,000019", "d@x.com,G,H,20"]
    v = run(feed(*rows, header=f"{H},employee_id"))
    assert found(v) == {("EMPLOYEE_ID_APOSTROPHE", 2), ("EXCEL_SCIENTIFIC", 3), ("LEADING_ZEROS_LOST", 5)}
    assert applied(v)[2]["employee_id"] == "00017"


def test_values_are_not_changed_by_the_reader() -> None:
    """polars must not trim, drop leading zeros or turn empty into missing."""
    rows = ['a@x.com, Ann ,B,007,"  "', 'b@x.com,C,D,0000,""', "c@x.com,E,F,00,x"]
    v = run(feed(*rows, header=f"{H},employee_id,title"))
    got = applied(v)
    assert got[2]["first_name"] == " Ann " and got[2]["employee_id"] == "007"
    assert got[2]["title"] == ""  # whitespace only is an empty cell: it clears [decided]
    assert got[3]["employee_id"] == "0000" and got[3]["title"] == ""
    assert got[4] == {
        "email": "c@x.com",
        "first_name": "E",
        "last_name": "F",
        "employee_id": "00",
        "title": "x",
    }


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
    assert "manager_email" not in applied(v)[4] and applied(v)[5]["manager_email"] == "A@X.COM"


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
    assert set(applied(v)) == {2} and v.report.verdict == "partial"
    assert run(text, directory=known, licenses_available=2).report.findings == ()


# --- department files ------------------------------------------------------------------------

D = "name,parent,is_active"


def test_department_file_is_recognised_by_its_header() -> None:
    v = run(feed("Company,,true", "Sales,Company,yes", header=D))
    assert v.report.kind == "departments" and v.report.findings == ()
    assert applied(v)[3] == {"name": "Sales", "parent": "Company", "is_active": "true"}


def test_department_rules() -> None:
    v = run(feed("Company,,true", "Sales,Commercial,true", "A,B,true", "B,A,true", ",Company,true", header=D))
    assert found(v) == {
        ("DEPARTMENT_PARENT_MISSING", 3),
        ("DEPARTMENT_CYCLE", 4),
        ("DEPARTMENT_CYCLE", 5),
        ("DEPARTMENT_NAME_REQUIRED", 6),
    }


def test_a_department_with_active_users_cannot_be_deactivated() -> None:
    known = DirectorySnapshot(users=(ExistingUser(email="a@x.com", department_name="sales"),))
    v = run(feed("Company,,true", "Sales,Company,false", header=D), directory=known)
    assert found(v) == {("DEPARTMENT_HAS_ACTIVE_USERS", 3)}
    known = DirectorySnapshot(users=(ExistingUser(email="a@x.com", department_name="Sales", active=False),))
    assert run(feed("Company,,true", "Sales,Company,false", header=D), directory=known).report.findings == ()


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
    assert ("REQUIRED_VALUE_MISSING", 3) in found(v) and set(applied(v)) == {2}


def test_old_mac_line_endings_are_read_as_records() -> None:
    v = run("email,first_name,last_name\ra@x.com,A,B\rbad,C,D\r")
    assert found(v) == {("EMAIL_INVALID", 3)}
    assert applied(v) == {2: {"email": "a@x.com", "first_name": "A", "last_name": "B"}}
