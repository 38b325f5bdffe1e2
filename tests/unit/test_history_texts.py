"""The history of a change written from the two JSON texts of the user's
fields (ingest/directory.py `history_texts`): the C module's reading
(`_ccells.history_texts`, `_diff.c`) is the Python rule's, for texts spelled
as Python and as SQLite spell JSON, and a store written on either engine
holds the same history. The same for the quick change's reading of the two
texts (`_ccells.values_only`, ingest/valuechange.py `read_fields`)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_env import Env
from validator_helpers import ENGINES, use_engine

from bwsandbox.ingest import directory
from bwsandbox.ingest.records import fields_diff

_CHARS = ' \t\n\x00\x1f\x7f"\\/aZé\u2028\ud7ff\ue000\uffff\U0001f600'
_NAMES = st.sampled_from(["email", "title", "status", "x y", 'a"b', "é", "manager_email"]) | st.text(
    alphabet=st.sampled_from(_CHARS), max_size=4
)
_VALUES = st.sampled_from(["", "Ann", "status"]) | st.text(alphabet=st.sampled_from(_CHARS), max_size=5)
_FIELDS = st.dictionaries(_NAMES, _VALUES, max_size=7)


def _spellings(fields: dict[str, str]) -> list[str]:
    """`fields` as JSON: as Python writes it (escaped, and raw), as SQLite does, and spaced out."""
    texts = [json.dumps(fields), json.dumps(fields, ensure_ascii=False), json.dumps(fields, indent=1)]
    with sqlite3.connect(":memory:") as conn:
        texts.append(conn.execute("SELECT json(?)", (json.dumps(fields),)).fetchone()[0])
        texts.append(conn.execute("SELECT json(?)", (json.dumps(fields, ensure_ascii=False),)).fetchone()[0])
    return texts


def _c(old: str | None, new: str) -> object:
    from bwsandbox.validator import _ccells

    return _ccells.history_texts(old, new)


@pytest.fixture(autouse=True)
def _accelerated(monkeypatch: pytest.MonkeyPatch) -> None:
    use_engine("accelerated", monkeypatch)


@settings(max_examples=400, deadline=None)
@given(old=st.none() | _FIELDS, new=_FIELDS, data=st.data())
def test_the_c_history_of_a_change_is_the_python_rule(
    old: dict[str, str] | None, new: dict[str, str], data: st.DataObject
) -> None:
    """For any fields before (or none) and after, in any spelling, the C
    texts are the Python rule's: the fields `fields_diff` lists but
    "status", each side as json.dumps writes it."""
    old_text = None if old is None else data.draw(st.sampled_from(_spellings(old)))
    new_text = data.draw(st.sampled_from(_spellings(new)))
    want = directory.history_texts(old_text, new_text)
    assert _c(old_text, new_text) == want
    diff = [d for d in fields_diff(old or {}, new) if d[0] != "status"]
    assert [json.loads(side) for side in want] == [{n: o for n, o, _ in diff}, {n: w for n, _, w in diff}]


# JSON written by hand: every escape JSON has (upper- and lower-case hex,
# surrogates paired or not), raw characters, and whitespace JSON allows and not.
_ATOMS = st.sampled_from(["a", "status", " ", "é", "\U0001f600", "\x7f", "/", '\\"', "\\\\", "\\/", "\\b",
                          "\\n", "\\t", "\\u0061", "\\u00E9", "\\uD83D\\uDE00", "\\ud83d", "\\ude00",
                          "\\ud83d\\u0061", "\\u0000", "\\u001f"])  # fmt: skip
_SPACE = st.sampled_from(["", "", " ", "\t", "\n", "\r", "\x0b", "\xa0"])
_STRING = st.lists(_ATOMS, max_size=4).map(lambda atoms: '"' + "".join(atoms) + '"')
_VALUE = _STRING | st.sampled_from(["1", "null", "[]", '"tab\there"'])


@st.composite
def _hand_written(draw: st.DrawFn) -> str:
    names = draw(st.lists(st.sampled_from(['"status"', '"a"', '"st\\u0061tus"']) | _STRING, max_size=4))
    members = [draw(_SPACE) + name + draw(_SPACE) + ":" + draw(_SPACE) + draw(_VALUE) + draw(_SPACE)
               for name in names]  # fmt: skip
    tail = draw(st.sampled_from(["", "", " ", "x"]))  # "x": text after the object
    return draw(_SPACE) + "{" + ",".join(members) + draw(_SPACE) + "}" + tail


@settings(max_examples=400, deadline=None)
@given(old=st.none() | _hand_written(), new=_hand_written())
def test_hand_written_json_is_read_as_json_loads_reads_it(old: str | None, new: str) -> None:
    """Any text: the C texts are the Python rule's, or the C module leaves
    the text to it (NotImplemented), which then answers or raises alike."""
    got = _c(old, new)
    try:
        want: object = directory.history_texts(old, new)
    except (ValueError, AttributeError, TypeError) as exc:
        assert got is NotImplemented
        with pytest.raises(type(exc)):
            directory.history_texts_engine()(old, new)
        return
    assert got in (want, NotImplemented)
    assert directory.history_texts_engine()(old, new) == want


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, '{"a": 1}'),  # a value that is not a string
        ('{"a": null}', '{"a": "b"}'),
        (None, '{"a": "b", "a": "c"}'),  # a name twice: json.loads keeps the last
        ('{"a": "b", "\\u0061": "c"}', "{}"),  # the same name, spelled twice
        (None, '["a"]'),
        (None, '{"a": "b"} x'),
        (None, '{"a": "b",}'),
        (None, '{"a": "\\x"}'),  # not a JSON escape
        (None, '{"a": "\\u12"}'),
        (None, '{"a": "tab\there"}'),  # a control character json.loads refuses
        (None, "\ufeff{}"),
        (None, "{" + ", ".join(f'"f{i}": "v"' for i in range(257)) + "}"),  # more fields than it reads
    ],
)
def test_texts_the_c_module_does_not_read_are_left_to_python(old: str | None, new: str) -> None:
    assert _c(old, new) is NotImplemented
    texts = directory.history_texts_engine()
    try:
        want: object = directory.history_texts(old, new)
    except (ValueError, AttributeError, TypeError) as exc:  # what Python makes of it, on either engine
        with pytest.raises(type(exc)):
            texts(old, new)
    else:
        assert texts(old, new) == want


def test_many_fields_and_wide_characters_are_read() -> None:
    old = {f"f{i}": f"v{i}" for i in range(256)}
    new = dict(old, f7="\U0001f600 é", f9="")
    got = _c(json.dumps(old, ensure_ascii=False), json.dumps(new))
    assert got == ('{"f7": "v7", "f9": "v9"}', '{"f7": "\\ud83d\\ude00 \\u00e9", "f9": ""}')


HEADER = "email,first_name,last_name,title,location\r\n"


def _history(tmp_path: Path, engine: str) -> list[tuple[Any, ...]]:
    with pytest.MonkeyPatch.context() as mp:
        use_engine(engine, mp)
        env = Env(tmp_path / engine)
        t = env.tenant("acme")
        first = ("ada@acme.com,Ada,L,CEO,Paris\r\nbo@acme.com,Bo,M,Dév \U0001f600,\r\n"
                 'cy@acme.com,Cy,N,"a ""q""",X\r\n')  # fmt: skip
        second = ("ada@acme.com,Ada,L,Chief,\r\nbo@acme.com,Bö,M,Dév \U0001f600,Oslo\r\n"
                  "cy@acme.com,Cy,N,,X\r\n")  # fmt: skip
        for body in (first, second):
            env.put(t, "users.csv", HEADER + body)
            env.worker.process_pending()
        return env.conn.execute(
            "SELECT id, subject, action, before_json, after_json, status FROM dir_history ORDER BY id"
        ).fetchall()


