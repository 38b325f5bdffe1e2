"""Hostile input never makes `validate()` raise (docs/security.md
"Fuzzing"), on both engines.

The strategy builds CSV-like files out of the pieces that trip CSV readers
up: quotes in every position, bare CRs, CRLF and LF, invalid UTF-8 (which
sends the file down the Windows-1252 path), duplicate keys (so the rules
across rows ask for the cells of flagged rows), formula-like cells. Every
part of the result a caller can ask for is then asked for.

In the normal suite it runs a few hundred examples per engine. For a long
run, `BWSANDBOX_FUZZ_SECONDS=N` keeps drawing fresh examples for N seconds
and prints how many it tried; `scripts/fuzz.sh MINUTES` does that with the
two C extensions built under AddressSanitizer and UBSan (docs/security.md
records the runs).
"""

from __future__ import annotations

import os
import random
import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from validator_helpers import each_engine  # noqa: F401  (autouse: every test runs on both engines)

from bwsandbox.spec.codes import CATALOGUE
from bwsandbox.validator import Context, DirectorySnapshot, ExistingUser, error_csv, report_json, validate

# The audit's crash, minimised: polars reads `b"\r"c` as one quoted-looking
# value and so sees four records where the csv module (the reader of files
# with a bare CR) sees two; the rules across rows flagged the duplicate in
# polars' fourth record and asked the csv module's reading for it: IndexError.
AUDIT_CRASH = b'email,first_name,last_name\na@b.co,b"\r"c,x\nd@e.co,f,g\nd@e.co,f,g\n'

PIECES = [
    b'"', b'"', b'""', b"\r", b"\r", b"\n", b"\r\n", b",", b" ", b"a", b"b", b"Ann",
    b"x@y.co", b"X@Y.CO", b"z@y.co", b"E1", b"e1", b"007",
    b"\xff", b"\xe9", b"\x80", b"\xc3", b"\xc3\xa9", b"\x81",
    b"=1+2", b"@SUM(A1)", b"-3", b"+1555", b"\t", b"'", b";",
    b"12/31/2027", b"2027-01-15", b"43952", b"1.23E+13", b"true", b"maybe", b"{", b"[",
    # Quote and line-end pairs the two readers may split differently.
    b'"\r"', b'"\n"', b'"\r\n"', b'\r"', b'"\r', b'","',
]
HEADERS = [
    b"email,first_name,last_name",
    b"email,first_name,last_name,employee_id,manager_email,on_leave,deactivation_date",
    b"email,first_name,last_name,employee_id,manager_id",
    b'"email","first_name","last_name",title',
    b"name,parent,is_active",
    b"\xef\xbb\xbfemail,first_name,last_name",
    b"email;first_name;last_name",
    b"",
]
ENDS = [b"\n", b"\r\n", b"\r", b""]

# Rows are hostile (pieces) or clean; clean rows repeat a few keys, so the
# rules across rows flag rows (duplicates, managers) after the damage and ask
# for their original cells. Rows have at most three cells: wider than the
# header, polars gives up on the file at once and the paths where the two
# readers disagree are not reached.
CLEAN = [b"x@y.co,Ann,Lee", b"X@Y.CO,Bo,Kim", b"z@y.co,Cy,Poe", b"boss@y.co,Di,Ray", b",,"]
cells = st.lists(st.sampled_from(PIECES), max_size=5).map(b"".join)
hostile = st.lists(cells, min_size=1, max_size=3).map(b",".join)
clean = st.sampled_from(CLEAN)
rows = st.tuples(st.one_of(hostile, clean, clean), st.sampled_from(ENDS))


@st.composite
def hostile_csv(draw: st.DrawFn) -> bytes:
    head = draw(st.sampled_from(HEADERS))
    body = b"".join(cells + end for cells, end in draw(st.lists(rows, max_size=14)))
    return head + draw(st.sampled_from(ENDS[:3])) + body


def _cell(rnd: random.Random) -> bytes:
    return b"".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 5)))


def seeded_csv(seed: int) -> bytes:
    """The same grammar drawn uniformly from a seed. Hypothesis favours short,
    simple choices; the audit's crash needs a `"\r"` mid-cell, no quote after
    it and two clean rows sharing a key, which uniform draws hit about once in
    200 files and hypothesis's own draws rarely do."""
    rnd = random.Random(seed)
    out = [rnd.choice(HEADERS), rnd.choice(ENDS[:3])]
    for _ in range(rnd.randint(0, 14)):
        if rnd.random() < 1 / 3:
            row = b",".join(_cell(rnd) for _ in range(rnd.randint(1, 3)))
        else:
            row = rnd.choice(CLEAN)
        out += [row, rnd.choice(ENDS)]
    return b"".join(out)


CONTEXTS = [
    Context(),
    Context(locale="en-GB", directory=DirectorySnapshot(users=(
        ExistingUser(email="x@y.co", employee_id="E1"), ExistingUser(email="boss@y.co"),
    )), licenses_available=1),
]


def check(data: bytes, context: Context) -> None:
    """Everything a caller can ask of a validation works."""
    v = validate(data, context, name="fuzz.csv")
    assert v.report.verdict in ("accepted", "partial", "rejected")
    assert all(f.code in CATALOGUE for f in v.report.findings)
    list(v.applicable())
    for row in v.originals:
        assert isinstance(v.originals[row], tuple)
    error_csv(v)
    report_json(v.report)


SECONDS = float(os.environ.get("BWSANDBOX_FUZZ_SECONDS", "0") or 0)
TRIED = [0]


@settings(
    max_examples=2000 if SECONDS else 150, deadline=None, database=None if SECONDS else settings().database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(st.one_of(hostile_csv(), st.integers(0, 2**64).map(seeded_csv)), st.sampled_from(CONTEXTS))
@example(AUDIT_CRASH, Context())
def _one(data: bytes, context: Context) -> None:
    TRIED[0] += 1
    check(data, context)


def test_hostile_csv_never_makes_validate_raise() -> None:
    """Runs the property once (CI), or for BWSANDBOX_FUZZ_SECONDS in rounds
    of fresh examples; prints the count of examples tried."""
    started = time.monotonic()
    TRIED[0] = 0
    _one()
    while time.monotonic() - started < SECONDS:
        _one()  # a new round draws new examples (no database in a long run)
    if SECONDS:
        engine = "pure" if os.environ.get("BWSANDBOX_NO_ACCEL") else "accelerated"
        took = time.monotonic() - started
        print(f"\nfuzz: {TRIED[0]} examples in {took:.0f} s, no failure ({engine} engine)")


def test_the_audit_crash_is_fixed() -> None:
    """The 60-byte regression case of the audit's IndexError: two rows, both
    rejected as ragged (the csv module reads `b"` then a quoted field that
    runs to the end), no finding about rows that do not exist."""
    v = validate(AUDIT_CRASH, Context(), name="t.csv")
    assert {(f.code, f.row) for f in v.report.findings} == {
        ("ROW_TOO_FEW_CELLS", 2), ("STRAY_QUOTE", 2), ("ROW_TOO_FEW_CELLS", 3),
    }
    assert list(v.applicable()) == []
    assert b"d@e.co,f,g" in error_csv(v)
