"""The two engines of the validator (bwsandbox/validator/accel.py): the C
accelerators and their pure stand-ins give the same answers piece by piece
and the same reports; one switch, read when a validation starts and held for
all of it; nothing changed in the host process (docs/server.md "A guest in
your process": installs without a compiler, no global changed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from validator_helpers import ENGINES, need_c, on_engine, seen, use_engine

from bwsandbox.validator import (
    Context,
    DirectorySnapshot,
    ExistingUser,
    accel,
    pure,
    validate,
)
from bwsandbox.validator import engine as engine_mod
from bwsandbox.validator import structure as structure_mod

ROOT = Path(__file__).resolve().parents[2]
SOME = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the switch ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "off"),
    [
        (None, set()),
        ("", set()),
        ("0", set()),
        ("1", {"cscan", "ccells"}),
        ("yes", {"cscan", "ccells"}),
        ("cscan", {"cscan"}),
        ("ccells", {"ccells"}),
        (" CCells , cscan ", {"cscan", "ccells"}),
        ("cscan,typo", {"cscan", "ccells"}),  # not only known names: everything off (pure is always right)
    ],
)
def test_the_switch_is_read_from_the_environment_when_used(
    value: str | None, off: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    need_c()
    if value is None:
        monkeypatch.delenv(accel.ENV, raising=False)
    else:
        monkeypatch.setenv(accel.ENV, value)
    assert accel.turned_off() == off
    assert set(accel.choose().names) == set(accel.NAMES) - off


def test_without_the_c_modules_the_accelerated_tests_fail_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    """The accelerated variants of the tests never pass silently on the pure
    engine: on Linux they fail when a C module is not built (elsewhere they
    are skipped: the builds are optional); the pure variants still run."""
    monkeypatch.setitem(accel._built, "ccells", False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(pytest.fail.Exception, match="not built: ccells"):
        use_engine("accelerated", monkeypatch)
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(pytest.skip.Exception, match="not built: ccells"):
        use_engine("accelerated", monkeypatch)
    assert use_engine("pure", monkeypatch).names == ()


def test_an_unknown_accelerator_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown accelerator"):
        accel.built("cfast")


def test_nothing_happens_at_import() -> None:
    """In a fresh interpreter: importing every validator module imports no C
    module and reads no switch; the switch set after the imports is the one
    each validation follows."""
    code = """
import importlib, os, pkgutil, sys
os.environ["BWSANDBOX_NO_ACCEL"] = "1"
import bwsandbox.validator as v
for m in pkgutil.iter_modules(v.__path__):
    if not m.name.startswith("_c"):
        importlib.import_module("bwsandbox.validator." + m.name)
loaded = sorted(m for m in sys.modules if m.startswith("bwsandbox.validator._c"))
assert not loaded, loaded
from bwsandbox.validator import accel
seen = []
real = accel.choose
accel.choose = lambda: seen.append(real()) or seen[-1]
for engine in ("", "cscan", "1"):
    os.environ["BWSANDBOX_NO_ACCEL"] = engine
    v.validate(b"email,first_name,last_name\\na@x.com,A,B\\n")
print(" ".join(",".join(e.names) or "-" for e in seen))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["cscan,ccells", "ccells", "-"]


def test_one_validation_keeps_the_engines_it_started_with(monkeypatch: pytest.MonkeyPatch) -> None:
    """The switch flipped while a big file is read (between its parts) does not
    mix the engines: the key hashes of its rows and of the directory still
    meet (managers found in the directory, duplicates found across parts)."""
    need_c()
    rows = [f"u{i}@x.com,F,L,{'boss@x.com' if i % 2 else f'u{i // 2}@x.com'}" for i in range(1, 20001)]
    rows[15000] = "u19999@x.com,F,L,"  # a duplicate of a row in another part (nobody's manager)
    data = ("email,first_name,last_name,manager_email\r\n" + "\r\n".join(rows) + "\r\n").encode()
    context = Context(directory=DirectorySnapshot(users=(ExistingUser(email="Boss@x.com"),)))
    monkeypatch.setattr(structure_mod, "_PART_BYTES", 40_000)
    monkeypatch.setattr(engine_mod, "_PARALLEL_BYTES", 1)  # worker threads, as for a big file
    want = {name: seen(on_engine(name, data, context)) for name in ENGINES}
    assert want["accelerated"] == want["pure"]
    report = json.loads(want["pure"][0])
    assert {(f["code"], f["row"]) for f in report["findings"]} == {
        ("EMAIL_DUPLICATE", 15002),
        ("EMAIL_DUPLICATE", 20000),
    }

    for start, then in (("accelerated", "1"), ("pure", "")):
        ticks: list[int] = []
        with pytest.MonkeyPatch.context() as mp:
            use_engine(start, mp)

            def flip(
                done: int, total: int, then: str = then, ticks: list[int] = ticks, mp: pytest.MonkeyPatch = mp
            ) -> None:
                ticks.append(done)
                mp.setenv(accel.ENV, then)

            got = seen(validate(data, context, name="t.csv", progress=flip))
        assert len(ticks) > 3  # flipped between parts
        assert got == want[start]


