"""The apply rules (docs/production.md §3-§5), pure: ApplicableRows in, an Outcome out."""

from __future__ import annotations

from apply_helpers import TODAY, by_email, policy, rows, run, seeded, user
from hypothesis import given, settings
from hypothesis import strategies as st

from bwsandbox.ingest.apply import due_deactivations
from bwsandbox.ingest.departments import apply_departments
from bwsandbox.ingest.records import Action, ManualEdit, Source, State
from bwsandbox.spec import messages
from bwsandbox.spec.fields import Profile
from bwsandbox.validator.model import ApplicableRow


def test_creates_users_and_counts_them() -> None:
    outcome, state = run(State(), rows(user("a@x.com"), user("b@x.com")))
    assert outcome.counts == {"created": 2}
    assert set(by_email(state)) == {"a@x.com", "b@x.com"}


def test_identity_is_the_email_case_insensitively() -> None:
    state = seeded(user("Ann@X.com", title="Eng"))
    outcome, after = run(state, rows(user("ann@x.COM", title="CTO")))
    assert outcome.counts == {"updated": 1}
    assert len(after.users) == 1
    assert by_email(after)["ann@x.com"][0]["title"] == "CTO"


def test_identity_is_the_employee_id_when_employee_id_and_manager_id_columns_are_present() -> None:
    state = seeded(user("old@x.com", employee_id="E1"))
    records = rows(user("new@x.com", employee_id="E1", manager_id=""))
    outcome, after = run(state, records)
    assert outcome.counts == {"updated": 1}
    assert set(by_email(after)) == {"new@x.com"}  # the same user, email changed


def test_employee_id_alone_does_not_change_identity() -> None:
    state = seeded(user("old@x.com", employee_id="E1"))
    outcome, after = run(state, rows(user("new@x.com", employee_id="E1")))
    assert outcome.counts == {"created": 1}
    assert set(by_email(after)) == {"old@x.com", "new@x.com"}


def test_manager_id_is_resolved_to_the_managers_email_even_later_in_the_file() -> None:
    records = rows(
        user("ann@x.com", employee_id="2", manager_id="1"),
        user("boss@x.com", employee_id="1", manager_id=""),
    )
    _, state = run(State(), records)
    assert by_email(state)["ann@x.com"][0]["manager_email"] == "boss@x.com"
    assert "manager_email" not in by_email(state)["boss@x.com"][0]


def test_present_column_sets_empty_cell_clears_absent_column_leaves_alone() -> None:
    state = seeded(user("a@x.com", title="Eng", location="Paris", phone="123"))
    _, after = run(state, rows({"email": "a@x.com", "title": "CTO", "location": ""}))
    fields = by_email(after)["a@x.com"][0]
    assert fields["title"] == "CTO"
    assert "location" not in fields
    assert fields["phone"] == "123"


def test_an_empty_required_field_is_never_cleared() -> None:
    state = seeded(user("a@x.com", "Ann"))
    _, after = run(state, rows({"email": "a@x.com", "first_name": ""}))
    assert by_email(after)["a@x.com"][0]["first_name"] == "Ann"


def test_deactivation_date_past_or_today_deactivates_now() -> None:
    state = seeded(user("a@x.com"), user("b@x.com"))
    outcome, after = run(
        state,
        rows({"email": "a@x.com", "deactivation_date": "2026-01-01"},
             {"email": "b@x.com", "deactivation_date": TODAY}),
    )
    assert outcome.counts == {"deactivated": 2}
    assert not any(active for _, active in by_email(after).values())


def test_future_deactivation_waits_for_its_date() -> None:
    state = seeded(user("a@x.com"))
    outcome, after = run(state, rows({"email": "a@x.com", "deactivation_date": "2026-04-01"}))
    assert outcome.counts == {"updated": 1}
    assert by_email(after)["a@x.com"][1] is True
    assert due_deactivations(after, "2026-03-31").users == []
    due = due_deactivations(after, "2026-04-01")
    assert [c.action for c in due.users] == [Action.DEACTIVATED]
    assert by_email(due.state_after(after))["a@x.com"][1] is False


def test_blank_deactivation_date_reactivates() -> None:
    state = seeded(user("a@x.com", deactivation_date="2026-01-01"))
    assert by_email(state)["a@x.com"][1] is False
    outcome, after = run(state, rows({"email": "a@x.com", "deactivation_date": ""}))
    assert outcome.counts == {"reactivated": 1}
    assert by_email(after)["a@x.com"] == ({"email": "a@x.com", "first_name": "F", "last_name": "L"}, True)