def test_a_store_written_on_either_engine_holds_the_same_history(tmp_path: Path) -> None:
    got = {engine: _history(tmp_path, engine) for engine in ENGINES}
    assert got["accelerated"] == got["pure"]
    changes = [
        (s, json.loads(b), json.loads(a)) for _, s, action, b, a, _ in got["pure"] if action == "updated"
    ]
    assert changes == [
        ("ada@acme.com", {"title": "CEO", "location": "Paris"}, {"title": "Chief", "location": ""}),
        ("bo@acme.com", {"first_name": "Bo", "location": ""}, {"first_name": "Bö", "location": "Oslo"}),
        ("cy@acme.com", {"title": 'a "q"'}, {"title": ""}),
    ]


# -- the quick change's reading (`_ccells.values_only`, `valuechange.read_fields`) ----------------

_LOOKED_UP = ["email", "employee_id", "manager_email", "department_name", "deactivation_date"]
_ROW_FIELDS = st.dictionaries(st.sampled_from(_LOOKED_UP) | _NAMES, _VALUES, max_size=7)
_PAD = st.sampled_from(["", "", " ", "\t", "\xa0", "\u2028", "\x1f"])  # str.strip()'s whitespace and not


@st.composite
def _row_of(draw: st.DrawFn, old: dict[str, str]) -> dict[str, str]:
    """A row's fields for a user whose stored fields are `old`: mostly the same
    names in the same order with some values changed, else reordered or others."""
    kind = draw(st.sampled_from(["values", "values", "values", "reordered", "other"]))
    if kind == "other":
        return draw(_ROW_FIELDS)
    new = {name: draw(_VALUES) if draw(st.booleans()) else value for name, value in old.items()}
    return dict(reversed(new.items())) if kind == "reordered" else new


def _read_c(old: str, new: str) -> object:
    from bwsandbox.validator import _ccells

    return _ccells.values_only(old, new, tuple(_LOOKED_UP))


@settings(max_examples=400, deadline=None)
@given(stored=_ROW_FIELDS, data=st.data())
def test_the_c_reading_of_a_changed_row_is_the_python_rule(
    stored: dict[str, str], data: st.DataObject
) -> None:
    """For any stored fields (values padded or not) and a row's fields, in any
    spelling, the C answer is `read_fields`': None, or whether every value is
    the same and the new values of the fields the apply looks users up by."""
    from bwsandbox.ingest import valuechange

    old = {name: data.draw(_PAD) + value + data.draw(_PAD) for name, value in stored.items()}
    new = data.draw(_row_of(old))
    old_text = data.draw(st.sampled_from(_spellings(old)))
    new_text = data.draw(st.sampled_from(_spellings(new)))
    want = valuechange.read_fields(old, new)
    assert _read_c(old_text, new_text) == want
    assert valuechange.read_texts()([old_text], [new_text]) == [want]


@settings(max_examples=400, deadline=None)
@given(old=_hand_written(), new=_hand_written())
def test_hand_written_json_is_read_for_the_quick_change_as_json_loads_reads_it(old: str, new: str) -> None:
    """Any texts: the C answer is `read_fields`' of what json.loads reads, or
    the C module leaves them to it (NotImplemented), which answers alike."""
    from bwsandbox.ingest import valuechange

    got = _read_c(old, new)
    try:
        old_fields, new_fields = json.loads(old), json.loads(new)
        want = valuechange.read_fields(old_fields, new_fields)
    except (ValueError, AttributeError, TypeError, KeyError):
        assert got is NotImplemented
        return
    assert got in (want, NotImplemented)
    assert valuechange.read_texts()([old], [new]) == [want]
