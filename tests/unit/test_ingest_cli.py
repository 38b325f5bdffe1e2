"""The ingest commands' contract: directory, report, emails,
clock, pgp export-key, admin, all with --data-dir."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from bwsandbox import store, tenants
from bwsandbox.cli.main import main
from bwsandbox.clock import Clock
from bwsandbox.config import load
from bwsandbox.ingest import pgp
from bwsandbox.ingest.queue import Inbox
from bwsandbox.ingest.worker import Worker


@pytest.fixture
def data(tmp_path: Path) -> Path:
    settings = load({"data_dir": tmp_path / "data"}, env={})
    conn = store.connect(settings.db_path)
    with store.transaction(conn):
        tenant = tenants.add(conn, name="acme", username="acme", password="pw", contact="it@acme.com",
                             custom_keys=frozenset({"cost_center"}), created_at="2026-01-01T00:00:00+00:00")
    spool = tmp_path / "spool.csv"
    spool.write_text(
        "email,first_name,last_name,employee_id,title,cost_center,deactivation_date\n"
        "ann@acme.com,Ann,Lee,0042,CTO,CC1,\n"
        "bob@acme.com,Bob,Ray,0043,,CC2,12/31/2099\n"
        ",No,Email,0044,,,\n"
    )
    Inbox(conn, settings.data_dir, Clock()).received(tenant, "users-1.csv", spool)
    Worker(settings).process_pending()
    conn.close()
    return settings.data_dir


def run(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str]:
    code = main([*args, "--data-dir", str(data)])
    return code, capsys.readouterr().out


def test_directory_json_has_the_contract_fields(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    code, out = run(capsys, data, "directory", "--tenant", "acme", "--format", "json")
    assert code == 0
    ann, bob = json.loads(out)
    assert list(ann)[:9] == ["email", "first_name", "last_name", "employee_id", "manager_email",
                             "department_name", "title", "status", "deactivation_date"]
    assert (ann["employee_id"], ann["title"], ann["status"]) == ("0042", "CTO", "active")
    assert ann["cost_center"] == "CC1"  # a custom key the tenant defined
    assert (bob["status"], bob["deactivation_date"]) == ("active", "2099-12-31")


def test_directory_csv(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    code, out = run(capsys, data, "directory", "--tenant", "acme", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["email"] for r in rows] == ["ann@acme.com", "bob@acme.com"]


def test_report_json_and_text(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    code, out = run(capsys, data, "report", "--tenant", "acme", "users-1.csv", "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["verdict"] == "partial"  # 1: the file had errors
    assert report["applied"]["created"] == 2 and report["applied"]["skipped"] == 1
    code, out = run(capsys, data, "report", "--tenant", "acme", "users-1.csv")
    assert "PARTIAL" in out and "created 2" in out


def test_report_of_an_unknown_file_is_a_usage_error(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    assert main(["report", "--tenant", "acme", "nope.csv", "--data-dir", str(data)]) == 2


def test_emails_json(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    code, out = run(capsys, data, "emails", "--tenant", "acme", "--format", "json")
    [mail] = json.loads(out)
    assert (mail["to"], mail["attachments"]) == ("it@acme.com", ["users-1.csv.errors.csv"])
    assert mail["subject"] == "Betterworks user import: 1 error(s) in users-1.csv"


def test_clock_advance_makes_future_deactivations_effective(
    capsys: pytest.CaptureFixture[str], data: Path
) -> None:
    code, out = run(capsys, data, "clock", "set", "--today", "2099-12-30")
    assert code == 0 and "today is 2099-12-30" in out
    code, out = run(capsys, data, "clock", "advance", "1")
    assert "1 user(s) reached their deactivation date" in out
    _, out = run(capsys, data, "directory", "--tenant", "acme", "--format", "json")
    assert [u["status"] for u in json.loads(out)] == ["active", "deactivated"]
    _, out = run(capsys, data, "directory", "--tenant", "acme", "--history", "bob@acme.com",
                 "--format", "json")
    history = [(h["action"], h["source_kind"]) for h in json.loads(out)]
    assert history == [("created", "file"), ("deactivated", "clock")]


def test_pgp_export_key_prints_a_stable_public_key(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    code, first = run(capsys, data, "pgp", "export-key", "--tenant", "acme")
    _, second = run(capsys, data, "pgp", "export-key", "--tenant", "acme")
    assert code == 0 and first == second
    assert first.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert "PRIVATE" not in first
    ciphertext = pgp.encrypt_for(b"hello", first)
    settings = load({"data_dir": data}, env={})
    conn = store.connect(settings.db_path)
    tenant = tenants.require(conn, "acme")
    conn.close()
    assert pgp.decrypt(ciphertext, data, tenant, "x.pgp") == b"hello"


def test_admin_set_user_rejects_a_malformed_assignment(data: Path) -> None:
    args = ["admin", "set-user", "--tenant", "acme", "ann@acme.com", "title", "--data-dir", str(data)]
    assert main(args) == 2


def test_admin_set_user_keeps_the_stored_email_case(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    code, _ = run(capsys, data, "admin", "set-user", "--tenant", "acme", "ANN@acme.com", "title=CEO")
    assert code == 0
    _, out = run(capsys, data, "directory", "--tenant", "acme", "--format", "json")
    ann = json.loads(out)[0]
    assert (ann["email"], ann["title"]) == ("ann@acme.com", "CEO")


def test_admin_set_user_on_an_unknown_email_says_so(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    argv = ["admin", "set-user", "--tenant", "acme", "zed@acme.com", "title=CEO", "--data-dir", str(data)]
    code = main(argv)
    assert code == 2
    assert "no user zed@acme.com in tenant acme" in capsys.readouterr().err


def test_admin_set_user_on_an_unknown_field_says_so(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    argv = ["admin", "set-user", "--tenant", "acme", "ann@acme.com", "shoe_size=42", "--data-dir", str(data)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown field(s) shoe_size" in err and "title" in err
    _, out = run(capsys, data, "directory", "--tenant", "acme", "--format", "json")
    assert "shoe_size" not in json.loads(out)[0]


def test_admin_set_user_status_on_an_engage_tenant_says_the_roster_decides(
    capsys: pytest.CaptureFixture[str], data: Path
) -> None:
    code, _ = run(capsys, data, "tenant", "add", "eng", "--username", "eng", "--password", "pw",
                  "--profile", "engage")
    assert code == 0
    conn = store.connect(load({"data_dir": data}, env={}).db_path)
    tenant = tenants.require(conn, "eng")
    spool = data.parent / "eng.csv"
    spool.write_text("email,first_name,last_name\neve@eng.com,Eve,Ng\n")
    Inbox(conn, data, Clock()).received(tenant, "employees.csv", spool)
    Worker(load({"data_dir": data}, env={})).process_pending()
    conn.close()
    argv = ["admin", "set-user", "--tenant", "eng", "eve@eng.com", "status=deactivated",
            "--data-dir", str(data)]
    assert main(argv) == 2
    assert "terminated by leaving them out of the next roster file" in capsys.readouterr().err
    argv[5] = "title=CEO"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown field(s) title" in err and "status" not in err.split("fields are")[1]


def _apply_departments(data: Path, rows: str) -> None:
    """A department file for acme, received and processed."""
    conn = store.connect(load({"data_dir": data}, env={}).db_path)
    spool = data.parent / "departments.csv"
    spool.write_text("name,parent,is_active\n" + rows)
    Inbox(conn, data, Clock()).received(tenants.require(conn, "acme"), "departments.csv", spool)
    Worker(load({"data_dir": data}, env={})).process_pending()
    conn.close()


def test_directory_departments(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    _apply_departments(data, "Company,,true\nSales,Company,true\nOld,Company,false\n")
    code, out = run(capsys, data, "directory", "--tenant", "acme", "--departments", "--format", "json")
    assert code == 0
    assert json.loads(out) == [
        {"name": "Company", "parent": "", "active": True},
        {"name": "Old", "parent": "Company", "active": False},
        {"name": "Sales", "parent": "Company", "active": True},
    ]
    code, out = run(capsys, data, "directory", "--tenant", "acme", "--departments", "--format", "csv")
    assert out.splitlines() == [
        "name,parent,active", "Company,,true", "Old,Company,false", "Sales,Company,true",
    ]
    code, out = run(capsys, data, "directory", "--tenant", "acme", "--departments")
    assert code == 0 and "3 department(s), 2 active" in out


def test_directory_departments_table_keeps_the_parent_column_when_no_department_has_one(
    capsys: pytest.CaptureFixture[str], data: Path
) -> None:
    # A script reading the table finds the same columns, whatever the departments are.
    code, out = run(capsys, data, "directory", "--tenant", "acme", "--departments")
    assert code == 0 and out.splitlines()[0].split() == ["name", "parent", "active"]  # none yet
    _apply_departments(data, "Company,,true\nLab,,false\n")
    code, out = run(capsys, data, "directory", "--tenant", "acme", "--departments")
    assert code == 0
    header, rule, company, lab, summary = out.splitlines()
    assert header.split() == ["name", "parent", "active"]
    assert company.split() == ["Company", "yes"] and lab.split() == ["Lab", "no"]
    assert company.index("yes") == header.index("active")  # the empty parent cell keeps its place


def test_admin_status_deactivated_deactivates_today_without_a_notice(
    capsys: pytest.CaptureFixture[str], data: Path
) -> None:
    argv = ("admin", "set-user", "--tenant", "acme", "ann@acme.com", "status=deactivated")
    code, out = run(capsys, data, *argv)
    assert code == 0 and "DATE_ISO" not in out
    _, out = run(capsys, data, "directory", "--tenant", "acme", "--format", "json")
    ann = next(u for u in json.loads(out) if u["email"] == "ann@acme.com")
    assert ann["status"] == "deactivated"


def test_admin_set_user_refuses_non_utf8_bytes(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    """A non-UTF-8 byte in the command line (Python's surrogateescape) never reaches the store."""
    import os

    title = os.fsdecode(b"title=CE\xff")
    argv = ["admin", "set-user", "--tenant", "acme", "ann@acme.com", title, "--data-dir", str(data)]
    assert main(argv) == 2
    assert "is not valid UTF-8 text" in capsys.readouterr().err
    email = os.fsdecode(b"ann\xff@acme.com")
    assert main(["admin", "set-user", "--tenant", "acme", email, "title=CEO", "--data-dir", str(data)]) == 2
    tenant = os.fsdecode(b"ac\xffme")
    argv = ["admin", "set-user", "--tenant", tenant, "ann@acme.com", "title=CEO", "--data-dir", str(data)]
    assert main(argv) == 2