def test_licence_limit_refuses_every_creation_while_other_rows_apply() -> None:
    state = seeded(user("a@x.com", title="Eng"))
    records = rows(user("a@x.com", title="CTO"), user("b@x.com"), user("c@x.com"))
    outcome, after = run(state, records, licenses=2)
    assert outcome.counts == {"updated": 1, "skipped": 2}
    assert set(by_email(after)) == {"a@x.com"}
    assert [(i.code, i.row, i.message) for i in outcome.findings] == [
        ("LICENSE_LIMIT", 3, messages.license_limit(2, 1)),
        ("LICENSE_LIMIT", 4, messages.license_limit(2, 1)),
    ]


def test_licence_limit_counts_only_active_users() -> None:
    state = seeded(user("a@x.com", deactivation_date="2026-01-01"))
    outcome, _ = run(state, rows(user("b@x.com")), licenses=1)
    assert outcome.counts == {"created": 1}


def test_departments_are_created_on_first_use() -> None:
    outcome, state = run(State(), rows(user("a@x.com", department_name="Sales"),
                                       user("b@x.com", department_name="sales")))
    assert [d.after.name for d in outcome.departments] == ["Sales"]  # as the first row spells it
    assert list(state.departments) == ["sales"]
    users = by_email(state)  # each user keeps their own row's spelling
    assert [users[e][0]["department_name"] for e in ("a@x.com", "b@x.com")] == ["Sales", "sales"]


def test_a_new_department_is_named_by_its_first_row_in_the_file_whatever_the_users_order() -> None:
    """The first row naming it, in file order: not the first user stored
    (a row reaching a stored user comes after a creation here), nor a later
    row of the same spelling."""
    state = seeded(user("a@x.com"), user("c@x.com"))
    outcome, after = run(state, rows(user("b@x.com", department_name="Sales Ops"),
                                     user("a@x.com", department_name="sales ops"),
                                     user("c@x.com", department_name="Sales Ops"),
                                     user("d@x.com", department_name="SALES OPS")))  # fmt: skip
    assert [(d.after.name, d.row) for d in outcome.departments] == [("Sales Ops", 2)]
    spelt = {"b": "Sales", "a": "SALES", "c": "Sales"}
    first = run(State(), rows(*(user(f"{n}@x.com", department_name=d) for n, d in spelt.items())))[0]
    assert [(d.after.name, d.row) for d in first.departments] == [("Sales", 2)]
    assert list(after.departments) == ["sales ops"]


def test_department_file_creates_updates_and_protects_departments_with_active_users() -> None:
    state = seeded(user("a@x.com", department_name="Sales"))
    records = [
        ApplicableRow(row=2, values={"name": "Company", "parent": "", "is_active": "true"}),
        ApplicableRow(row=3, values={"name": "Sales", "parent": "Company", "is_active": "false"}),
    ]
    outcome = apply_departments(state, records, policy(records))
    after = outcome.state_after(state)
    assert after.departments["sales"].parent == "Company"
    assert after.departments["sales"].active is True  # has an active user
    assert [i.code for i in outcome.findings] == ["DEPARTMENT_HAS_ACTIVE_USERS"]
    assert [(d.action, d.after.name) for d in outcome.departments] == [
        (Action.CREATED, "Company"), (Action.UPDATED, "Sales"),  # Sales was created on first use
    ]
    assert "created" not in outcome.counts  # departments are not counted as users


def test_core_leaves_omitted_users_untouched() -> None:
    state = seeded(*(user(f"u{i}@x.com") for i in range(10)))
    outcome, after = run(state, rows(user("u0@x.com")))
    assert outcome.counts == {"unchanged": 1}
    assert all(active for _, active in by_email(after).values())


def test_engage_terminates_omitted_users_within_the_safety_limit() -> None:
    state = seeded(*(user(f"u{i}@x.com") for i in range(10)))
    records = rows(*(user(f"u{i}@x.com") for i in range(8)))
    outcome, after = run(state, records, profile=Profile.ENGAGE, termination_limit=0.2)
    assert outcome.counts == {"unchanged": 8, "terminated": 2}
    # Said up front, with the count, the share and who (docs/production.md §5, §10: "up front").
    (said,) = outcome.findings
    assert (said.code, said.severity, said.row) == ("TERMINATIONS", "warning", None)
    assert said.message.startswith("This engage file terminates 2 of the 10 active users in the directory "
                                   "(20%): u8@x.com, u9@x.com.")
    assert by_email(after)["u9@x.com"] == (
        {"email": "u9@x.com", "first_name": "F", "last_name": "L", "deactivation_date": TODAY}, False
    )


