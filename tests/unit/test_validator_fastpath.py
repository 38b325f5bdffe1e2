"""The C value fast path (`_cells.c`, `fastpath.py`) gives exactly the report
of the polars path it skips, and so does the pure engine (no C at all, what
an install without a compiler runs): on every fixture, on generated feeds
full of values each rule has something to say about, in one part or many.
Its pieces are checked against the Python they stand in for. Every test
here needs the C modules: on Linux it fails without them."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from validator_helpers import use_engine

from bwsandbox.spec.fields import Profile
from bwsandbox.validator import Context, Validation, dates, emails, fastpath, report_json, validate
from bwsandbox.validator import engine as engine_mod
from bwsandbox.validator import structure as structure_mod
from bwsandbox.validator import values as values_mod
from bwsandbox.validator.model import DirectorySnapshot, ExistingUser

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SOME = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _accelerated(monkeypatch: pytest.MonkeyPatch) -> None:
    use_engine("accelerated", monkeypatch)


def cells(*args: object) -> dict[str, Any]:
    from bwsandbox.validator import _ccells

    return _ccells.cells(*args)  # type: ignore[arg-type]


def hash_strings(values: list[str]) -> bytearray:
    from bwsandbox.validator import _ccells

    return _ccells.hash_strings(values)


def _both(data: bytes, context: Context, part_bytes: int | None = None) -> tuple[Validation, Validation, int]:
    """(fast path, polars path, parts the fast path read) of one file; the
    pure engine's report is checked to be the polars path's on the way."""
    planned: list[fastpath.Plan | None] = []
    real_plan = fastpath.plan

    def spy(*args: object) -> fastpath.Plan | None:
        got = real_plan(*args)  # type: ignore[arg-type]
        planned.append(got)
        return got

    with pytest.MonkeyPatch.context() as mp:
        if part_bytes is not None:
            mp.setattr(structure_mod, "_PART_BYTES", part_bytes)
        mp.setattr(fastpath, "plan", spy)
        fast = validate(data, context)
        taken = sum(p is not None for p in planned)
        mp.setattr(fastpath, "plan", lambda *args: None)
        slow = validate(data, context)
        mp.setattr(fastpath, "plan", real_plan)
        use_engine("pure", mp)
        _same(slow, validate(data, context))
    return fast, slow, taken


def _same(fast: Validation, slow: Validation) -> None:
    assert report_json(fast.report) == report_json(slow.report)
    assert [(a.row, dict(a.values)) for a in fast.applicable()] == [
        (a.row, dict(a.values)) for a in slow.applicable()
    ]
    assert dict(fast.originals) == dict(slow.originals)


def _fixtures() -> Iterator[Path]:
    for path in sorted(FIXTURES.iterdir()):
        if path.is_file() and not path.name.endswith(".context.json"):
            yield path


@pytest.mark.parametrize("path", list(_fixtures()), ids=lambda p: p.name)
def test_every_fixture_gets_the_same_report_on_every_path(path: Path) -> None:
    sidecar = path.with_name(path.stem + ".context.json")
    context = Context.from_dict(json.loads(sidecar.read_text())) if sidecar.exists() else Context()
    fast, slow, _ = _both(path.read_bytes(), context)
    _same(fast, slow)


def test_the_fast_path_is_taken_for_most_fixtures() -> None:
    """The comparison above means something: the CSV user fixtures (not JSON, not
    department files, not the broken ones that stop early) take the fast path."""
    taken = 0
    for path in _fixtures():
        sidecar = path.with_name(path.stem + ".context.json")
        context = Context.from_dict(json.loads(sidecar.read_text())) if sidecar.exists() else Context()
        taken += _both(path.read_bytes(), context)[2]
    assert taken >= 30


# Values aimed at every rule and at the edges of the fast path's judgements.
EMAILS = [
    "a@x.com",
    "A@x.com",
    "a@x.c",
    "a@@x.com",
    " a@x.com",
    "a.b@x.co.uk",
    "",
    "a@x",
    "ä@x.com",
    "a@-x.com",
    "a..b@x.com",
    "x" * 250 + "@x.com",
    'q"x@x.com',
    "a@x.com ",
    "a,b@x.com",
    "'a@x.com",
]
NAMES = ["Ann", "", " Ann", "\tAnn", "\u00a0Ann", "é" * 130, "x" * 151, "O'Neil, Jr.", 'Say "hi"', "a\nb"]
IDS = ["0001", "1", "'0002", "1.23E+13", "E100", "e", "EMP0042", " 1E5", "1e5", "", "'", "00A", " 12", "12 "]
BOOLS = ["true", "FALSE", "Yes", "no", "1", "0", "", "maybe", " true", "True"]
DATES = [
    "",
    "01/13/2027",
    "13/01/2027",
    "02/03/2027",
    "05/05/2027",
    "2027/02/29",
    "2028/02/29",
    "02/30/2027",
    "2027-01-15",
    "43952",
    "1/2/27",
    "0000/01/01",
    "01/01/0000",
    " 01/13/2027",
    "12/31/9999",
    "1/1/2027",
]
HEADERS = [
    ["email", "first_name", "last_name", "employee_id", "manager_email", "on_leave", "deactivation_date"],
    ["email", "first_name", "last_name", "employee_id", "manager_id", "title", "deactivation_date",
     "preferred_name"],
    ["first_name", "email", "last_name", "manager_email", "mobile", "locale"],
    ["email", "last_name", "first_name", "employee_id", "manager_id", "manager_email", "on_leave"],
]  # fmt: skip


@st.composite
def feeds(draw: st.DrawFn) -> tuple[bytes, Context]:
    header = draw(st.sampled_from(HEADERS))
    n = draw(st.integers(1, 30))
    pool = [f"u{i}@x.com" for i in range(n)]
    rows = []
    for i in range(n):
        row = []
        for col in header:
            # Mostly what the fast path takes, so a row is fast unless one of its
            # cells is odd; each rule's odd values are in the mix.
            typical = draw(st.integers(0, 9)) < 8
            if col == "email":
                row.append(pool[i] if typical else draw(st.sampled_from([pool[i].upper(), *EMAILS])))
            elif col == "manager_email":
                row.append(draw(st.sampled_from(["", *pool] if typical else EMAILS[:4])))
            elif col in ("employee_id", "manager_id"):
                k = draw(st.integers(0, n))
                usual = st.sampled_from([f"{k:04d}", f"ab{k}", f"AB{k}"])
                row.append(draw(usual if typical else st.sampled_from(IDS)))
            elif col == "on_leave":
                row.append(draw(st.sampled_from(BOOLS[:6] if typical else BOOLS)))
            elif col == "deactivation_date":
                row.append(draw(st.sampled_from(DATES)))
            elif col == "mobile":
                row.append(draw(st.sampled_from(["", "+15551234567", "555 1234", "x"])))
            else:
                row.append(draw(st.sampled_from(NAMES[:1] + NAMES[7:8] if typical else NAMES)))
        rows.append(row)
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator=draw(st.sampled_from(["\r\n", "\n"]))).writerows([header, *rows])
    directory = None
    if draw(st.booleans()):
        known = draw(st.lists(st.sampled_from([*pool, "boss@x.com", "A@x.com"]), max_size=8))
        # Stored ids equal to the file's, differing in case only, or other ones.
        stored = st.one_of(st.none(), st.integers(0, n).flatmap(
            lambda k: st.sampled_from([f"{k:04d}", f"ab{k}", f"AB{k}", "é1", "'0001"])))
        directory = DirectorySnapshot(
            users=tuple(
                ExistingUser(email=e, active=draw(st.booleans()), employee_id=draw(stored)) for e in known
            )
        )
    context = Context(
        profile=draw(st.sampled_from(list(Profile))),
        locale=draw(st.sampled_from(["en-US", "en-GB"])),
        directory=directory,
        licenses_available=draw(st.sampled_from([None, 0, 3, 1000])),
    )
    return out.getvalue().encode(), context


@SOME
@given(feeds(), st.sampled_from([None, 40, 200]))
def test_generated_feeds_get_the_same_report_on_every_path(
    feed: tuple[bytes, Context], part: int | None
) -> None:
    data, context = feed
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine_mod, "_PARALLEL_BYTES", 1)  # the worker threads too, as for a big file
        fast, slow, taken = _both(data, context, part)
    _same(fast, slow)


# -- the pieces -----------------------------------------------------------------------

emailish = st.text(st.sampled_from(list("ab0-_.@%+'Z é")), max_size=14)


@settings(max_examples=400, deadline=None)
@given(emailish)
def test_the_c_address_test_is_the_regex_and_hashes_the_lower_case(value: str) -> None:
    data = f"h\n{value}\n".encode()
    got = cells(data, 2, len(data), 1, [(0, 1, -1, False, None)])
    hashed = np.frombuffer(got["hashes"][0], dtype=np.uint64)[0]
    slow = np.frombuffer(got["slow"], dtype=np.uint32)[0]
    valid = re.search(emails.EMAIL_FAST, value) is not None
    if '"' not in value and "\n" not in value:
        assert (not slow and value != "") == valid
    if not slow and value:
        assert hashed == np.frombuffer(hash_strings([value.lower()]), dtype=np.uint64)[0]


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(list("0123456789eE.,+ 'x\u00a0")), max_size=8))
def test_a_fast_id_is_not_scientific_notation(value: str) -> None:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows([["h"], [value]])  # "1,5E3" is quoted
    data = out.getvalue().encode()
    slow = np.frombuffer(cells(data, 2, len(data), 1, [(0, 2, -1, False, None)])["slow"], dtype=np.uint32)[0]
    if not slow:
        assert not value.startswith("'") and re.match(values_mod.SCIENTIFIC, value.strip()) is None


@settings(max_examples=400, deadline=None)
@given(st.text(st.sampled_from(list("0123456789/ -")), max_size=11), st.sampled_from(["en-US", "en-GB"]))
def test_a_fast_date_is_one_the_exact_rule_reads_without_a_word(value: str, locale: str) -> None:
    data = f"h\n{value}\n".encode()
    kind = 5 if locale == "en-GB" else 4
    slow = np.frombuffer(cells(data, 2, len(data), 1, [(0, kind, -1, False, None)])["slow"], dtype=np.uint32)[
        0
    ]
    if not slow and value:
        reading = dates.read_date(value, locale)
        assert reading.code is None and reading.iso is not None


@pytest.mark.parametrize(
    ("value", "locale"), [("01/13/2027", "en-US"), ("13/01/2027", "en-GB"), ("2028/02/29", "en-US"),
                          ("05/05/2027", "en-GB"), ("12/31/9999", "en-US")]
)  # fmt: skip
def test_unambiguous_real_dates_are_fast(value: str, locale: str) -> None:
    data = f"h\n{value}\n".encode()
    kind = 5 if locale == "en-GB" else 4
    assert cells(data, 2, len(data), 1, [(0, kind, -1, False, None)])["slow"][:4] == b"\0\0\0\0"


def test_the_c_pass_reads_quoted_cells_and_line_ends_as_the_csv_module() -> None:
    body = 'a@x.com,"Ann, ""B""",x\r\n"b@x.com","multi\nline",y\nc@x.com,,\n'
    data = ("email,first_name,t\n" + body).encode()
    got = cells(data, 19, len(data), 3, [(0, 1, 254, True, None), (1, 0, 254, True, None)])
    n = got["n"]
    assert n == 3
    ends = np.frombuffer(got["ends"], dtype=np.int64, count=n)
    assert [data[e] for e in ends] == [ord("\n")] * 3
    slow = np.frombuffer(got["slow"], dtype=np.uint32, count=n).tolist()
    assert slow == [0b10, 0, 0b10]  # escaped quotes go the exact way; so does an empty required name
    hashes = np.frombuffer(got["hashes"][0], dtype=np.uint64, count=n)
    assert (
        hashes.tolist() == np.frombuffer(hash_strings(["a@x.com", "b@x.com", "c@x.com"]), np.uint64).tolist()
    )


