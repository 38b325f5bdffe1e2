"""The scan for formula-looking cells (docs/security.md "CSV injection")
first finds where its pattern may match (`match_starts`: the structure
scan's C module, or numpy where it is not built), then tries the pattern
only there: it must find exactly what the pattern tried at every byte
finds, on both engines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from validator_helpers import ENGINES, use_engine

from bwsandbox.validator.formulas import _CANDIDATE, candidate_leaders, match_starts

# Separators, the quote, every leader and a few ordinary bytes, densely.
_BYTES = st.lists(st.sampled_from([*b',\n\r"=+-@\t', *b"a1 (."]), max_size=60).map(bytes)


def _on(engine: str, text: bytes, start: int, part: int) -> tuple[list[int], list[int]]:
    with pytest.MonkeyPatch.context() as mp:
        use_engine(engine, mp)
        return match_starts(text, start, part=part), candidate_leaders(text, start, part=part)


@settings(max_examples=800, deadline=None)
@given(text=_BYTES, start=st.integers(0, 4), part=st.integers(1, 9))
def test_the_scan_finds_what_the_pattern_finds_on_both_engines(text: bytes, start: int, part: int) -> None:
    start = min(start, len(text))
    expected = [m.end() - 1 for m in _CANDIDATE.finditer(text, start)]
    (c_starts, c_found), (np_starts, np_found) = (_on(engine, text, start, part) for engine in ENGINES)
    assert c_found == np_found == expected  # numpy's parts of any size, boundaries anywhere
    assert c_starts == np_starts  # the same positions tried, by the C pass and by numpy


@pytest.mark.parametrize("engine", ENGINES)
def test_a_feed_of_ordinary_rows_has_no_candidate_and_a_formula_is_found_where_it_starts(engine: str) -> None:
    row = b"user%d@example-corp.com,Bo,Van der Berg,-5,+1 555,2024-03-05\r\n"
    rows = b"".join(row % i for i in range(2000))
    text = rows + b'a@b.co,"=cmd",x\r\n' + rows  # past the C pass's 16-byte blocks and numpy's parts
    with pytest.MonkeyPatch.context() as mp:
        use_engine(engine, mp)
        assert candidate_leaders(rows) == []
        assert candidate_leaders(text, 0, part=4096) == [len(rows) + len(b'a@b.co,"')]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("start", [-1, 3])
def test_a_start_outside_the_text_is_refused(engine: str, start: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        use_engine(engine, mp)
        with pytest.raises(ValueError, match="outside the text"):
            match_starts(b"=x", start)