def test_engage_refuses_a_file_that_would_terminate_more_than_the_limit() -> None:
    state = seeded(*(user(f"u{i}@x.com") for i in range(10)))
    records = rows(user("u0@x.com", title="New"), *(user(f"u{i}@x.com") for i in range(1, 7)))
    outcome, after = run(state, records, profile=Profile.ENGAGE, termination_limit=0.2)
    assert outcome.refused
    assert [i.code for i in outcome.findings] == ["TERMINATION_LIMIT"]
    message = outcome.findings[0].message
    assert "would terminate 3 of the 10 active users (30%), more than the safety limit of 20%" in message
    assert "(setting engage_termination_limit)" in message and "sandbox's own" in message
    assert after == state  # nothing at all applied


def test_engage_does_not_terminate_users_whose_row_was_skipped() -> None:
    state = seeded(*(user(f"u{i}@x.com") for i in range(5)))
    records = rows(*(user(f"u{i}@x.com") for i in range(4)))
    outcome, _ = run(state, records, profile=Profile.ENGAGE, mentioned=frozenset({"u4@x.com"}))
    assert "terminated" not in outcome.counts


def test_engage_reactivates_a_terminated_user_back_in_the_roster() -> None:
    state = seeded(user("a@x.com", deactivation_date="2026-01-01"))
    outcome, after = run(state, rows({"email": "a@x.com"}), profile=Profile.ENGAGE)
    assert outcome.counts == {"reactivated": 1}
    assert by_email(after)["a@x.com"][1] is True


def test_a_file_overrides_manual_edits_and_lists_each_one_it_overwrote() -> None:
    state = seeded(user("a@x.com", title="Eng", location="Paris"))
    admin, state = run(state, rows({"email": "a@x.com", "title": "CTO", "location": "Rome"}),
                       source=Source.ADMIN, source_label="admin set-user a@x.com")
    assert {(m.field, m.value) for m in admin.manual_set} == {("title", "CTO"), ("location", "Rome")}
    outcome, after = run(state, rows({"email": "a@x.com", "title": "VP"}))
    assert [(o.field, o.manual_value, o.file_value, o.edited_by) for o in outcome.overwritten] == [
        ("title", "CTO", "VP", "admin set-user a@x.com")
    ]
    assert by_email(after)["a@x.com"][0]["location"] == "Rome"  # absent column: the manual edit stays
    assert set(after.manual) == {(1, "location")}


def test_history_diff_keeps_the_replaced_value() -> None:
    state = seeded(user("a@x.com", title="Eng"))
    outcome, _ = run(state, rows({"email": "a@x.com", "title": "CTO"}))
    assert outcome.users[0].diff == (("title", "Eng", "CTO"),)


def test_applying_the_same_file_twice_changes_nothing_the_second_time() -> None:
    records = rows(user("a@x.com", title="Eng"), user("b@x.com", manager_email="a@x.com"))
    first, state = run(State(), records)
    second, again = run(state, records)
    assert first.changed and not second.changed
    assert second.counts == {"unchanged": 2}
    assert again == state


# -- property: apply(apply(d, f), f) == apply(d, f) ------------------------------

EMAILS = [f"user{i}@x.com" for i in range(6)]
_value = st.sampled_from(["", "A", "B", "Zed"])
_date = st.sampled_from(["", "2026-01-01", TODAY, "2026-12-31"])


@st.composite
def files(draw: st.DrawFn) -> list[ApplicableRow]:
    columns = draw(st.sets(st.sampled_from(["title", "location", "manager_email", "deactivation_date",
                                            "department_name", "employee_id"])))
    chosen = draw(st.lists(st.sampled_from(EMAILS), unique_by=str.lower, max_size=6))
    records = []
    for email in chosen:
        values = {"email": draw(st.sampled_from([email, email.upper()])),
                  "first_name": draw(st.sampled_from(["Ann", "Bob"])), "last_name": "L"}
        for column in sorted(columns):
            if column == "deactivation_date":
                values[column] = draw(_date)
            elif column == "manager_email":
                values[column] = draw(st.sampled_from(["", *EMAILS]))
            else:
                values[column] = draw(_value)
        records.append(values)
    return rows(*records)


@st.composite
def directories(draw: st.DrawFn) -> State:
    state = run(State(), draw(files()))[1]
    if state.users and draw(st.booleans()):
        uid = draw(st.sampled_from(sorted(state.users)))
        edit = ManualEdit(uid=uid, field="title", value="Manual", at="t", source="admin")
        state = State(users=state.users, departments=state.departments, manual={(uid, "title"): edit})
    return state


@settings(max_examples=300, deadline=None)
@given(d=directories(), f=files(), profile=st.sampled_from(list(Profile)),
       licenses=st.sampled_from([None, 3, 100]), limit=st.sampled_from([0.2, 1.0]))