def test_the_c_pass_refuses_bad_arguments() -> None:
    for args in [
        (b"a\n", 0, 5, 1, []),
        (b"a\n", 0, 2, 0, []),
        (b"a\n", 0, 2, 1, [(3, 0, -1, False, None)]),
        (b"a\n", 0, 2, 1, [(0, 0, -1, False, None)] * 2),
        (b"a\n", 0, 2, 1, [(0, 3, -1, False, [b""])]),
    ]:
        with pytest.raises(ValueError):
            cells(*args)


@pytest.mark.parametrize("part", [None, 8000])
def test_a_part_that_is_mostly_slow_is_read_by_polars_with_the_same_report(part: int | None) -> None:
    rows = [
        [f"u{i}@x.com", "Ann" if i % 7 else " Ann", "Lee", f"{i:04d}", "" if i < 2 else f"u{i // 2}@x.com",
         "maybe" if i % 11 == 0 else "true", ["2027-01-15", "02/03/2027", "43952", "01/13/2027"][i % 4]]
        for i in range(400)
    ]  # fmt: skip
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows([HEADERS[0], *rows])
    read: list[int] = []
    real = fastpath._polars_part

    def spy(*args: object) -> object:
        got = real(*args)  # type: ignore[arg-type]
        read.append(0 if got is None else got.height)
        return got

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastpath, "_polars_part", spy)
        fast, slow, taken = _both(out.getvalue().encode(), Context(), part)
    assert taken == 1 and read and all(read)
    _same(fast, slow)
    assert {f.code for f in fast.report.findings} >= {"DATE_ISO", "DATE_AMBIGUOUS", "BOOLEAN_INVALID"}


