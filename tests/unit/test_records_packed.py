"""`records.Packed`, a user's fields as a tuple against shared names: it must
be a mapping like the dict it replaces, and packing must change nothing the
rules decide (docs/benchmarks.md "Ingest at scale")."""

from __future__ import annotations

import pytest
from apply_helpers import policy, run
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ingest_apply import directories, files, id_files

from bwsandbox.ingest.apply import apply_users
from bwsandbox.ingest.links import NONE, Pending
from bwsandbox.ingest.records import ManualEdit, Outcome, Packed, Shapes, Source, State, User, as_dict
from bwsandbox.spec.fields import Profile
from bwsandbox.validator.model import ApplicableRow

_names = st.sampled_from(["email", "first_name", "title", "employee_id", "x", ""])
_fields = st.dictionaries(_names, st.text(max_size=4), max_size=5)


def _pack(shapes: Shapes, fields: dict[str, str]) -> Packed:
    return shapes.pack(tuple(fields), tuple(fields.values()))


@settings(max_examples=300, deadline=None)
@given(fields=_fields, other=_fields, probe=_names)
def test_property_a_packed_mapping_behaves_as_its_dict(
    fields: dict[str, str], other: dict[str, str], probe: str
) -> None:
    shapes = Shapes()
    packed, packed_other = _pack(shapes, fields), _pack(shapes, other)
    assert list(packed) == list(fields) and len(packed) == len(fields)
    assert list(packed.items()) == list(fields.items())
    assert (probe in packed) == (probe in fields)
    assert packed.get(probe) == fields.get(probe)
    assert packed.get(probe, "-") == fields.get(probe, "-")
    if probe in fields:
        assert packed[probe] == fields[probe]
    else:
        with pytest.raises(KeyError):
            packed[probe]
    assert packed == fields and fields == packed
    # Equality is the dicts' equality, whether the shapes are shared or not.
    assert (packed == packed_other) == (fields == other)
    assert (packed != packed_other) == (fields != other)
    assert (packed == _pack(Shapes(), other)) == (fields == other)
    copy = as_dict(packed)
    assert copy == fields and type(copy) is dict
    copy["changed"] = "y"
    assert "changed" not in packed
    with pytest.raises(TypeError):
        hash(packed)


def test_users_with_the_same_names_share_one_index() -> None:
    shapes = Shapes()
    a = shapes.pack(("email", "title"), ("a@x.com", "Eng"))
    b = shapes.pack(("email", "title"), ("b@x.com", "Eng"))
    c = shapes.pack(("title", "email"), ("Eng", "c@x.com"))
    assert a._index is b._index and a._index is not c._index
    assert repr(a) == "{'email': 'a@x.com', 'title': 'Eng'}"


def test_a_pending_change_copies_packed_fields_and_never_changes_them() -> None:
    stored = Shapes().pack(("email", "title"), ("a@x.com", "Eng"))
    res = Pending(uid=1, fields=stored, active=True, row=2, columns=NONE, new=False, owned=False)
    res.set("title", "Eng")  # the value held already: nothing copied
    assert res.fields is stored
    res.set("title", "CTO")
    res.drop("email")
    assert dict(stored) == {"email": "a@x.com", "title": "Eng"}
    assert res.fields == {"title": "CTO"} and type(res.fields) is dict
    owned_packed = Pending(uid=2, fields=stored, active=True, row=2, columns=NONE, new=True)
    owned_packed.drop("title")  # "owned" packed fields are still copied: a Packed never changes
    assert dict(stored) == {"email": "a@x.com", "title": "Eng"}
    assert owned_packed.fields == {"email": "a@x.com"} and type(owned_packed.fields) is dict


def test_a_shape_refuses_repeated_names_and_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="twice"):
        Shapes().pack(("a", "a"), ("1", "2"))
    with pytest.raises(ValueError, match="1 values for 2 names"):
        Shapes().pack(("a", "b"), ("1",))


def test_a_packed_mapping_compares_with_any_mapping_as_a_dict_does() -> None:
    packed = Shapes().pack(("email", "title"), ("a@x.com", "Eng"))
    assert packed == {"title": "Eng", "email": "a@x.com"}  # order aside, as dicts
    assert packed != {"email": "a@x.com", "title": None}
    assert packed != {"email": "a@x.com"} and packed != [("email", "a@x.com"), ("title", "Eng")]


def _packed_state(state: State) -> State:
    shapes = Shapes()
    users = {
        uid: User(uid=uid, fields=_pack(shapes, dict(u.fields)), active=u.active)
        for uid, u in state.users.items()
    }
    return State(users=users, departments=state.departments, manual=state.manual)


def _seen(outcome: Outcome) -> tuple[object, ...]:
    return (
        outcome.counts, outcome.refused, [(f.code, f.row, f.message) for f in outcome.findings],
        [(c.action, c.uid, dict(c.fields), c.active, c.row, c.diff) for c in outcome.users],
        outcome.overwritten, outcome.manual_cleared, outcome.departments,
    )


@st.composite
def _cases(draw: st.DrawFn) -> tuple[State, list[ApplicableRow]]:
    """A directory and a file, by email or by employee id (renamed managers,
    managers by id, departments), with a manual edit sometimes."""
    if draw(st.booleans()):
        return draw(directories()), draw(files())
    state = run(State(), draw(id_files()))[1]
    if state.users and draw(st.booleans()):
        uid = draw(st.sampled_from(sorted(state.users)))
        edit = ManualEdit(uid=uid, field="department_name", value="Manual", at="t", source="admin")
        manual = {(uid, "department_name"): edit}
        state = State(users=state.users, departments=state.departments, manual=manual)
    return state, draw(id_files())


@settings(max_examples=300, deadline=None)
@given(case=_cases(), profile=st.sampled_from(list(Profile)),
       source=st.sampled_from([Source.FILE, Source.ADMIN]), licenses=st.sampled_from([None, 3]),
       limit=st.sampled_from([0.2, 1.0]))
def test_property_a_packed_directory_is_applied_as_a_dict_one(
    case: tuple[State, list[ApplicableRow]], profile: Profile, source: Source, licenses: int | None,
    limit: float,
) -> None:
    d, f = case
    as_dicts = State(
        users={uid: User(uid=uid, fields=as_dict(u.fields), active=u.active) for uid, u in d.users.items()},
        departments=d.departments, manual=d.manual,
    )
    stored = {uid: (dict(u.fields), u.active) for uid, u in as_dicts.users.items()}
    chosen = policy(f, profile=profile, source=source, licenses=licenses, termination_limit=limit)
    assert _seen(apply_users(_packed_state(d), f, chosen)) == _seen(apply_users(as_dicts, f, chosen))
    # Copy on write: applying changed none of the stored users' dicts.
    assert {uid: (dict(u.fields), u.active) for uid, u in as_dicts.users.items()} == stored
