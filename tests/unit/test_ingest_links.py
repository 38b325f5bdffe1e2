"""The apply rules that look across users (`ingest/links.py`): unique
addresses under identity by employee id, manager links (renames, loops through
the directory, links to refused rows), departments users may be moved into."""

from __future__ import annotations

from typing import Any
from unittest import mock

from apply_helpers import by_email, issues, rows, run, seeded, user
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ingest_apply import directories, files

from bwsandbox.ingest.loops import LoopRules, on_loops
from bwsandbox.ingest.records import ManualEdit, State
from bwsandbox.spec import messages
from bwsandbox.validator.model import ApplicableRow

# -- identity by employee id: addresses stay unique, links follow a rename ------


def test_a_file_cannot_give_a_user_another_users_address() -> None:
    state = seeded(user("bob@x.com", employee_id="00124"), user("cat@x.com", employee_id="00999"))
    outcome, after = run(state, rows(user("bob@x.com", employee_id="00999", manager_id="")))
    assert issues(outcome) == {("EMAIL_TAKEN", 2)}
    (taken,) = outcome.findings
    assert taken.message.startswith(messages.SHARED_EMAIL) and "the sandbox's rule" in taken.message
    assert by_email(after) == by_email(state)  # Cat keeps her address, Bob stays Bob
    assert outcome.counts == {"skipped": 1}


def test_an_unknown_id_with_an_address_of_a_user_with_another_id_is_refused() -> None:
    state = seeded(user("cat@x.com", employee_id="00125"))
    outcome, after = run(state, rows(user("cat@x.com", employee_id="00999", manager_id="")))
    assert issues(outcome) == {("EMAIL_TAKEN", 2)}
    assert by_email(after) == by_email(state)


def test_an_address_a_deactivated_user_held_can_be_taken_by_a_new_id() -> None:
    """docs/production.md §6: refused only when another ACTIVE user holds the address."""
    state = seeded(user("cat@x.com", employee_id="00125", deactivation_date="2020-01-01"))
    assert not any(u.active for u in state.users.values())
    outcome, after = run(state, rows(user("cat@x.com", employee_id="00999", manager_id="")))
    assert issues(outcome) == set() and outcome.counts == {"created": 1}


def test_a_user_without_an_id_yet_is_matched_by_address_and_adopts_it() -> None:
    state = seeded(user("cat@x.com"))
    outcome, after = run(state, rows(user("cat@x.com", employee_id="00125", manager_id="")))
    assert outcome.counts == {"updated": 1}
    assert by_email(after)["cat@x.com"][0]["employee_id"] == "00125"


def test_users_follow_their_managers_new_address() -> None:
    state = seeded(
        user("ann@x.com", employee_id="1"),
        user("bob@x.com", employee_id="2", manager_email="ann@x.com"),
    )
    outcome, after = run(state, rows(user("ann.archer@x.com", employee_id="1", manager_id="")))
    users = by_email(after)
    assert set(users) == {"ann.archer@x.com", "bob@x.com"}
    assert users["bob@x.com"][0]["manager_email"] == "ann.archer@x.com"  # Bob is not in the file
    assert outcome.counts == {"updated": 2}


def test_a_manager_cycle_closing_through_the_directory_is_refused() -> None:
    state = seeded(user("u0@x.com"), user("u1@x.com", manager_email="u0@x.com"),
                   user("u2@x.com", manager_email="u1@x.com"))
    outcome, after = run(state, rows(user("u0@x.com", manager_email="u2@x.com", title="CEO")))
    assert issues(outcome) == {("MANAGER_CYCLE", 2)}
    u0 = by_email(after)["u0@x.com"][0]
    assert "manager_email" not in u0 and u0["title"] == "CEO"  # the rest of the row applies


