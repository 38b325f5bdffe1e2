"""The values ingest applies (`values.normaliser`, one small function per
column): for every kind of field and any cell, the rule written out plainly
below, so the specialised functions cannot drift from it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from validator_helpers import ENGINES, use_engine

from bwsandbox.ingest.records import email_key
from bwsandbox.spec.fields import CORE_FIELDS, ENGAGE_FIELDS, SPACES, Field, ValueType
from bwsandbox.validator import values
from bwsandbox.validator.dates import read_date

_CHARS = [*"aZ09'@.+-/ ", *SPACES[:4], "\n", "\r", "\x0b", "\u2028"]
CELLS = st.text(alphabet=st.sampled_from(_CHARS), max_size=12) | st.sampled_from(
    ["", " ", "\t", "\n", "'0012", " 2024-03-05 ", "03/05/2024", "yes", " TRUE ", "0", "maybe", "+4412345678"]
)


def plain_rule(spec: Field | None, raw: str, locale: str) -> str | None:
    raw = raw.strip(SPACES)
    if spec is None:
        return raw
    if raw == "" or not raw.strip():
        return None if spec.required else ""
    if spec.type is ValueType.DATE:
        return read_date(raw, locale).iso
    if spec.type is ValueType.BOOLEAN:
        return values.read_bool(raw)
    if spec.type is ValueType.ID:
        return raw.strip()[1:] if raw.strip().startswith("'") else raw.strip()
    if spec.type in (ValueType.EMAIL, ValueType.MOBILE):
        return raw.strip()
    return raw


SPECS = [None, *CORE_FIELDS.values(), *ENGAGE_FIELDS.values()]


@settings(max_examples=300, deadline=None)
@given(cell=CELLS, index=st.integers(0, len(SPECS) - 1), locale=st.sampled_from(["en-US", "en-GB"]))
def test_each_column_applies_the_plain_rule(cell: str, index: int, locale: str) -> None:
    spec = SPECS[index]
    read = values.normaliser(spec, locale)
    assert read(cell) == plain_rule(spec, cell, locale)
    assert read(cell) == plain_rule(spec, cell, locale)  # a cell seen before: remembered, the same


# Every kind of column once, each under its own name (core and engage share names).
ROW = [(i, f"{i}:{spec.name if spec else 'custom'}", spec) for i, spec in enumerate(SPECS)]
ROW_CELLS = CELLS | st.sampled_from(
    ["true", "false", "TRUE", "'0012", "x", "Sales", " a", "a\t", "é", "\x1fa", "03/05/2024", "a@b.co"]
)
LOCALES = st.sampled_from(["en-US", "en-GB"])


@settings(max_examples=300, deadline=None)
@given(cells=st.lists(ROW_CELLS, min_size=len(ROW), max_size=len(ROW)), locale=LOCALES)
def test_a_whole_record_gives_each_columns_plain_rule_on_both_engines(cells: list[str], locale: str) -> None:
    """`row_values`: the C row pass (plain cells as they are, the others
    through their normaliser) and the Python one give the plain rule's
    values, in the columns' order, without the ones not applied."""
    rule = [(name, plain_rule(spec, cells[i], locale)) for i, name, spec in ROW]
    expected = {name: value for name, value in rule if value is not None}
    for engine in ENGINES:
        with pytest.MonkeyPatch.context() as mp:
            use_engine(engine, mp)
            _, whole = values.row_values(ROW, locale)
            for _ in range(2):  # the second time, every cell is remembered
                got = whole(cells)
                assert got == expected and list(got) == list(expected)


def test_every_kind_of_field_is_covered() -> None:
    kinds = {spec.type for spec in SPECS if spec is not None}
    assert kinds == set(ValueType)
    assert any(spec is not None and spec.required for spec in SPECS)


def test_a_repeated_value_is_one_string_and_the_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(values, "SHARED_VALUES", 3)
    read = values.normaliser(CORE_FIELDS["department_name"], "en-US")
    first, again = read(" Sales"), read("Sales ")
    assert first == again == "Sales" and first is again
    made = [read(f"Team {i}") for i in range(10)]  # more distinct values than the table keeps
    assert made == [f"Team {i}" for i in range(10)]
    assert read("Team 1") is made[1] and read("Team 9") is not made[9]  # kept / past the bound


def test_email_keys_share_the_address_when_it_is_already_a_key() -> None:
    address = "someone@example.com"
    assert email_key(address) is address
    assert email_key(" Someone@Example.com ") == address
