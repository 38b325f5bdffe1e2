"""`bwsandbox validate --tenant` predicts exactly what an upload of the same
file to that tenant then does: its findings, rows, verdict, and the `plan`
(`applied`, `changes`) equal to the processed report's keys of the same
names, over random directories and files (licences freed in the same file,
manager loops through users the file leaves alone, addresses and ids other
users hold, names a new user needs, engage terminations)."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import pysequoia
import pytest
from apply_helpers import rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ingest_apply import _csv, _mmddyyyy, files, id_files

from bwsandbox import store, tenants
from bwsandbox.cli.main import main
from bwsandbox.clock import Clock
from bwsandbox.ingest import pgp
from bwsandbox.ingest.process import judge_upload, process
from bwsandbox.ingest.records import Source
from bwsandbox.spec.fields import Profile
from bwsandbox.validator.model import ApplicableRow

CLOCK = Clock(fixed=dt.datetime(2026, 3, 15, 9, 0, tzinfo=dt.UTC))
COMPARED = ("findings", "rows", "verdict")


def _some_without_names(records: list[ApplicableRow], blanks: list[bool]) -> list[ApplicableRow]:
    """Some rows leave first_name empty: a new user needs it, an update keeps the stored one."""
    out = []
    for r, blank in zip(records, blanks + [False] * len(records), strict=False):
        values = dict(r.values)
        if blank:
            values["first_name"] = ""
        out.append(ApplicableRow(row=r.row, values=values))
    return out


def _tenant(data_dir: Path, profile: Profile, licenses: int) -> tenants.Tenant:
    conn = store.connect(data_dir / "sandbox.db")
    with store.transaction(conn):
        tenant = tenants.add(conn, name="acme", username="acme", password="pw", profile=profile,
                             licenses=licenses, created_at="2026-01-01T00:00:00+00:00")
    conn.close()
    return tenant


def _predict_then_upload(data_dir: Path, tenant: tenants.Tenant, seed: bytes, body: bytes) -> None:
    conn = store.connect(data_dir / "sandbox.db")
    try:
        process(conn, data_dir=data_dir, tenant=tenant, name="seed_20260314.csv", data=seed, clock=CLOCK,
                source=Source.FILE, label="seed", termination_limit=0.5)
        name = "users_20260315.csv"
        judged = judge_upload(conn, data_dir=data_dir, tenant=tenant, name=name, data=body, clock=CLOCK,
                              termination_limit=0.5)
        predicted = {**judged.report.to_dict(), **judged.plan}
        report = process(conn, data_dir=data_dir, tenant=tenant, name=name, data=body, clock=CLOCK,
                         source=Source.FILE, label="f", termination_limit=0.5).report
    finally:
        conn.close()
    for key in (*COMPARED, "applied", "changes"):
        assert predicted[key] == report[key], key


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    by=st.sampled_from(["email", "employee_id"]), data=st.data(), profile=st.sampled_from(list(Profile)),
    licenses=st.sampled_from([1000, 4, 2]),
)
def test_property_validate_against_a_tenant_predicts_its_upload_exactly(
    by: str, data: st.DataObject, profile: Profile, licenses: int
) -> None:
    strategy = files() if by == "email" or profile is Profile.ENGAGE else id_files()
    seed, f = data.draw(strategy), data.draw(strategy)
    blanks = data.draw(st.lists(st.booleans(), max_size=6))
    with tempfile.TemporaryDirectory() as tmp:
        tenant = _tenant(Path(tmp), profile, licenses)
        body = _csv(_some_without_names(_mmddyyyy(f), blanks), False)
        _predict_then_upload(Path(tmp), tenant, _csv(_mmddyyyy(seed), False), body)


def test_the_cases_the_validator_alone_used_to_miss_are_predicted(tmp_path: Path) -> None:
    """A licence freed by a deactivation in the same file, a manager loop
    closing through a user the file leaves alone, a taken address."""
    tenant = _tenant(tmp_path, Profile.CORE, 3)
    seed = _csv(rows(
        {"email": "a@x.com", "first_name": "A", "last_name": "L", "manager_email": "b@x.com"},
        {"email": "b@x.com", "first_name": "B", "last_name": "L"},
        {"email": "c@x.com", "first_name": "C", "last_name": "L"},
    ), False)
    body = _csv(_mmddyyyy(rows(
        {"email": "c@x.com", "first_name": "C", "last_name": "L", "manager_email": "",
         "deactivation_date": "2026-03-01"},  # frees a licence
        {"email": "d@x.com", "first_name": "D", "last_name": "L", "manager_email": "",
         "deactivation_date": ""},
        {"email": "b@x.com", "first_name": "B", "last_name": "L", "manager_email": "a@x.com",
         "deactivation_date": ""},  # a -> b is in the directory: a loop
    )), False)
    _predict_then_upload(tmp_path, tenant, seed, body)


def test_the_cli_prints_the_plan_of_a_tenant_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = _tenant(tmp_path, Profile.CORE, 1000)
    conn = store.connect(tmp_path / "sandbox.db")
    seed = b"email,first_name,last_name\r\nada@x.com,Ada,L\r\n"
    process(conn, data_dir=tmp_path, tenant=tenant, name="seed.csv", data=seed, clock=CLOCK,
            source=Source.FILE, label="seed", termination_limit=0.2)
    conn.close()
    feed = tmp_path / "users_20260315.csv"
    feed.write_bytes(b"email,first_name,last_name,manager_email\r\nada@x.com,Ada,Byron,\r\n"
                     b"bo@x.com,Bo,L,nobody@x.com\r\n")
    before = (tmp_path / "sandbox.db").read_bytes()
    assert main(["validate", "--tenant", "acme", "--data-dir", str(tmp_path), "--format", "json",
                 str(feed)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["plan"]["applied"]["created"] == 1 and doc["plan"]["applied"]["updated"] == 1
    assert [c["email"] for c in doc["plan"]["changes"]] == ["ada@x.com", "bo@x.com"]
    assert [f["code"] for f in doc["findings"]] == ["MANAGER_NOT_FOUND"]
    assert (tmp_path / "sandbox.db").read_bytes() == before  # nothing written
    assert main(["validate", "--tenant", "nope", "--data-dir", str(tmp_path), str(feed)]) == 2


def test_a_plan_writes_no_pgp_key_and_stdin_needs_a_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _tenant(tmp_path, Profile.ENGAGE, 1000)
    feed = tmp_path / "employees.202612060900.csv.pgp"
    other = pysequoia.Tsk.generate("other <other@example.com>").extract_certificate()
    feed.write_bytes(pgp.encrypt_for(b"email\n", str(other)))  # the tenant has no key yet
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "sandbox.db" not in p.name)
    assert main(["validate", "--tenant", "acme", "--data-dir", str(tmp_path), "--format", "json",
                 str(feed)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in doc["findings"]] == ["PGP_WRONG_KEY"]
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "sandbox.db" not in p.name)
    assert after == before  # no key made, no folder
    assert main(["validate", "--tenant", "acme", "--data-dir", str(tmp_path), "-"]) == 2
    assert "--as NAME" in capsys.readouterr().err
