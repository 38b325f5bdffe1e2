"""The validator's rules, one behaviour per test (docs/production.md §3, §4; docs/validation.md)."""

from __future__ import annotations

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
from bwsandbox.spec.codes import Severity
from bwsandbox.spec.fields import Profile
from bwsandbox.validator import (
    DirectorySnapshot,
    ExistingUser,
)

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
    # Updates apply; the empty required cell is said, and the stored value kept.
    assert found(v) == {("REQUIRED_VALUE_KEPT", 2), ("REQUIRED_VALUE_KEPT", 3)}
    assert {f.severity for f in v.report.findings} == {Severity.WARNING}
    assert applied(v)[2] == {"email": "a@x.com", "last_name": "B"}  # a required field is never cleared


DATES = "email,first_name,last_name,deactivation_date"


@pytest.mark.parametrize(
    ("value", "locale", "iso", "code"),
    [
        ("12/31/2027", "en-US", "2027-12-31", None),
        ("31/12/2027", "en-US", "2027-12-31", "DATE_OTHER_ORDER"),  # docs/production.md §6: read day first
        ("12/31/2027", "en-GB", "2027-12-31", "DATE_OTHER_ORDER"),
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
    # " Yes " is trimmed (docs/production.md §6)
    assert found(v) == {("BOOLEAN_INVALID", 6), ("VALUE_WHITESPACE", None)}
    got = applied(v)
    assert [got[r].get("on_leave") for r in range(2, 7)] == ["true", "false", "true", "true", None]


def test_excel_damage_in_employee_ids() -> None:
    rows = ["a@x.com,A,B,'00017", "b@x.com,C,D,1.23E+13", "c@x.com,E,F,000019", "d@x.com,G,H,20"]
    v = run(feed(*rows, header=f"{H},employee_id"))
    assert found(v) == {("EMPLOYEE_ID_APOSTROPHE", 2), ("EXCEL_SCIENTIFIC", 3), ("LEADING_ZEROS_LOST", 5)}
    assert applied(v)[2]["employee_id"] == "00017"


def test_values_are_not_changed_by_the_reader() -> None:
    """polars must not drop leading zeros or turn empty into missing; spaces
    around a value are trimmed on purpose (docs/production.md §6), and said."""
    rows = ['a@x.com, Ann ,B,007,"  "', 'b@x.com,C,D,0000,""', "c@x.com,E,F,00,x"]
    v = run(feed(*rows, header=f"{H},employee_id,title"))
    assert found(v) == {("VALUE_WHITESPACE", None)}
    got = applied(v)
    assert got[2]["first_name"] == "Ann" and got[2]["employee_id"] == "007"
    assert got[2]["title"] == ""  # whitespace only is an empty cell: it clears [decided]
    assert got[3]["employee_id"] == "0000" and got[3]["title"] == ""
    assert got[4] == {
        "email": "c@x.com",
        "first_name": "E",
        "last_name": "F",
        "employee_id": "00",
        "title": "x",
    }