def test_property_applying_a_file_twice_equals_applying_it_once(
    d: State, f: list[ApplicableRow], profile: Profile, licenses: int | None, limit: float
) -> None:
    kw = {"profile": profile, "licenses": licenses, "termination_limit": limit}
    once = run(d, f, **kw)[1]
    second, twice = run(once, f, **kw)
    assert twice == once
    assert not second.changed


# -- the same property through the whole pipeline: CSV bytes -> validator ->
# apply -> the SQLite directory, in a real store --------------------------------


def _csv(records: list[ApplicableRow], extra_column: bool) -> bytes:
    import csv
    import io

    header = ["email", "first_name", "last_name"]
    for r in records:
        header += [k for k in r.values if k not in header]
    if extra_column:
        header.append("shoe_size")  # unknown to the template: ignored, never stored
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for r in records:
        writer.writerow([r.values.get(h, "42" if h == "shoe_size" else "") for h in header])
    return out.getvalue().encode()


def _mmddyyyy(records: list[ApplicableRow]) -> list[ApplicableRow]:
    """Feed dates as production's mm/dd/yyyy (ISO draws a notice, not an error)."""
    out = []
    for r in records:
        values = dict(r.values)
        if values.get("deactivation_date"):
            y, m, d = values["deactivation_date"].split("-")
            values["deactivation_date"] = f"{m}/{d}/{y}"
        out.append(ApplicableRow(row=r.row, values=values))
    return out


@st.composite
def id_files(draw: st.DrawFn) -> list[ApplicableRow]:
    """Files with identity by employee id: renames, adopted ids, managers by id,
    departments (one of which may be deactivated)."""
    emails = draw(st.lists(st.sampled_from(EMAILS), unique_by=str.lower, max_size=6))
    ids = draw(st.lists(st.sampled_from([str(i) for i in range(1, 8)]), unique=True,
                        min_size=len(emails), max_size=len(emails)))
    records = []
    for email, eid in zip(emails, ids, strict=True):
        records.append({
            "email": email, "first_name": "Ann", "last_name": "L", "employee_id": eid,
            "manager_id": draw(st.sampled_from(["", *ids])),
            "department_name": draw(st.sampled_from(["", "Eng", "Old"])),
        })
    return rows(*records)


@settings(max_examples=60, deadline=None)
@given(
    files_of=st.sampled_from(["email", "employee_id"]), data=st.data(),
    profile=st.sampled_from(list(Profile)), extra=st.booleans(),
    licenses=st.sampled_from([1000, 3]), old_closed=st.booleans(),
)
def test_property_the_pipeline_applies_a_file_once_whatever_the_directory(
    files_of: str, data: st.DataObject, profile: Profile, extra: bool, licenses: int, old_closed: bool
) -> None:
    strategy = files() if files_of == "email" or profile is Profile.ENGAGE else id_files()
    seed, f = data.draw(strategy), data.draw(strategy)
    _pipeline_twice(seed, f, profile, extra, licenses, old_closed)


def _pipeline_twice(
    seed: list[ApplicableRow], f: list[ApplicableRow], profile: Profile, extra: bool, licenses: int,
    old_closed: bool,
) -> None:
    import datetime as dt
    import tempfile
    from pathlib import Path

    from bwsandbox import store, tenants
    from bwsandbox.clock import Clock
    from bwsandbox.ingest import directory
    from bwsandbox.ingest.process import process

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        conn = store.connect(data_dir / "sandbox.db")
        clock = Clock(fixed=dt.datetime(2026, 3, 15, 9, 0, tzinfo=dt.UTC))
        with store.transaction(conn):
            tenant = tenants.add(conn, name="acme", username="acme", password="pw", profile=profile,
                                 licenses=licenses, created_at="2026-01-01T00:00:00+00:00")

        def send(records: list[ApplicableRow], name: str) -> dict[str, object]:
            return process(conn, data_dir=data_dir, tenant=tenant, name=name,
                           data=_csv(_mmddyyyy(records), extra), clock=clock, source=Source.FILE,
                           label=name, termination_limit=1.0).report

        send(seed, "seed.csv")
        if old_closed and profile is Profile.CORE:  # a department file closes "Old" (if nobody is in it)
            process(conn, data_dir=data_dir, tenant=tenant, name="departments.csv",
                    data=b"name,parent,is_active\r\nOld,,false\r\n", clock=clock, source=Source.FILE,
                    label="departments.csv", termination_limit=1.0)
        send(f, "f1.csv")
        once = directory.users_listing(conn, "acme")
        second = send(f, "f2.csv")
        assert directory.users_listing(conn, "acme") == once
        applied = second["applied"]
        assert isinstance(applied, dict)
        changes = ("created", "updated", "deactivated", "reactivated", "terminated")
        assert not any(applied.get(k) for k in changes)
        assert all("shoe_size" not in u for u in once)
        conn.close()