_NAMES = st.sampled_from(["email", "title", "x y", 'a"b', "é", " pad", "deactivation_date", "manager_id"])
_TEXT = st.text(alphabet=st.sampled_from(' \t\x1f\x7f"\\/aZé\u2028\u3000\x00\U0001f600\ud800'), max_size=5)


@settings(max_examples=500, deadline=None)
@given(values=st.dictionaries(_NAMES | _TEXT, _TEXT | st.text(max_size=4), max_size=6))
def test_the_c_text_of_a_new_users_fields_is_the_one_json_dumps_writes(values: dict[str, str]) -> None:
    """`_ccells.fields_text` writes `json.dumps(new_fields(values))`, what the
    store holds, for any names and values: trimmed as str.strip() trims,
    escaped as json.dumps escapes (the quick check of a re-sent row,
    `ingest/stored.py`)."""
    from bwsandbox.ingest.stored import CONTROL, new_fields
    from bwsandbox.validator import _ccells

    assert _ccells.fields_text(values, CONTROL, "deactivation_date") == json.dumps(new_fields(values))


_ROW_NAMES = st.sampled_from(["email", "first_name", "last_name", "employee_id", "manager_email",
                              "deactivation_date", "title", "x y"])  # fmt: skip
_ROW_VALUES = _TEXT | st.sampled_from(
    ["", " ", "Ann", "2026-12-07", "2026-12-08", " 2026-12-06\t", "\u30002027-01-01"]
)