# -- the pieces: C and pure side by side -----------------------------------------------------

_PIECES = [
    "a",
    "é",
    ",",
    '"',
    '""',
    '"x,\ny"',
    "\n",
    "\r\n",
    "\r",
    "\r\n\r\n",
    ",,",
    "zzzzzzzzzzzz",
    '",',
] * 2
_PIECES += ["z" * 3000, '"' + "q," * 1000 + '"']


@SOME
@given(st.lists(st.sampled_from(_PIECES), max_size=60), st.integers(0, 6), st.sampled_from([7, 64, 1 << 19]))
def test_the_pure_scan_is_the_c_scan(pieces: list[str], start: int, chunk: int) -> None:
    """Field by field, however the pure scan's chunks fall (quotes and CRLF
    across chunk ends, a quoted span over several chunks)."""
    need_c()
    text = "".join(pieces).encode()
    start = min(start, len(text))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pure, "_CHUNK", chunk)
        scans = {}
        for engine in ENGINES:
            use_engine(engine, mp)
            scans[engine] = structure_mod._scan(text, start)
    c, p = scans["accelerated"], scans["pure"]
    for name in ("ends", "commas", "blank", "empty", "maybe_blank"):
        assert getattr(p, name).tolist() == getattr(c, name).tolist(), name
    assert (p.start0, p.crlf, p.unclosed_at, p.stray_at, p.needs_fallback) == (
        c.start0, c.crlf, c.unclosed_at, c.stray_at, c.needs_fallback
    )  # fmt: skip


def test_both_scans_keep_the_first_hundred_stray_quotes() -> None:
    need_c()
    from bwsandbox.validator import _cscan

    text = b"h\n" + b'a"b"c,' * 300 + b"\n"
    got = pure.scan(text, 2)["stray_at"]
    assert got == _cscan.scan(text, 2)["stray_at"] and len(got) == 100


@SOME
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=9),
            st.sampled_from([b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xed\xa0\x80", b"\xc0\x80", b"a" * 20]),
        ),
        max_size=20,
    ),
    st.sampled_from([1, 2, 3, 1 << 22]),
)
def test_the_pure_utf8_check_is_the_c_check(pieces: list[bytes], step: int) -> None:
    """Also with sequences cut across the pure check's steps."""
    need_c()
    from bwsandbox.validator import _cscan

    data = b"".join(pieces)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pure, "_UTF8_STEP", step)
        assert pure.utf8_valid(data) is _cscan.utf8_valid(data)


@SOME
@given(
    st.lists(st.sampled_from(["a,b\n", '"x\ny"\n', '"', "\n", "zz", '""\n', "q" * 40]), max_size=50),
    st.integers(1, 9),
    st.integers(0, 5),
)
def test_the_pure_split_is_the_c_split(pieces: list[str], parts: int, start: int) -> None:
    need_c()
    from bwsandbox.validator import _ccells

    text = "".join(pieces).encode()
    start = min(start, len(text))
    assert pure.split(text, start, parts) == _ccells.split(text, start, parts)


def test_both_splits_refuse_bad_arguments() -> None:
    need_c()
    from bwsandbox.validator import _ccells

    for args in [(b"a\n", -1, 2), (b"a\n", 3, 2), (b"a\n", 0, 0), (b"a\n", 0, 1_000_001)]:
        for split in (pure.split, _ccells.split):
            with pytest.raises(ValueError):
                split(*args)


keys = st.lists(
    st.one_of(
        st.sampled_from(["", "a@x.com", "A@x.com", "a@x.com ", "0001", "'0001", "é", "\ud800", "\udfff@x"]),
        st.text(max_size=12),
    ),
    max_size=30,
)


@SOME
@given(keys)
def test_the_pure_key_hashes_meet_where_the_c_ones_do(values: list[str]) -> None:
    """Not the same numbers (hashes never reach a report), the same equalities:
    equal keys meet, others do not, and the empty key is 0 on both."""
    need_c()
    from bwsandbox.validator import _ccells

    c = np.frombuffer(_ccells.hash_strings(values), dtype=np.uint64)
    p = pure.hash_list(values)
    assert ((c[:, None] == c[None, :]) == (p[:, None] == p[None, :])).all()
    assert ((p == 0) == np.array([v == "" for v in values], dtype=bool)).all()
    assert ((p[p != 0] & 1) == 1).all()
    encodable = [v for v in values if not any("\ud800" <= ch <= "\udfff" for ch in v)]
    series = pl.Series([*encodable, None], dtype=pl.String)
    # A column hashes as its values do in a list (the directory's keys meet the file's).
    assert pure.hash_series(series).tolist() == [*pure.hash_list(encodable).tolist(), 0]
