"""A CSV file's common record is read in C from its bytes and no row is
made of it: a re-sent file's into quick rows (`_ccells.quick_record`,
`ingest/quick.py` `read_records`), a first load's straight into `w_pend`
(`_ccells.plain_rows`, `ingest/fresh.py`). The answer is the one the rule
gives the row the validator makes of the record (a property test over
hostile cells), and applying a file so changes no outcome against applying
its rows one by one."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable, Mapping
from unittest import mock

import pytest
from apply_helpers import TODAY
from hypothesis import given, settings
from hypothesis import strategies as st

from bwsandbox.ingest import fresh, workspace
from bwsandbox.ingest.apply import apply_users, materialised, run
from bwsandbox.ingest.quick import QuickRule, columns_text, record_columns, record_spec
from bwsandbox.ingest.records import Outcome, Policy, State, email_key
from bwsandbox.ingest.stored import new_fields
from bwsandbox.spec.fields import Profile
from bwsandbox.validator import Context, validate
from bwsandbox.validator._ccells import quick_record
from bwsandbox.validator.applicable import Applicable
from bwsandbox.validator.values import NEVER, PLAIN_DATE_DMY, PLAIN_DATE_MDY, PLAIN_TEXT

HEADER = ["email", "first_name", "last_name", "employee_id", "title", "on_leave", "deactivation_date", "x y",
          "manager_email"]
# Cells a file may hold: mostly plain ones (the C reader takes them: quoted or not, a
# doubled quote, a comma, a backslash, letters past ASCII), and every kind it must leave to
# the rows (spaces to trim, line breaks, apostrophes, yes/no, dates, control characters).
_PLAIN = st.sampled_from(["", "Ann", "O'Neil", "a,b", 'say "hi"', "back\\slash", "Inès", "名前", "\U0001f600",
                          "#", "=1+2", "0042"])  # fmt: skip
_ODD = st.sampled_from([" Ann", "Ann ", "Zoë ", "\u3000Ann", "line\nbreak", "tab\there", "'0042", "\u2028",
                        "\x7f", "yes", "2026-12-31", "12/31/2026", "2026-01-01", "cr\ronly"])  # fmt: skip
_CELL = st.one_of(_PLAIN, _PLAIN, _PLAIN, _ODD)
# Dates: in either order, before, on and after TODAY, one that reads either way, one
# only in the other order, impossible ones, yyyy/m/d, ISO (the validator's note).
_DATES = st.sampled_from(["", "", "", "2026-12-31", "2026-01-01", "12/31/2026", "03/15/2026", "03/16/2026",
                          "15/03/2026", "16/03/2026", "1/2/2030", "02/29/2024", "02/29/2025", "13/01/2026",
                          "2026/12/31", "2026/3/15", "05/06/2027", "0/1/2026", "12/31/0000", "12/31/26"])
_COLUMN = {"on_leave": st.sampled_from(["true", "false", "", "yes"]), "deactivation_date": _DATES}
_LOCALES = st.sampled_from(["en-US", "en-GB"])
_EMAIL = st.sampled_from(["a@x.com", "B@x.com", "c@x.com", "c@x.com", " d@x.com", "é@x.com", "", 'e"@x.com'])


def _record(draw: st.DrawFn) -> list[str]:
    return [draw(_EMAIL), *(draw(_COLUMN.get(name, _CELL)) for name in HEADER[1:-1]), draw(_EMAIL)]


def _pure_text(values: Mapping[str, str]) -> str:
    return json.dumps(new_fields(values))


def _csv(records: list[list[str]], quote_all: bool, header: list[str] = HEADER) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerows([header, *records])
    return out.getvalue().encode("utf-8")


@st.composite
def files(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 6))
    return _csv([_record(draw) for _ in range(n)], draw(st.booleans()))


@settings(max_examples=400, deadline=None)
@given(data=files(), engage=st.booleans(), kept=st.booleans(), locale=_LOCALES)
def test_the_c_record_reader_answers_as_the_rule_does_on_the_validators_row(
    data: bytes, engage: bool, kept: bool, locale: str
) -> None:
    validation = validate(data, Context(profile=Profile.ENGAGE if engage else Profile.CORE, locale=locale))
    rows = validation.applicable()
    assert isinstance(rows, Applicable)
    columns = frozenset(validation.report.columns)
    rule = QuickRule(kept=("first_name", "last_name") if kept else (), engage=engage, today=TODAY, ids=True,
                     columns=columns, text=_pure_text)  # fmt: skip
    spec = record_spec(rule, rows.plain)
    assert spec is not None
    # None: records the scan did not place (a CR alone, say), given one by one.
    for batch in rows.batches(2) or ():
        for k, rec in enumerate(batch.recs):
            if k in batch.made:
                continue  # a value refused: the row is made already, never read in C
            got = quick_record(k, batch.text, batch.starts[k], batch.ends[k], rec, spec)
            if got is NotImplemented:
                continue
            arow = batch.row(rec)
            key = email_key(arow.values["email"])
            assert got == rule.row(k, arow.row, key, arow.values, columns_text(tuple(arow.values)))


def test_the_common_records_of_a_file_are_read_in_c() -> None:
    """Quoted cells, a doubled quote, a backslash, letters past ASCII and an
    empty date: read in C; a date, an edge space, a line break: not."""
    data = _csv([
        ["a@x.com", "Inès", "Lee", "1", 'say "hi"', "true", "", "a,b", "b@x.com"],
        ["B@x.com", "名前", "\U0001f600", "2", "back\\slash", "false", "", "", ""],
        ["c@x.com", "Ann", "Lee", "3", "", "true", "2026-12-31", "", ""],
        ["d@x.com", " Ann", "Lee", "4", "", "true", "", "", ""],
        ["e@x.com", "Ann", "Lee", "5", "line\nbreak", "true", "", "", ""],
    ], quote_all=True)  # fmt: skip
    validation = validate(data, Context())
    rows = validation.applicable()
    assert isinstance(rows, Applicable)
    rule = QuickRule(kept=("first_name", "last_name"), engage=False, today=TODAY, ids=True,
                     columns=frozenset(validation.report.columns), text=_pure_text)  # fmt: skip
    spec = record_spec(rule, rows.plain)
    assert spec is not None
    batches = rows.batches(10)
    assert batches is not None
    (batch,) = list(batches)
    got = [quick_record(k, batch.text, batch.starts[k], batch.ends[k], rec, spec)
           for k, rec in enumerate(batch.recs)]  # fmt: skip
    assert [g is NotImplemented for g in got] == [False, False, True, True, True]
    for k in (0, 1):
        arow = batch.row(batch.recs[k])
        key = email_key(arow.values["email"])
        assert got[k] == rule.row(k, arow.row, key, arow.values, columns_text(tuple(arow.values)))
    assert got[1] is not NotImplemented and got[1] is not None and got[1][2] == "b@x.com"


@pytest.mark.parametrize("locale", ["en-US", "en-GB"])
def test_a_dated_record_is_read_in_c_in_the_tenants_order(locale: str) -> None:
    """A deactivation date in the tenant's order (or yyyy/m/d) is read in C:
    its ISO date last in the fields, its status on today (TODAY: deactivated
    on the day, active after); a date read only in the other order, or ISO,
    is left to the rows. The rule gives those it reads the same answer."""
    gb = locale == "en-GB"
    dates = ["03/04/2030", "2026/3/15", "16/03/2026" if gb else "03/16/2026", "01/01/2020",
             "03/16/2026" if gb else "16/03/2026", "2030-03-04"]  # fmt: skip
    records = [[f"u{i}@x.com", "Ann", "Lee", str(i), "", "true", d, "", ""] for i, d in enumerate(dates)]
    data = _csv(records, quote_all=False)
    validation = validate(data, Context(locale=locale))
    rows = validation.applicable()
    assert isinstance(rows, Applicable)
    columns = frozenset(validation.report.columns)
    rule = QuickRule(kept=(), engage=False, today=TODAY, ids=True, columns=columns, text=_pure_text)
    spec = record_spec(rule, rows.plain)
    batches = rows.batches(10)
    assert spec is not None and batches is not None
    (batch,) = list(batches)
    got = [quick_record(k, batch.text, batch.starts[k], batch.ends[k], rec, spec)
           for k, rec in enumerate(batch.recs)]  # fmt: skip
    assert [g is NotImplemented for g in got] == [False] * 4 + [True] * 2
    read = [(json.loads(g[3])["deactivation_date"], list(json.loads(g[3]))[-1], g[4]) for g in got[:4]]  # type: ignore[index]
    assert read == [("2030-04-03" if gb else "2030-03-04", "deactivation_date", 1),
                    ("2026-03-15", "deactivation_date", 0), ("2026-03-16", "deactivation_date", 1),
                    ("2020-01-01", "deactivation_date", 0)]  # fmt: skip
    for k in range(4):
        arow = batch.row(batch.recs[k])
        assert got[k] == rule.row(k, arow.row, email_key(arow.values["email"]), arow.values,
                                  columns_text(tuple(arow.values)))  # fmt: skip
    # A first load reads them in C too, with the same users as row by row.
    with mock.patch.object(fresh, "created", wraps=fresh.created) as spy:
        by_records = _first_load(data, Profile.CORE, one_by_one=False, locale=locale)
    assert spy.called
    assert [c.active for c in by_records.users] == [True, False, True, False, True, True]
    assert _seen(by_records) == _seen(_first_load(data, Profile.CORE, one_by_one=True, locale=locale))


def test_only_the_deactivation_date_is_read_in_c_as_a_date() -> None:
    """The C module writes the date it reads last in the fields and takes the
    row's status from it: so it reads no other date column (none exists yet:
    a review's guard), nor a custom key named as the date (its text is the
    apply's date), but an empty one."""
    plain = [(0, "email", PLAIN_TEXT, True), (1, "start_date", PLAIN_DATE_MDY, False),
             (2, "deactivation_date", PLAIN_DATE_DMY, False)]  # fmt: skip
    got = record_columns(plain, frozenset(n for _, n, _, _ in plain))
    assert got is not None
    assert [kind for _, kind, _, _ in got[1]] == [PLAIN_TEXT, NEVER, PLAIN_DATE_DMY]
    key = [(0, "email", PLAIN_TEXT, True), (1, "deactivation_date", PLAIN_TEXT, False)]
    got = record_columns(key, frozenset(n for _, n, _, _ in key))
    assert got is not None and got[1][1][1] == NEVER