def test_a_user_is_not_moved_into_a_deactivated_department() -> None:
    from bwsandbox.ingest.records import Department

    state = seeded(user("a@x.com", department_name="Eng"))
    old = Department(name="Old", active=False)
    state = State(users=state.users, departments={**state.departments, "old": old}, manual=state.manual)
    outcome, after = run(state, rows(user("a@x.com", department_name="old", title="CTO"),
                                     user("b@x.com", department_name="Old")))
    assert issues(outcome) == {("DEPARTMENT_INACTIVE", 2), ("DEPARTMENT_INACTIVE", 3)}
    users = by_email(after)
    assert users["a@x.com"][0]["department_name"] == "Eng" and users["a@x.com"][0]["title"] == "CTO"
    assert "department_name" not in users["b@x.com"][0]  # created, without the department


def test_a_row_may_take_an_address_a_later_row_frees_in_any_order() -> None:
    state = seeded(user("a@x.com", employee_id="1"))
    y = user("a@x.com", first="Yan", employee_id="2", manager_id="")
    x = user("c@x.com", employee_id="1", manager_id="")
    for order in ((y, x), (x, y)):
        outcome, after = run(state, rows(*order))
        assert outcome.findings == []
        users = by_email(after)
        assert (users["a@x.com"][0]["employee_id"], users["c@x.com"][0]["employee_id"]) == ("2", "1")
        second, again = run(after, rows(*order))
        assert again == after and not second.changed


def test_a_manager_named_by_id_overwrites_a_manual_manager_edit() -> None:
    """A file's manager_id gives its user a manager address, so it takes over
    a manual edit of that address (docs/production.md §5), though the file
    has no manager_email column."""
    state = seeded(user("m@x.com", employee_id="1"), user("u@x.com", employee_id="2"))
    edit = ManualEdit(uid=2, field="manager_email", value="someone@x.com", at="t", source="admin")
    state = State(users=state.users, departments=state.departments, manual={(2, "manager_email"): edit})
    outcome, after = run(state, rows(user("u@x.com", employee_id="2", manager_id="1")))
    assert outcome.manual_cleared == [(2, "manager_email")]
    assert [(o.field, o.manual_value, o.file_value) for o in outcome.overwritten] == [
        ("manager_email", "someone@x.com", "m@x.com")
    ]
    assert by_email(after)["u@x.com"][0]["manager_email"] == "m@x.com"


def test_a_renamed_manager_cannot_hide_a_loop_through_the_directory() -> None:
    state = seeded(user("m@x.com", employee_id="1"),
                   user("u@x.com", employee_id="2", manager_email="m@x.com"))
    outcome, after = run(state, rows(user("m.new@x.com", employee_id="1", manager_id="2")))
    assert issues(outcome) == {("MANAGER_CYCLE", 2)}
    users = by_email(after)
    assert "manager_email" not in users["m.new@x.com"][0]
    assert users["u@x.com"][0]["manager_email"] == "m.new@x.com"


def test_a_follower_of_a_renamed_manager_does_not_take_an_address_from_the_file() -> None:
    """A renamed manager's follower (a user the file leaves alone) holds
    their address after the file's own users, whatever the order the rules
    added them in: here the new x@ holds it, and x@ -> z@ -> x@ is a loop."""
    state = seeded(user("m@x.com", employee_id="1"),
                   user("x@x.com", employee_id="2", manager_email="m@x.com", deactivation_date="2020-01-01"),
                   user("z@x.com", employee_id="3"))
    outcome, after = run(state, rows(user("m2@x.com", employee_id="1", manager_id="", manager_email=""),
                                     user("x@x.com", employee_id="9", manager_email="z@x.com"),
                                     user("z@x.com", employee_id="3", manager_email="x@x.com")))
    assert issues(outcome) == {("MANAGER_CYCLE", 3), ("MANAGER_CYCLE", 4)}
    managers = {(u.fields["email"], u.fields.get("employee_id")): u.fields.get("manager_email")
                for u in after.users.values()}
    assert managers[("x@x.com", "9")] is None and managers[("z@x.com", "3")] is None


def test_a_reactivated_user_leaves_a_deactivated_department() -> None:
    from bwsandbox.ingest.records import Department

    state = seeded(user("a@x.com", department_name="Old", deactivation_date="2026-01-01"))
    old = Department(name="Old", active=False)
    state = State(users=state.users, departments={**state.departments, "old": old}, manual=state.manual)
    outcome, after = run(state, rows(user("a@x.com", deactivation_date="")))
    assert issues(outcome) == {("DEPARTMENT_INACTIVE", 2)}
    fields, active = by_email(after)["a@x.com"]
    assert active and "department_name" not in fields
    second, again = run(after, rows(user("a@x.com", deactivation_date="")))
    assert again == after and not second.changed


