"""Cells over the csv module's field size limit (docs/server.md "A guest in
your process": no global of the host process changed, not even
the csv module's limit): they are read all the same, by `csvrecords`, on
both engines, and the limit stays as the host set it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from validator_helpers import ENGINES, on_engine, seen

from bwsandbox.validator import csvrecords
from bwsandbox.validator import engine as engine_mod
from bwsandbox.validator import structure as structure_mod

ROOT = Path(__file__).resolve().parents[2]
SOME = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_importing_and_validating_leave_the_csv_field_limit_alone() -> None:
    """In a fresh interpreter (where an import-time change would show):
    importing every validator module changes no csv setting; validating a
    file with a cell over the host's field limit changes none either, on
    either engine, and both read every cell."""
    code = """
import csv, importlib, json, os, pkgutil
csv.field_size_limit(4096)  # the host's own setting
import bwsandbox.validator as v
for m in pkgutil.iter_modules(v.__path__):
    if not m.name.startswith("_c"):
        importlib.import_module("bwsandbox.validator." + m.name)
assert csv.field_size_limit() == 4096
data = ("email,first_name,last_name,title\\r\\n"
        "a@x.com," + "n" * 5000 + ",L,T\\r\\nb@x.com,B,L," + "t" * 200000 + "\\r\\n").encode()
out = {}
for engine in ("1", ""):
    os.environ["BWSANDBOX_NO_ACCEL"] = engine
    got = v.validate(data, name="t.csv")
    rows = [[a.row, sorted(a.values.items())] for a in got.applicable()]
    out[engine or "c"] = [v.report_json(got.report), rows, v.error_csv(got).decode()]
assert csv.field_size_limit() == 4096, csv.field_size_limit()
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["1"] == got["c"]
    report = json.loads(got["c"][0])
    assert [(f["code"], f["row"]) for f in report["findings"]] == [("VALUE_TOO_LONG", 2)]
    assert got["c"][1] == [
        [3, [["email", "b@x.com"], ["first_name", "B"], ["last_name", "L"], ["title", "t" * 200000]]]
    ]


# -- on both engines, with the host's limit as it is or lowered ---------------------------------

BIG = "z" * 200_000
QUOTED = '"' + "q," * 70_000 + '"'
H = "email,first_name,last_name,title,manager_email\r\n"
HUGE = {
    "first_name": H + f"a@x.com,{BIG},L,T,\r\nb@x.com,B,L,T,a@x.com\r\n",
    "title": H + f"a@x.com,A,L,{BIG},\r\nb@x.com,B,L,T,a@x.com\r\n",
    "quoted": H + f"a@x.com,A,L,{QUOTED},\r\nb@x.com,B,L,T,a@x.com\r\n",
    "stray quote": H + f'a@x.com,A,L,{BIG},\r\nb@x.com,B"q",L,T,a@x.com\r\n',
    "bare CR": H + f"a@x.com,A,L,{BIG},\rb@x.com,B,L,T,a@x.com\r",
    "header": "email,first_name,last_name," + QUOTED + "\r\na@x.com,A,L,x\r\n",
    "duplicate": H + f"a@x.com,A,L,{BIG},\r\na@x.com,{BIG},L,T,a@x.com\r\n",
    "ragged": H + f"a@x.com,A,L,{BIG}\r\nb@x.com,B,L,T,a@x.com\r\n",
    "departments": f"name,parent\r\n{BIG},\r\nB,{BIG}\r\n",
}
# What each file is found to hold (the same with any field limit, on either engine).
EXPECTED = {
    "first_name": [("VALUE_TOO_LONG", 2), ("MANAGER_NOT_FOUND", 3)],
    "title": [],
    "quoted": [],
    "stray quote": [("STRAY_QUOTE", 3)],
    "bare CR": [],
    "header": [("HEADER_UNKNOWN", None)],
    "duplicate": [("EMAIL_DUPLICATE", 2), ("EMAIL_DUPLICATE", 3), ("VALUE_TOO_LONG", 3)],
    "ragged": [("ROW_TOO_FEW_CELLS", 2), ("MANAGER_NOT_FOUND", 3)],
    "departments": [("DEPARTMENT_FILE_MANUAL", None)],
}


