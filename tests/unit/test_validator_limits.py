"""What one feed may cost the validator (docs/security.md "Limits",
"CSV injection"): a header wider than `max_columns` and a JSON feed over
`max_json_bytes` stop at once with one finding; formula-like values get a
warning, and the error file never hands a spreadsheet a formula."""

from __future__ import annotations

import csv
import io
import json

import pytest
from validator_helpers import each_engine, only  # noqa: F401  (autouse: every test runs on both engines)

from bwsandbox.validator import Context, error_csv, validate
from bwsandbox.validator import jsonfeed as jsonfeed_mod
from bwsandbox.validator.errorfile import error_file
from bwsandbox.validator.formulas import looks_like_formula, needs_prefix, safe_cell
from bwsandbox.validator.model import Limits

H = "email,first_name,last_name,title"


def run(data: bytes, **limits: int) -> object:
    return validate(data, Context(limits=Limits(**limits)), name="t.csv")


def codes(v: object) -> list[str]:
    return [f.code for f in v.report.findings]  # type: ignore[attr-defined]


# -- columns -------------------------------------------------------------------------------


def test_a_header_over_max_columns_stops_the_file_with_one_finding() -> None:
    header = ",".join(["email", "first_name", "last_name", *(f"x{i}" for i in range(50))])
    v = run(f"{header}\na@b.co,A,B{',' * 50}\n".encode(), max_columns=52)
    assert codes(v) == ["TOO_MANY_COLUMNS"]
    assert v.report.verdict == "rejected"  # type: ignore[attr-defined]
    assert "53 columns" in v.report.findings[0].message  # type: ignore[attr-defined]
    # At the limit it is read as usual (a column not processed: one finding each).
    v = run(f"{header}\na@b.co,A,B{',' * 50}\n".encode(), max_columns=53)
    assert "TOO_MANY_COLUMNS" not in codes(v) and len(codes(v)) == 50


def test_a_json_feed_with_more_keys_than_max_columns_stops_before_its_frame_is_built() -> None:
    entry = {"email": "a@b.co", "first_name": "A", "last_name": "B", **{f"k{i}": "" for i in range(20)}}
    v = run(json.dumps([entry]).encode(), max_columns=10)
    assert codes(v) == ["TOO_MANY_COLUMNS"]


def test_a_million_columns_cost_well_under_a_second_and_no_report_of_a_million_findings() -> None:
    header = ",".join(["email", "first_name", "last_name", *(f"c{i}" for i in range(1_000_000))])
    v = validate(f"{header}\na@b.co,A,B\n".encode(), Context(), name="wide.csv")
    assert codes(v) == ["TOO_MANY_COLUMNS"]
    assert len(error_csv(v)) < 1000


# -- JSON size -----------------------------------------------------------------------------


def test_a_json_feed_over_max_json_bytes_is_refused_unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> object:
        raise AssertionError("a JSON feed over the limit was parsed")

    monkeypatch.setattr(jsonfeed_mod, "_loads", never)
    entries = [{"email": f"{i}@b.co", "first_name": "A", "last_name": "B"} for i in range(10)]
    data = json.dumps(entries).encode()
    v = run(data, max_json_bytes=len(data) - 1)
    assert codes(v) == ["JSON_TOO_LARGE"]
    assert f"{len(data):,} bytes" in v.report.findings[0].message  # type: ignore[attr-defined]
    monkeypatch.undo()
    assert codes(run(data, max_json_bytes=len(data))) == []


def test_limits_come_from_a_context_file_and_are_checked() -> None:
    assert Context.from_dict({"limits": {"max_columns": 7}}).limits == Limits(max_columns=7)
    assert Context.from_dict({}).limits == Limits()
    for bad in ({"max_columns": 0}, {"max_rows": 3}, {"max_json_bytes": "big"}, []):
        with pytest.raises(ValueError, match="limits"):
            Context.from_dict({"limits": bad})


# -- formulas ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "prefixed", "warned"),
    [
        ("=1+2", True, True),
        ('=HYPERLINK("http://x","y")', True, True),
        ("@SUM(A1)", True, True),
        ("+cmd|' /C calc'!A0", True, True),
        ("-2+3+cmd|' /C calc'!A0", True, True),
        ("- none -", True, True),
        ("\t=1+2", True, True),
        ("\r=1+2", True, True),
        ("\tEngineer", True, False),  # OWASP prefixes any leading tab; only whitespace to warn about
        ("-5", False, False),
        ("+1 (555) 010-2345", False, False),
        ("-", False, False),
        ("Engineer", False, False),
        ("a=b", False, False),
        ("", False, False),
    ],
)
def test_what_counts_as_a_formula(cell: str, prefixed: bool, warned: bool) -> None:
    assert needs_prefix(cell) is prefixed
    assert safe_cell(cell) == ("'" + cell if prefixed else cell)
    assert looks_like_formula(cell) is warned


