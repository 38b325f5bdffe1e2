"""JSON feed edge cases: empty array, duplicate keys, non-finite numbers,
numbers kept as written."""

from __future__ import annotations

from validator_helpers import each_engine  # noqa: F401  (autouse: every test runs on both engines)

from bwsandbox.validator import validate

BASE = '"email":"a@x.com","first_name":"A","last_name":"B"'


def _codes(doc: str) -> list[tuple[str, int | None]]:
    report = validate(doc.encode(), name="feed.json").report
    return [(f.code, f.row) for f in report.findings]


def test_an_empty_array_has_no_data_rows() -> None:
    assert _codes("[]") == [("NO_DATA_ROWS", None)]


def test_a_key_twice_in_one_object_skips_that_entry_only() -> None:
    doc = f'[{{{BASE}}}, {{{BASE.replace("a@x", "c@x")},"email":"d@x.com"}}]'
    report = validate(doc.encode(), name="feed.json").report
    assert [(f.code, f.row, f.column) for f in report.findings] == [("JSON_ENTRY_INVALID", 3, "email")]
    assert (report.valid, report.skipped) == (1, 1)


def test_nan_and_infinity_are_malformed_json() -> None:
    for constant in ("NaN", "Infinity", "-Infinity"):
        assert _codes(f'[{{{BASE},"employee_id":{constant}}}]') == [("JSON_MALFORMED", None)]


def test_numbers_are_kept_as_written() -> None:
    validation = validate(f'[{{{BASE},"employee_id":12.50,"phone":1e400}}]'.encode(), name="f.json")
    (row,) = validation.applicable()
    assert (row.values["employee_id"], row.values["phone"]) == ("12.50", "1e400")


def test_entries_that_are_not_objects_are_named_in_json_words() -> None:
    doc = '[{"email": "a@x.com", "first_name": "A", "last_name": "B"}, 5, null, "x", [1], true]'
    messages = [f.message for f in validate(doc.encode()).report.findings if f.code == "JSON_ENTRY_INVALID"]
    assert [m.split(" is ", 1)[1].split(",")[0] for m in messages] == [
        "a number", "null", "a string", "an array", "a boolean",
    ]
    assert "is an object;" in validate(b'{"email": true}').report.findings[0].message
