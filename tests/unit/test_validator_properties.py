"""Properties of the validator, checked with hypothesis."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from validator_helpers import each_engine  # noqa: F401  (autouse: every test runs on both engines)

from bwsandbox.ingest.plan import Judgement as Validation
from bwsandbox.ingest.plan import validate
from bwsandbox.spec.codes import CATALOGUE
from bwsandbox.validator import Context, csvrecords, readers, report_json
from bwsandbox.validator import structure as structure_mod

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = ["email", "first_name", "last_name", "employee_id", "manager_email", "on_leave", "deactivation_date"]

names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda s: s.strip() == s and s != "")


@st.composite
def valid_feeds(draw: st.DrawFn) -> list[list[str]]:
    """A valid core feed: unique emails and ids, managers earlier in the file."""
    n = draw(st.integers(min_value=1, max_value=25))
    rows = []
    for i in range(n):
        manager = "" if i == 0 else f"user{draw(st.integers(0, i - 1))}@example.com"
        rows.append(
            [
                f"user{i}@example.com",
                draw(names),
                draw(names),
                f"E{i:05d}",
                draw(st.sampled_from([manager, ""])),
                draw(st.sampled_from(["true", "false", "", "Yes", "0"])),
                draw(st.sampled_from(["", "12/31/2027", "2027/01/15", "31/01/2027"])),
            ]
        )
    return rows


def to_csv(rows: list[list[str]], header: list[str] = HEADER, newline: str = "\r\n") -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator=newline)
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue().encode("utf-8")


def errors(v: Validation) -> set[tuple[str, int | None]]:
    return {(f.code, f.row) for f in v.report.findings if f.severity == "error"}


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    v = validate(data)
    assert v.report.verdict in ("accepted", "partial", "rejected")
    list(v.applicable())
    assert all(f.code in CATALOGUE for f in v.report.findings)


csvish = st.text(st.sampled_from(list('ab,"\n\r;@. x\tE1é')), max_size=200)


@FAST
@given(csvish)
def test_arbitrary_csvish_text_never_raises(body: str) -> None:
    data = ("email,first_name,last_name\n" + body).encode("utf-8")
    v = validate(data)
    list(v.applicable())
    for row in v.originals:
        assert isinstance(v.originals[row], tuple)


@FAST
@given(valid_feeds(), st.sampled_from(["\r\n", "\n"]))
def test_a_generated_valid_feed_has_no_errors(rows: list[list[str]], newline: str) -> None:
    v = validate(to_csv(rows, newline=newline))
    assert errors(v) == set()
    assert v.report.total == len(rows) == v.report.valid
    applied = list(v.applicable())
    assert [a.row for a in applied] == list(range(2, len(rows) + 2))
    assert [a.values["first_name"] for a in applied] == [r[1] for r in rows]  # never altered


Mutation = Callable[[list[list[str]], int], tuple[str, int]]


def drop_email(rows: list[list[str]], i: int) -> tuple[str, int]:
    for r in rows:  # nobody may point at the removed address
        if r[4] == rows[i][0]:
            r[4] = ""
    rows[i][0] = ""
    return "EMAIL_REQUIRED", i


def drop_first_name(rows: list[list[str]], i: int) -> tuple[str, int]:
    rows[i][1] = ""
    for r in rows:
        if r[4] == rows[i][0]:
            r[4] = ""
    return "REQUIRED_VALUE_MISSING", i


def overlong_last_name(rows: list[list[str]], i: int) -> tuple[str, int]:
    rows[i][2] = "x" * 151
    for r in rows:
        if r[4] == rows[i][0]:
            r[4] = ""
    return "VALUE_TOO_LONG", i


def break_manager(rows: list[list[str]], i: int) -> tuple[str, int]:
    rows[i][4] = "nobody@elsewhere.example"
    return "MANAGER_NOT_FOUND", i


def self_manager(rows: list[list[str]], i: int) -> tuple[str, int]:
    rows[i][4] = rows[i][0].upper()
    return "MANAGER_SELF", i


def bad_date(rows: list[list[str]], i: int) -> tuple[str, int]:
    rows[i][6] = "02/30/2027"
    return "DATE_IMPOSSIBLE", i


def bad_boolean(rows: list[list[str]], i: int) -> tuple[str, int]:
    rows[i][5] = "perhaps"
    return "BOOLEAN_INVALID", i


def invalid_email(rows: list[list[str]], i: int) -> tuple[str, int]:
    for r in rows:
        if r[4] == rows[i][0]:
            r[4] = ""
    rows[i][0] = rows[i][0].replace("@", "")
    return "EMAIL_INVALID", i


@FAST
@given(
    valid_feeds(),
    st.data(),
    st.sampled_from(
        [
            drop_email,
            drop_first_name,
            overlong_last_name,
            break_manager,
            self_manager,
            bad_date,
            bad_boolean,
            invalid_email,
        ]
    ),
)
def test_each_mutation_yields_exactly_its_finding_on_its_row(
    rows: list[list[str]], data: st.DataObject, mutate: Mutation
) -> None:
    i = data.draw(st.integers(0, len(rows) - 1))
    code, at = mutate(rows, i)
    v = validate(to_csv(rows))
    assert errors(v) == {(code, at + 2)}


@FAST
@given(valid_feeds(), st.data())
def test_a_duplicate_email_in_other_case_flags_both_rows(rows: list[list[str]], data: st.DataObject) -> None:
    assume(len(rows) >= 2)
    i, j = data.draw(st.lists(st.integers(0, len(rows) - 1), min_size=2, max_size=2, unique=True))
    old = rows[j][0]
    rows[j][0] = rows[i][0].upper()
    for r in rows:  # managers of the two rows are skipped or gone: clear them
        if r[4] in (rows[i][0], old):
            r[4] = ""
    v = validate(to_csv(rows))
    assert errors(v) == {("EMAIL_DUPLICATE", i + 2), ("EMAIL_DUPLICATE", j + 2)}


@FAST
@given(valid_feeds(), st.integers(min_value=2, max_value=5))
def test_a_manager_loop_flags_exactly_its_members(rows: list[list[str]], size: int) -> None:
    assume(len(rows) >= size)
    loop = list(range(len(rows) - size, len(rows)))
    for r in rows:
        if r[4] in {rows[k][0] for k in loop}:
            r[4] = ""
    for a, b in zip(loop, loop[1:] + loop[:1], strict=True):
        rows[a][4] = rows[b][0]
    v = validate(to_csv(rows))
    assert errors(v) == {("MANAGER_CYCLE", k + 2) for k in loop}


cells = st.text(st.sampled_from(list('ab ,"\n\r1é')), max_size=6)


@FAST
@given(st.lists(st.lists(cells, min_size=1, max_size=5), min_size=1, max_size=12))
def test_the_structure_scan_agrees_with_the_csv_module(rows: list[list[str]]) -> None:
    """Fast path (structure scan + polars) and the csv-module path give one report."""
    header = ["email", "first_name", "last_name"]
    data = to_csv(rows, header)
    fast = validate(data)
    with pytest.MonkeyPatch.context() as mp:
        real_scan = structure_mod._scan

        def scan_then_fallback(text: bytes, start: int) -> structure_mod._Scan:
            s = real_scan(text, start)
            s.needs_fallback = True
            return s

        mp.setattr(structure_mod, "_scan", scan_then_fallback)
        slow = validate(data)
        mp.setattr(structure_mod, "_scan", real_scan)
        mp.setattr(structure_mod, "_PART_BYTES", 16)  # many polars parts
        parted = validate(data)
    slow_findings = [f for f in slow.report.findings if f.code != "STRAY_QUOTE"]
    assert list(fast.report.findings) == slow_findings
    assert parted.report.findings == fast.report.findings
    assert [dict(a.values) for a in fast.applicable()] == [dict(a.values) for a in slow.applicable()]


# Pieces of raw CSV bodies aimed at the scan's edges: quotes (escaped,
# stray, unclosed), CRLF, bare CR, newlines inside quotes, non-ASCII, and
# fields far longer than any buffer (the csv module's 128 KiB default limit,
# which the record parser gets round without changing it).
_PIECES = ["a", "é", ",", '"', '""', '"x,\ny"', "\n", "\r\n", "\r", "\r\n\r\n", ",,"]
_PIECES += ["z" * 200_000, '"' + "q," * 70_000 + '"']


@FAST
@given(st.lists(st.sampled_from(_PIECES), max_size=40), st.booleans())
def test_the_scan_reads_records_and_cells_as_the_csv_module_does(pieces: list[str], header: bool) -> None:
    """The scan's records, cell counts, blank rows and CRLF ends are the csv module's,
    and it sends to the csv module exactly the files with a stray quote or a bare CR."""
    import numpy as np

    body = "".join(pieces).encode()
    text = b"h,i\n" + body if header else body
    start = 4 if header else 0
    scan = structure_mod._scan(text, start)
    assert scan.crlf <= len(scan.ends) and (len(scan.ends) == 0) == (body == b"")
    assert all(np.diff(scan.ends) > 0) and (not len(scan.ends) or scan.ends[-1] <= len(text))
    if body.count(b'"') % 2:
        assert scan.unclosed_at is not None and text[scan.unclosed_at] == ord('"')
        return
    assert scan.unclosed_at is None
    bare_cr = body.replace(b"\r\n", b"").count(b"\r") > 0
    assert scan.needs_fallback == (bare_cr or bool(scan.stray_at))
    if scan.needs_fallback:
        return
    records = csvrecords.every(body.decode())  # the csv module's records (bar its field limit)
    assert len(records) == len(scan.ends)
    n_cells = np.where(scan.empty, 0, scan.commas + 1)
    assert n_cells.tolist() == [len(r) for r in records]
    for rec, cells in enumerate(records):
        all_empty = not any(cells)
        assert not scan.blank[rec] or all_empty
        assert scan.blank[rec] or not all_empty or rec in scan.maybe_blank
        begin = int(scan.ends[rec - 1]) + 1 if rec else start
        assert readers.parse_record(text, begin, int(scan.ends[rec])) == cells
    ends_crlf = sum(1 for e in scan.ends.tolist() if e < len(text) and e > start and text[e - 1] == 0x0D)
    assert scan.crlf == ends_crlf


def test_the_scan_checks_its_bounds() -> None:
    assert len(structure_mod._scan(b"", 0).ends) == 0
    assert len(structure_mod._scan(b"a\n", 2).ends) == 0
    for bad in (-1, 3):
        with pytest.raises(ValueError):
            structure_mod._scan(b"a\n", bad)


# Byte sequences at the edges of Unicode's Table 3-7 (well-formed UTF-8),
# mixed into ASCII runs longer and shorter than the C check's 8-byte steps.
# (The pure check is Python's decoder, in steps: the same answer by design.)
_UTF8_EDGES = [
    b"\xc2\x80", b"\xdf\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\xa0\x80", b"\xe0\x9f\xbf",
    b"\xed\x9f\xbf", b"\xed\xa0\x80", b"\xef\xbf\xbf", b"\xf0\x90\x80\x80", b"\xf0\x8f\xbf\xbf",
    b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\x80", b"\xe2\x82",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_UTF8_EDGES),
            st.binary(max_size=20),
            st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.just(b"plain ascii run"),
        ),
        max_size=12,
    )
)
def test_the_utf8_check_judges_as_python_does(pieces: list[bytes]) -> None:
    from bwsandbox.validator.decode import utf8_ok

    data = b"".join(pieces)
    try:
        data.decode("utf-8")
        expected = True
    except UnicodeDecodeError:
        expected = False
    assert utf8_ok(data) is expected
    for cut in range(max(0, len(data) - 4), len(data)):  # a sequence cut off at the end
        try:
            data[:cut].decode("utf-8")
            expected = True
        except UnicodeDecodeError:
            expected = False
        assert utf8_ok(data[:cut]) is expected


@FAST
@given(st.binary(max_size=300))
def test_report_json_is_deterministic(data: bytes) -> None:
    assert report_json(validate(data, Context()).report) == report_json(validate(data, Context()).report)