@settings(max_examples=1000, deadline=None)
@given(values=st.dictionaries(_ROW_NAMES, _ROW_VALUES, min_size=1, max_size=8), full=st.booleans(),
       kept=st.sampled_from([(), ("first_name", "last_name")]), engage=st.booleans(), ids=st.booleans(),
       today=st.sampled_from(["2026-12-07", "1970-01-01"]))  # fmt: skip
def test_the_c_quick_row_is_the_rules(
    values: dict[str, str], full: bool, kept: tuple[str, ...], engage: bool, ids: bool, today: str
) -> None:
    """`_ccells.quick_row` gives the quick row `quick.QuickRule.row`
    gives (or its None: only the merge can judge the row) for the common row,
    one that has every column of the file; for any other it leaves the
    answer to the rule (NotImplemented)."""
    from bwsandbox.ingest.quick import QuickRule, columns_text
    from bwsandbox.ingest.stored import CONTROL, new_fields
    from bwsandbox.validator import _ccells

    columns = frozenset(values) if full else frozenset([*values, "location"])
    rule = QuickRule(kept=kept, engage=engage, today=today, ids=ids, columns=columns,
                     text=lambda v: json.dumps(new_fields(v)))  # fmt: skip
    spec = (kept, engage, today, ids, columns, columns_text(columns), CONTROL, "deactivation_date",
            "employee_id", "manager_email")  # fmt: skip
    got = _ccells.quick_row(3, 7, "k@x.com", values, spec)
    if full:
        assert got == rule.row(3, 7, "k@x.com", values, columns_text(tuple(values)))
    else:
        assert got is NotImplemented


@pytest.mark.parametrize("cell", ["x", '"say ""hi"""', "'0042"])
def test_a_custom_key_named_as_a_key_column_is_read_by_polars(cell: str) -> None:
    """Engage has no manager_id: a tenant's custom key of that name is hashed
    as a key by the rules across rows, which the C pass does not do for a
    custom key, so the file is not read by it (a review found a cell the C
    pass left to the exact rules made the validation raise KeyError)."""
    data = f"email,first_name,manager_id\r\na@x.com,Ann,{cell}\r\nb@x.com,Bo,y\r\n".encode()
    context = Context(profile=Profile.ENGAGE, custom_keys=frozenset({"manager_id"}))
    fast, slow, taken = _both(data, context)
    assert taken == 0
    _same(fast, slow)