def _feed(*rows: str) -> bytes:
    return ("\r\n".join([H, *rows]) + "\r\n").encode()


def test_a_formula_in_a_processed_column_is_a_warning_on_its_row_and_still_applied() -> None:
    v = validate(_feed("a@b.co,A,B,Engineer", 'c@b.co,C,D,"=HYPERLINK(""http://x"",""y"")"',
                       "e@b.co,@E,F,+1 555"), Context(), name="t.csv")
    assert only(v, "VALUE_FORMULA") == [
        (3, "title", v.report.findings[0].message),
        (4, "first_name", v.report.findings[1].message),
    ]
    assert v.report.verdict == "accepted"
    applied = {r.row: dict(r.values) for r in v.applicable()}
    assert applied[3]["title"] == '=HYPERLINK("http://x","y")'  # docs/security.md [decided]: applied as sent


def test_a_quoted_signed_value_is_checked_whatever_follows_the_number() -> None:
    # A comma or a line end inside quotes does not end the cell: "-1,cmd|..." is not a number.
    v = validate(_feed('a@b.co,A,B,"-1,cmd|x!A0"', 'c@b.co,C,D,"-5"', 'e@b.co,E,F,"+1\nfoo"'), Context(),
                 name="t.csv")
    assert [(r, c) for r, c, _ in only(v, "VALUE_FORMULA")] == [(2, "title"), (4, "title")]


def test_formulas_in_unknown_columns_are_not_values_and_phones_are_not_formulas() -> None:
    v = validate(b"email,first_name,last_name,notes\r\na@b.co,A,B,=1+2\r\nc@b.co,C,-3,x\r\n", Context())
    assert only(v, "VALUE_FORMULA") == []


def test_formulas_are_found_on_the_csv_module_path_and_in_json() -> None:
    # A bare CR sends the file to the csv module's reading.
    v = validate(b"email,first_name,last_name\ra@b.co,=A,B\rc@b.co,C,D\r", Context())
    assert [(r, c) for r, c, _ in only(v, "VALUE_FORMULA")] == [(2, "first_name")]
    v = validate(json.dumps([{"email": "a@b.co", "first_name": "A", "last_name": "@B"}]).encode(), Context())
    assert [(r, c) for r, c, _ in only(v, "VALUE_FORMULA")] == [(2, "last_name")]


def test_the_error_file_never_hands_excel_a_formula() -> None:
    data = (b'email,first_name,last_name,=HYPERLINK("http://x")\r\n'
            b"not-an-email,=cmd|' /C calc'!A0,@SUM(1),-2+3\r\n"
            b"b@x.co,+1 555,\t=1,-4\r\n")
    rows = list(csv.reader(io.StringIO(error_csv(validate(data, Context())).decode())))
    header, first = rows[0], rows[2]  # rows[1]: the file-level line (the unknown header)
    assert header[3] == "'=HYPERLINK(\"http://x\")"
    # `-2+3` is arithmetic only (no letter: no function, reference or DDE), left as sent.
    assert first[:4] == ["not-an-email", "'=cmd|' /C calc'!A0", "'@SUM(1)", "-2+3"]
    cells = [c for r in rows for c in r]
    assert not [c for c in cells if needs_prefix(c)]


def test_the_error_file_stops_before_max_bytes_and_says_how_many_rows_it_left_out() -> None:
    findings = [{"code": "EMAIL_INVALID", "severity": "error", "row": r, "column": "email",
                 "value": "x", "message": "Invalid email address."} for r in range(2, 1002)]
    originals = dict.fromkeys(range(2, 1002), ("x" * 50, "A", "B"))
    header = ("email", "first_name", "last_name")
    full = error_file(header, originals, findings, rejected=False)
    cut = error_file(header, originals, findings, rejected=False, max_bytes=10_000)
    assert len(full) > 50_000 and len(cut) <= 10_000
    rows = list(csv.reader(io.StringIO(cut.decode())))
    assert rows[-1][4] == "truncated" and f"{1000 - (len(rows) - 2):,} more row(s)" in rows[-1][5]
    assert full.startswith(cut.rsplit(b"\r\n", 2)[0])  # the rows it keeps are the full file's first rows