@pytest.fixture(params=[None, 16], ids=["default-limit", "host-limit-16"])
def host_limit(request: pytest.FixtureRequest) -> Iterator[int]:
    """The csv module's field limit as the host has it: its default, or one
    the host lowered (records are read the same way all the same)."""
    before = csv.field_size_limit()
    if request.param is not None:
        csv.field_size_limit(request.param)
    try:
        yield csv.field_size_limit()
    finally:
        csv.field_size_limit(before)


@pytest.mark.parametrize("name", list(HUGE))
def test_a_cell_over_the_csv_field_limit_is_read_and_the_limit_left_alone(name: str, host_limit: int) -> None:
    data = HUGE[name].encode()
    by_engine = {}
    for engine in ENGINES:
        by_engine[engine] = seen(on_engine(engine, data))
        assert csv.field_size_limit() == host_limit
    assert by_engine["accelerated"] == by_engine["pure"]
    report = json.loads(by_engine["pure"][0])
    assert [(f["code"], f["row"]) for f in report["findings"]] == EXPECTED[name]
    cells = [c for _, values in by_engine["pure"][2] for c in values.values()] + [
        c for cells in by_engine["pure"][3].values() for c in cells
    ]
    assert any(len(c) >= 140_000 for c in cells) or name == "header"


def test_a_big_file_with_huge_cells_reads_every_record(
    host_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In parts, on worker threads, the applicable rows read record by record
    after the one the csv module refuses."""
    rows = [f"u{i}@x.com,F{i},L{i},T,u{max(i - 1, 0) // 3}@x.com" for i in range(3000)]
    rows[100] = f"u100@x.com,F,L,{QUOTED},u3@x.com"
    rows[200] = f"u200@x.com,{BIG},L,T,u3@x.com"
    rows[300] = "bad,F,L,T,"
    data = (H + "\r\n".join(rows) + "\r\n").encode()
    monkeypatch.setattr(structure_mod, "_PART_BYTES", 20_000)
    monkeypatch.setattr(engine_mod, "_PARALLEL_BYTES", 1)
    by_engine = {engine: seen(on_engine(engine, data)) for engine in ENGINES}
    assert by_engine["accelerated"] == by_engine["pure"]
    assert csv.field_size_limit() == host_limit
    applied = dict(by_engine["pure"][2])
    assert len(applied) == 2998 and applied[102]["title"] == QUOTED[1:-1].replace('""', '"')
    assert by_engine["pure"][3][202][1] == BIG  # the flagged row's original cells


# -- the csv module's reader without its limit (csvrecords) ------------------------------------

csv_text = st.text(st.sampled_from(list(',"\r\n a\x00é')), max_size=60)


@SOME
@given(csv_text)
def test_the_record_reader_reads_as_the_csv_module(text: str) -> None:
    want = list(csv.reader(io.StringIO(text, newline="")))
    assert list(csvrecords.read(text)) == want
    assert csvrecords.every(text) == want
    assert csvrecords.first(text) == (want[0] if want else [])


@SOME
@given(csv_text, st.integers(0, 4))
def test_records_the_csv_module_refuses_are_read_as_it_reads_the_others(text: str, limit: int) -> None:
    """Under a limit so low the csv module refuses most fields, `every` and
    `first` still give what it gives under its default limit."""
    want = list(csv.reader(io.StringIO(text, newline="")))
    before = csv.field_size_limit(limit)
    try:
        got, first = csvrecords.every(text), csvrecords.first(text)
    finally:
        csv.field_size_limit(before)
    assert got == want and first == (want[0] if want else [])


def test_the_record_reader_reads_long_fields_as_the_csv_module_without_a_limit() -> None:
    text = f'{BIG},"{BIG}\r\n{BIG}"x{BIG}\r\n{QUOTED},"a""b"c"d\r{BIG}'
    before = csv.field_size_limit(2**31 - 1)  # this test's own process: restored below
    try:
        want = list(csv.reader(io.StringIO(text, newline="")))
    finally:
        csv.field_size_limit(before)
    assert list(csvrecords.read(text)) == want and len(want) == 3
