"""The scan for formula-looking cells (docs/security.md "CSV injection")
narrows where its pattern is tried with a vectorised pass over the bytes;
it must find exactly what the pattern tried at every byte finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bwsandbox.validator.formulas import _CANDIDATE, candidate_leaders

# Separators, the quote, every leader and a few ordinary bytes, densely.
_BYTES = st.lists(st.sampled_from([*b',\n\r"=+-@\t', *b"a1 (."]), max_size=40).map(bytes)


@settings(max_examples=800, deadline=None)
@given(text=_BYTES, start=st.integers(0, 4), part=st.integers(1, 9))
def test_the_vectorised_scan_finds_what_the_pattern_finds(text: bytes, start: int, part: int) -> None:
    expected = [m.end() - 1 for m in _CANDIDATE.finditer(text, start)]
    assert candidate_leaders(text, start, part=part) == expected  # parts of any size, boundaries anywhere
    assert candidate_leaders(text, start) == expected


def test_a_feed_of_ordinary_rows_has_no_candidate_and_a_formula_is_found_where_it_starts() -> None:
    row = b"user%d@example-corp.com,Bo,Van der Berg,-5,+1 555,2024-03-05\r\n"
    rows = b"".join(row % i for i in range(2000))
    assert candidate_leaders(rows) == []
    text = rows + b'a@b.co,"=cmd",x\r\n'
    assert candidate_leaders(text, 0, part=4096) == [len(rows) + len(b'a@b.co,"')]