def test_a_link_to_a_creation_the_licence_limit_refused_is_not_set() -> None:
    state = seeded(user("a@x.com"))
    records = rows(user("a@x.com", manager_email="new@x.com"), user("new@x.com"))
    outcome, after = run(state, records, licenses=1)
    assert ("MANAGER_NOT_FOUND", 2) in issues(outcome) and ("LICENSE_LIMIT", 3) in issues(outcome)
    assert "manager_email" not in by_email(after)["a@x.com"][0]


def test_a_manager_id_naming_a_refused_creation_is_reported_not_dropped_silently() -> None:
    state = seeded(user("keep@x.com", employee_id="0001"))
    records = rows(user("keep@x.com", employee_id="0001", manager_id="0009"),
                   user("a@x.com", employee_id="0009", manager_id=""))
    outcome, after = run(state, records, licenses=1)
    assert ("MANAGER_NOT_FOUND", 2) in issues(outcome) and ("LICENSE_LIMIT", 3) in issues(outcome)
    [found] = [i for i in outcome.findings if i.code == "MANAGER_NOT_FOUND"]
    assert (found.column, found.value) == ("manager_id", "0009")
    assert "manager_email" not in by_email(after)["keep@x.com"][0]


def test_a_loop_named_by_manager_id_is_reported_on_that_column() -> None:
    state = seeded(user("m@x.com", employee_id="1"),
                   user("u@x.com", employee_id="2", manager_email="m@x.com"))
    outcome, _ = run(state, rows(user("m@x.com", employee_id="1", manager_id="2")))
    [cycle] = outcome.findings
    assert (cycle.code, cycle.column, cycle.value) == ("MANAGER_CYCLE", "manager_id", "2")


# -- manager loops over integer arrays -------------------------------------------


def _on_a_loop_walked(managers: list[int], start: int) -> bool:
    """The plain reading: following `start`'s managers comes back to `start`."""
    node = managers[start]
    for _ in range(len(managers)):
        if node < 0:
            return False
        if node == start:
            return True
        node = managers[node]
    return False


_READ_LINKS = LoopRules._read_links
_EVERY_USER = "SELECT uid FROM w_pend UNION SELECT uid FROM w_dir"


@settings(max_examples=400, deadline=None)
@given(d=directories(), f=files())
def test_the_loop_check_reading_the_managers_links_refuses_as_reading_every_link(
    d: State, f: list[ApplicableRow]
) -> None:
    """The loop check reads the links of the users someone has as manager
    (and of an old manager given back by a refusal): the same refusals and
    directory as reading every user's link."""

    def every_link(self: LoopRules, managers: Any, makes: Any, users: str = "", params: Any = ()) -> None:
        _READ_LINKS(self, managers, makes, users or _EVERY_USER, params)

    outcome, after = run(d, f)
    with mock.patch.object(LoopRules, "_read_links", every_link):
        every, after_every = run(d, f)
    assert outcome.findings == every.findings
    assert after == after_every


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=70).flatmap(
    lambda n: st.lists(st.integers(min_value=-1, max_value=n - 1), min_size=n, max_size=n)))
def test_the_users_on_manager_loops_are_those_whose_chain_comes_back(managers: list[int]) -> None:
    import numpy as np

    got = on_loops(np.array(managers, dtype=np.int64)).tolist()
    assert got == [_on_a_loop_walked(managers, u) for u in range(len(managers))]


def test_a_long_loop_and_a_long_chain_into_it_are_told_apart() -> None:
    import numpy as np

    n = 5_000  # users 0..2499 a chain into the loop 2500 -> ... -> 4999 -> 2500
    managers = np.arange(1, n + 1, dtype=np.int64)
    managers[-1] = n // 2
    on = on_loops(managers)
    assert not on[: n // 2].any() and on[n // 2 :].all()