def _seen(outcome: Outcome) -> tuple[object, ...]:
    return (
        outcome.refused, sorted(outcome.counts.items()),
        [(f.code, f.row, f.column, f.value, f.message) for f in outcome.findings],
        [(c.action, c.uid, c.row, dict(c.fields), c.active, c.before) for c in outcome.users],
        outcome.overwritten, outcome.departments,
    )  # fmt: skip


def _apply(
    stored: bytes, data: bytes, profile: Profile, *, one_by_one: bool, keys: frozenset[str] = frozenset(),
    locale: str = "en-US",
) -> Outcome:
    """`data` applied on the directory `stored` makes, by its records (the C
    reader where it can) or by its rows one by one (`keys`: the tenant's custom keys)."""
    context = Context(profile=profile, custom_keys=keys, locale=locale)
    first = validate(stored, context)
    terms = Policy(profile=profile, today=TODAY, columns=frozenset(first.report.columns))
    seeded = apply_users(State(), first.applicable(), terms)
    validation = validate(data, context)
    policy = Policy(profile=profile, today=TODAY, columns=frozenset(validation.report.columns))
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, seeded.state_after(State()))
        rows = validation.applicable()
        return materialised(run(conn, iter(list(rows)) if one_by_one else rows, policy))


@st.composite
def resent(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A file, and the same file sent again with some cells changed (or not)."""
    n = draw(st.integers(1, 6))
    records = [_record(draw) for _ in range(n)]
    again = [record if draw(st.integers(0, 2)) else _record(draw) for record in records]
    return _csv(records, draw(st.booleans())), _csv(again, draw(st.booleans()))


@settings(max_examples=150, deadline=None)
@given(files=resent(), profile=st.sampled_from(list(Profile)), locale=_LOCALES,
       batch=st.sampled_from([1, 2, workspace.BATCH]))  # fmt: skip
def test_reading_records_in_c_changes_no_outcome(
    files: tuple[bytes, bytes], profile: Profile, locale: str, batch: int
) -> None:
    """Whatever the batches: with more than one, the next is read ahead in
    a thread while this one is compared (`ingest/ahead.py`)."""
    stored, data = files
    with mock.patch.object(workspace, "BATCH", batch):
        by_records = _apply(stored, data, profile, one_by_one=False, locale=locale)
    assert _seen(by_records) == _seen(_apply(stored, data, profile, one_by_one=True, locale=locale))


def _first_load(
    data: bytes, profile: Profile, *, one_by_one: bool, licenses: int | None = None, locale: str = "en-US",
    limit: int | None = None, trace: Callable[[str], object] | None = None,
) -> Outcome:
    """`data` applied to an empty directory, by its records or by its rows one
    by one (`limit`: the values a statement may bind, if not the build's;
    `trace`: told each statement run)."""
    validation = validate(data, Context(profile=profile, custom_keys=frozenset({"x y"}), locale=locale))
    columns = frozenset(validation.report.columns)
    policy = Policy(profile=profile, today=TODAY, columns=columns, licenses=licenses)
    with workspace.private() as conn, workspace.working(conn):
        if limit is not None:
            conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        conn.set_trace_callback(trace)
        rows = validation.applicable()
        return materialised(run(conn, iter(list(rows)) if one_by_one else rows, policy))


@settings(max_examples=300, deadline=None)
@given(data=files(), profile=st.sampled_from(list(Profile)), locale=_LOCALES)
def test_a_first_load_read_in_c_is_the_rows_one_by_one(data: bytes, profile: Profile, locale: str) -> None:
    """The users a first load creates from records read in C (`fresh.py`) are
    those its rows one by one create, under the same uids in file order, the
    rows the C module leaves (an ISO date, a space to trim...) among them."""
    with mock.patch.object(fresh, "created", wraps=fresh.created) as spy:
        by_records = _first_load(data, profile, one_by_one=False, locale=locale)
    rows = validate(data, Context(profile=profile, locale=locale)).applicable()
    placed = isinstance(rows, Applicable) and rows.batches(1) is not None  # not: a CR alone, say
    assert spy.called or not by_records.users or not placed
    assert _seen(by_records) == _seen(_first_load(data, profile, one_by_one=True, locale=locale))


def test_a_first_load_keeps_file_order_in_its_uids() -> None:
    """A record the C module leaves to the rows (an ISO date) between two it
    reads gets the uid between theirs."""
    data = _csv([
        ["a@x.com", "Ann", "Lee", "1", "", "true", "", "", ""],
        ["b@x.com", "Bo", "Lee", "2", "", "true", "2030-01-01", "", ""],
        ["c@x.com", "Cy", "Lee", "3", "", "true", "", "", ""],
    ], quote_all=False)  # fmt: skip
    outcome = _first_load(data, Profile.CORE, one_by_one=False)
    assert [(c.uid, c.fields["email"]) for c in outcome.users] == [
        (1, "a@x.com"), (2, "b@x.com"), (3, "c@x.com")
    ]  # fmt: skip


@pytest.mark.parametrize(("limit", "sizes"), [(None, [200, 200, 200, 50, 10, 10, 10, 10, 1, 1, 1, 1, 1, 1]),
                                             (999, [50] * 13 + [10, 10, 10, 10, 1, 1, 1, 1, 1, 1])])
def test_a_first_loads_rows_go_many_to_a_statement_and_keep_their_order(
    limit: int | None, sizes: list[int]
) -> None:
    """Rows read in C go into `w_pend` many to a statement (`fresh.insert`),
    what is left of a batch in smaller ones, each no larger than the
    connection allows (999 values before SQLite 3.32): here 696 rows, four
    records being left to the rows (an ISO date). The users are those the
    rows one by one create, in file order."""
    records = [[f"u{i}@x.com", "Ann", "Lee", str(i), f"u{i // 8}@x.com" if i else "", "true",
                "2030-01-01" if i % 223 == 5 else "", "", ""] for i in range(700)]  # fmt: skip
    data = _csv(records, quote_all=False)
    run: list[int] = []  # the rows of each statement of a first load's rows read in C

    def trace(sql: str) -> None:
        if sql.startswith("INSERT INTO w_pend") and "nullif(" in sql:  # `fresh.plan`'s statements
            run.append(sql.count(", 'created')"))

    by_records = _first_load(data, Profile.CORE, one_by_one=False, limit=limit, trace=trace)
    assert run == sizes
    assert [c.fields["email"] for c in by_records.users] == [f"u{i}@x.com" for i in range(700)]
    assert _seen(by_records) == _seen(_first_load(data, Profile.CORE, one_by_one=True))


def test_a_file_whose_columns_go_past_what_the_c_module_reads_is_read_row_by_row() -> None:
    """An address past the 256th cell: the C module reads no record of it
    (a review found it refused the file)."""
    header = ",".join([f"u{i}" for i in range(300)] + ["email", "first_name", "last_name"])
    data = f"{header}\r\n{',' * 300}a@x.com,Ann,Lee\r\n".encode()
    for profile in Profile:
        resent = _apply(data, data, profile, one_by_one=False)
        assert resent.counts.get("unchanged") == 1
        assert _seen(resent) == _seen(_apply(data, data, profile, one_by_one=True))
        assert _seen(_first_load(data, profile, one_by_one=False)) == _seen(
            _first_load(data, profile, one_by_one=True)
        )


def test_a_custom_key_named_deactivation_date_is_read_as_a_date() -> None:
    """Engage has no deactivation date of its own: a tenant's custom key of
    that name is text to the validator, and a date to the apply, in C too (a
    review found the C module took it as text)."""
    keys = frozenset({"deactivation_date"})
    stored = b"email,first_name,last_name,deactivation_date\r\na@x.com,Ann,Lee,\r\n"
    dated = b"email,first_name,last_name,deactivation_date\r\na@x.com,Ann,Lee,2020-01-01\r\n"
    outcome = _apply(stored, dated, Profile.ENGAGE, one_by_one=False, keys=keys)
    assert outcome.counts.get("deactivated") == 1
    assert _seen(outcome) == _seen(_apply(stored, dated, Profile.ENGAGE, one_by_one=True, keys=keys))


_POOL = {  # the columns a file may have besides its address, by profile
    Profile.CORE: ["first_name", "last_name", "employee_id", "manager_email", "manager_id", "department_name",
                   "title", "on_leave", "deactivation_date", "x y"],
    Profile.ENGAGE: ["first_name", "last_name", "employee_id", "manager_email", "mobile", "x y"],
}  # fmt: skip
_KEYS = st.sampled_from(["", "Ann", "Sales", "sales", "1", "2", "x1", "X1", "0042", "'0042", " Ann", "Inès",
                         'say "hi"', "2026-12-31", "+123456789"])  # fmt: skip
_ADDRESSES = st.sampled_from(["a@x.com", "B@x.com", "b@X.com", "c@x.com", "É@X.com", "", " d@x.com"])


@st.composite
def any_columns(draw: st.DrawFn) -> tuple[Profile, bytes]:
    """A first load of any columns (the address anywhere among them, ids that
    are identity when manager_id is there too, departments) and values."""
    profile = draw(st.sampled_from(list(Profile)))
    columns = draw(st.lists(st.sampled_from(_POOL[profile]), unique=True, max_size=7))
    columns.insert(draw(st.integers(0, len(columns))), "email")
    records = [[draw(_ADDRESSES) if name.endswith("email") else draw(_KEYS) for name in columns]
               for _ in range(draw(st.integers(1, 7)))]  # fmt: skip
    return profile, _csv(records, draw(st.booleans()), header=columns)


@settings(max_examples=300, deadline=None)
@given(case=any_columns(), licenses=st.sampled_from([None, 0, 1, 3]))
def test_a_first_load_of_any_columns_read_in_c_is_the_rows_one_by_one(
    case: tuple[Profile, bytes], licenses: int | None
) -> None:
    profile, data = case
    assert _seen(_first_load(data, profile, one_by_one=False, licenses=licenses)) == _seen(
        _first_load(data, profile, one_by_one=True, licenses=licenses)
    )


def test_a_first_loads_manager_keys_made_in_c_are_email_keys() -> None:
    """The key of each manager's address a first load reads in C is
    `email_key`'s: letters folded (ASCII in C, the rest by `email_key`)."""
    managers = ["B@X.com", "b@x.com", "É@X.com", "Mgr.Ann+1@Example.COM", "plain@x.com", ""]
    records = [[f"u{i}@x.com", "Ann", "Lee", str(i), "", "true", "", "", m] for i, m in enumerate(managers)]
    data = _csv(records, quote_all=False)
    validation = validate(data, Context(profile=Profile.CORE))
    rows = validation.applicable()
    assert isinstance(rows, Applicable)
    made = fresh.plan(rows.plain, frozenset(validation.report.columns), core=True, today=TODAY, limit=999)
    assert made is not None
    batches = rows.batches(100)
    assert batches is not None
    values = [value for records in batches for value in fresh.created(records, made, 1)[1]]
    got = [values[at : at + fresh.WIDTH] for at in range(0, len(values), fresh.WIDTH)]
    assert [row[5] for row in got] == [email_key(m) for m in managers]
