"""The simulated vendor app end to end: a real SFTP client uploads, the real
Sandbox picks the file up, the queue worker applies it, and we read the
directory, the report and the email back. Waiting is a bounded
poll of the store (`wait_done`), never a fixed sleep."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import Account, Trust, openssh_put, paramiko_put, require
from conftest import Harness, SandboxFactory, _settings, wait_until
from mailserver import smtp_server

from bwsandbox import store, tenants
from bwsandbox.cli.main import main
from bwsandbox.ingest import directory, pgp
from bwsandbox.spec import messages
from bwsandbox.spec.fields import Profile

PASSWORD = "s3cret-Pass"
CONTACT = "hris-admin@example.com"
HEADER = "email,first_name,last_name,manager_email,department_name,title,deactivation_date\n"


@pytest.fixture(scope="module")
def ingest(tmp_path_factory: pytest.TempPathFactory, hostkey_template: Path) -> Iterator[Harness]:
    """One Sandbox with the queue worker for this module (tests use fresh tenants)."""
    harness = Harness(_settings(tmp_path_factory.mktemp("ingest"), hostkey_template), ingest=True)
    yield harness
    harness.stop()


def new_tenant(
    h: Harness, tmp_path: Path, *, profile: Profile = Profile.CORE, licenses: int = 1000
) -> tuple[Account, str]:
    name = f"ing-{uuid.uuid4().hex[:10]}"
    with store.transaction(h.conn):
        tenants.add(
            h.conn, name=name, username=f"u-{name}", password=PASSWORD, profile=profile,
            licenses=licenses, contact=CONTACT, created_at="2026-01-01T00:00:00+00:00",
        )
    home = tmp_path / name
    home.mkdir(parents=True)
    return h.account(name, home, password=PASSWORD), name


def upload(account: Account, name: str, content: bytes | str, folder: str = "/incoming") -> None:
    local = account.home / f"local-{uuid.uuid4().hex[:6]}"
    local.write_bytes(content.encode() if isinstance(content, str) else content)
    result = paramiko_put(account, local, f"{folder.rstrip('/')}/{name}", Trust.ACCEPT)
    assert result.ok, result.out


def wait_done(h: Harness, tenant: str, name: str, nth: int = 1, timeout: float = 30.0) -> dict[str, Any]:
    """Wait (on the sandbox's file events) until the nth upload called `name`
    is done, then until the worker finished it."""

    def finished() -> dict[str, Any] | None:
        rows = [r for r in h.files(tenant) if r["name"] == name]
        if len(rows) >= nth and rows[nth - 1]["state"] in ("done", "failed"):
            return rows[nth - 1]
        return None

    row: dict[str, Any] = wait_until(finished, timeout, events=h.sandbox.file_events)
    assert h.sandbox.worker is not None
    h.sandbox.worker.between_files()  # its emails are out and its reports published
    assert row["state"] == "done", row["detail"]
    return row


def users(h: Harness, tenant: str) -> dict[str, dict[str, str]]:
    return {u["email"].lower(): u for u in directory.users_listing(h.conn, tenant)}


def emails_of(h: Harness, tenant: str) -> list[dict[str, Any]]:
    return [dict(r) for r in h.conn.execute("SELECT * FROM emails WHERE tenant = ? ORDER BY id", (tenant,))]


def report_of(row: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(row["report_json"])
    return report


def cli(h: Harness, *args: str) -> int:
    return main([*args, "--data-dir", str(h.settings.data_dir)])


def test_upload_is_applied_and_reported(ingest: Harness, tmp_path: Path) -> None:
    account, tenant = new_tenant(ingest, tmp_path)
    upload(account, "users-20260101.csv", HEADER
           + "boss@acme.com,Bo,Ss,,Leadership,CEO,\n"
           + "ann@acme.com,Ann,Lee,boss@acme.com,Sales,Rep,\n")
    row = wait_done(ingest, tenant, "users-20260101.csv")
    assert row["verdict"] == "accepted"
    assert json.loads(row["counts_json"])["created"] == 2
    found = users(ingest, tenant)
    assert found["ann@acme.com"]["manager_email"] == "boss@acme.com"
    assert found["ann@acme.com"]["status"] == "active"
    assert {d["name"] for d in directory.departments_listing(ingest.conn, tenant)} == {"Leadership", "Sales"}
    assert report_of(row)["applied"]["created"] == 2
    # The processed file left /incoming; its report is in /reports; no error, no email.
    root = ingest.sandbox.tenant_root(tenants.require(ingest.conn, tenant))
    assert not list((root / "incoming").iterdir())
    published = json.loads((root / "reports" / "users-20260101.csv.report.json").read_text())
    assert published["file_id"] == row["id"]
    assert not (root / "reports" / "users-20260101.csv.errors.csv").exists()
    assert emails_of(ingest, tenant) == []


def test_openssh_sftp_upload_is_processed(ingest: Harness, tmp_path: Path) -> None:
    require("sshpass")  # a missing client fails, never skips (CI installs them all)
    require("sftp")
    account, tenant = new_tenant(ingest, tmp_path)
    local = tmp_path / "users-20260102.csv"
    local.write_text(HEADER + "zoe@acme.com,Zoe,Ray,,,,\n")
    result = openssh_put(account, local, "/incoming/users-20260102.csv", Trust.ACCEPT)
    assert result.ok, result.out
    wait_done(ingest, tenant, "users-20260102.csv")
    assert users(ingest, tenant)["zoe@acme.com"]["first_name"] == "Zoe"


def test_errors_send_one_email_with_the_error_file_and_publish_it(ingest: Harness, tmp_path: Path) -> None:
    account, tenant = new_tenant(ingest, tmp_path)
    upload(account, "users-20260103.csv", HEADER
           + "ok@acme.com,Ok,Fine,,,,\n"
           + ",No,Email,,,,\n"
           + "bad@acme.com,Bad,Manager,ghost@acme.com,,,\n")
    row = wait_done(ingest, tenant, "users-20260103.csv")
    assert row["verdict"] == "partial"
    found = users(ingest, tenant)
    assert set(found) == {"ok@acme.com", "bad@acme.com"}
    # applied without the bad value (docs/production.md §5)
    assert "manager_email" not in found["bad@acme.com"]
    [mail] = emails_of(ingest, tenant)
    assert mail["to_addr"] == CONTACT and mail["state"] == "outboxed"
    assert json.loads(mail["attachments_json"]) == ["users-20260103.csv.errors.csv"]
    eml = email.message_from_bytes(Path(mail["detail"]).read_bytes(), policy=email.policy.default)
    [attachment] = list(eml.iter_attachments())  # type: ignore[attr-defined]
    errors = attachment.get_payload(decode=True)
    lines = list(csv.reader(io.StringIO(errors.decode())))
    # The same format as `bwsandbox validate --format csv` (one writer for both).
    assert lines[0] == [*HEADER.strip().split(","), "row", "status", "errors"]
    assert [line[-3] for line in lines[1:]] == ["3", "4"]  # original rows + row number
    root = ingest.sandbox.tenant_root(tenants.require(ingest.conn, tenant))
    assert (root / "reports" / "users-20260103.csv.errors.csv").read_bytes() == errors


def test_a_repeated_file_changes_nothing_and_is_reported_as_a_repeat(ingest: Harness, tmp_path: Path) -> None:
    account, tenant = new_tenant(ingest, tmp_path)
    content = HEADER + "rep@acme.com,Rep,Eat,,,,\n"
    upload(account, "users-20260104.csv", content)
    wait_done(ingest, tenant, "users-20260104.csv")
    history_before = list(directory.history(ingest.conn, tenant))
    upload(account, "users-20260104.csv", content)
    row = wait_done(ingest, tenant, "users-20260104.csv", nth=2)
    report = report_of(row)
    assert "same name and content" in report["repeat"]
    assert report["applied"]["unchanged"] == 1 and report["applied"]["created"] == 0
    assert list(directory.history(ingest.conn, tenant)) == history_before
    upload(account, "users-20260105.csv", content)
    assert "same content" in report_of(wait_done(ingest, tenant, "users-20260105.csv"))["repeat"]


def test_licence_limit_refuses_all_creations_while_updates_apply(ingest: Harness, tmp_path: Path) -> None:
    account, tenant = new_tenant(ingest, tmp_path, licenses=2)
    upload(account, "users-1.csv", HEADER + "a@acme.com,A,A,,,Eng,\n")
    wait_done(ingest, tenant, "users-1.csv")
    upload(account, "users-2.csv", HEADER
           + "a@acme.com,A,A,,,CTO,\n" + "b@acme.com,B,B,,,,\n" + "c@acme.com,C,C,,,,\n")
    row = wait_done(ingest, tenant, "users-2.csv")
    assert set(users(ingest, tenant)) == {"a@acme.com"}
    assert users(ingest, tenant)["a@acme.com"]["title"] == "CTO"
    report = report_of(row)
    assert messages.license_limit(2, 1) in [f["message"] for f in report["findings"]]
    assert report["applied"]["updated"] == 1 and report["applied"]["skipped"] == 2
    [mail] = emails_of(ingest, tenant)
    body = email.message_from_bytes(mail["message"], policy=email.policy.default)
    assert messages.license_limit(2, 1) in body.get_body().get_content()  # type: ignore[union-attr]


def test_a_file_overrides_admin_edits_and_its_report_lists_them(ingest: Harness, tmp_path: Path) -> None:
    account, tenant = new_tenant(ingest, tmp_path)
    upload(account, "users-1.csv", HEADER + "ed@acme.com,Ed,It,,,Eng,\n")
    wait_done(ingest, tenant, "users-1.csv")
    edit = ["admin", "set-user", "--tenant", tenant, "ed@acme.com", "title=Chief", "location=Rome"]
    assert cli(ingest, *edit) == 0
    manual = tmp_path / "manual.csv"
    manual.write_text("email,first_name,last_name,department_name\ned@acme.com,Eddie,It,Ops\n")
    assert cli(ingest, "admin", "upload", "--tenant", tenant, str(manual)) == 0
    assert users(ingest, tenant)["ed@acme.com"]["first_name"] == "Eddie"
    upload(account, "users-2.csv", "email,first_name,last_name,title\ned@acme.com,Ed,It,Eng\n")
    report = report_of(wait_done(ingest, tenant, "users-2.csv"))
    overwritten = {
        (o["field"], o["manual_value"], o["file_value"]) for o in report["overwritten_manual_edits"]
    }
    assert overwritten == {("title", "Chief", "Eng"), ("first_name", "Eddie", "Ed")}
    found = users(ingest, tenant)["ed@acme.com"]
    assert (found["title"], found["first_name"], found["location"]) == ("Eng", "Ed", "Rome")
    sources = [h["source_kind"] for h in directory.history(ingest.conn, tenant, "ed@acme.com")]
    assert sources == ["file", "admin", "admin", "file"]


def test_admin_upload_shows_errors_now_and_sends_no_email(
    ingest: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, tenant = new_tenant(ingest, tmp_path)
    manual = tmp_path / "manual.csv"
    manual.write_text("email,first_name,last_name\n,No,Email\nok@acme.com,Ok,Ok\n")
    assert cli(ingest, "admin", "upload", "--tenant", tenant, str(manual), "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "partial" and report["applied"]["created"] == 1
    assert emails_of(ingest, tenant) == []


def test_core_leaves_users_left_out_of_a_file_untouched(ingest: Harness, tmp_path: Path) -> None:
    account, tenant = new_tenant(ingest, tmp_path)
    upload(account, "users-1.csv", HEADER + "".join(f"u{i}@acme.com,U,{i},,,,\n" for i in range(5)))
    wait_done(ingest, tenant, "users-1.csv")
    upload(account, "users-2.csv", HEADER + "u0@acme.com,U,0,,,,\n")
    assert report_of(wait_done(ingest, tenant, "users-2.csv"))["applied"]["terminated"] == 0
    assert all(u["status"] == "active" for u in users(ingest, tenant).values())


def test_future_deactivation_takes_effect_when_the_clock_passes_it(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    h = sandbox_factory(tmp_path / "clock", ingest=True)
    account, tenant = new_tenant(h, tmp_path)
    upload(account, "users-1.csv", HEADER + "leaver@acme.com,Lea,Ver,,,,12/31/2099\nstay@acme.com,S,T,,,,\n")
    wait_done(h, tenant, "users-1.csv")
    assert users(h, tenant)["leaver@acme.com"]["status"] == "active"
    assert users(h, tenant)["leaver@acme.com"]["deactivation_date"] == "2099-12-31"
    assert cli(h, "clock", "set", "--today", "2099-12-30") == 0
    assert users(h, tenant)["leaver@acme.com"]["status"] == "active"
    assert cli(h, "clock", "advance", "1") == 0
    assert users(h, tenant)["leaver@acme.com"]["status"] == "deactivated"
    assert users(h, tenant)["stay@acme.com"]["status"] == "active"
    [last] = list(directory.history(h.conn, tenant, "leaver@acme.com"))[-1:]
    assert (last["action"], last["source_kind"]) == ("deactivated", "clock")
    # A blank date on a deactivated user reactivates them.
    upload(account, "users-2.csv", "email,deactivation_date\nleaver@acme.com,\n")
    assert report_of(wait_done(h, tenant, "users-2.csv"))["applied"]["reactivated"] == 1
    assert users(h, tenant)["leaver@acme.com"]["status"] == "active"


def test_a_deactivation_by_upload_emails_the_manager_and_the_cli_shows_it(
    ingest: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/production.md §5: the manager of a user a file deactivates is notified by email,
    captured (outbox) like the Technical Contact's, and listed by `emails`."""
    account, tenant = new_tenant(ingest, tmp_path)
    team = "boss@acme.com,Bo,Ss,,,,\nann@acme.com,Ann,Lee,boss@acme.com,,,\n"
    upload(account, "users_20260301.csv", HEADER + team)
    wait_done(ingest, tenant, "users_20260301.csv")
    upload(account, "users_20260302.csv", "email,deactivation_date\nann@acme.com,01/01/2026\n")
    assert report_of(wait_done(ingest, tenant, "users_20260302.csv"))["applied"]["deactivated"] == 1
    [mail] = emails_of(ingest, tenant)
    assert (mail["to_addr"], mail["subject"], mail["state"]) == (
        "boss@acme.com", "Betterworks: Ann Lee has been deactivated", "outboxed")
    assert Path(mail["detail"]).exists()
    capsys.readouterr()
    kind = ("--kind", "manager-notification")
    assert cli(ingest, "emails", "--tenant", tenant, *kind, "--format", "json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["kind"] == "manager-notification" and "who reports to you" in listed["body"]


def test_smtp_delivery_to_a_real_smtp_server(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    received: list[bytes] = []
    with smtp_server(received.append) as port:
        h = sandbox_factory(tmp_path / "smtp", ingest=True, smtp=f"127.0.0.1:{port}")
        account, tenant = new_tenant(h, tmp_path)
        upload(account, "users-1.csv", HEADER + ",No,Email,,,,\nok@acme.com,O,K,,,,\n")
        wait_done(h, tenant, "users-1.csv")
        [mail] = emails_of(h, tenant)
        assert mail["state"] == "sent", mail["detail"]
    [raw] = received
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"] == CONTACT
    assert msg["Subject"] == "Betterworks user import: 1 error(s) in users-1.csv"
    assert [p.get_filename() for p in msg.iter_attachments()] == ["users-1.csv.errors.csv"]  # type: ignore[attr-defined]


def test_reports_folder_can_be_switched_off(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    h = sandbox_factory(tmp_path / "noreports", ingest=True, reports_folder=False)
    account, tenant = new_tenant(h, tmp_path)
    upload(account, "users-1.csv", HEADER + "a@acme.com,A,A,,,,\n")
    row = wait_done(h, tenant, "users-1.csv")
    root = h.sandbox.tenant_root(tenants.require(h.conn, tenant))
    assert not (root / "reports").exists() or not list((root / "reports").iterdir())
    assert Path(row["stored_path"] + ".report.json").is_file()  # still kept with the file


# -- engage: PGP, .done markers, omitted users -------------------------------------

ENGAGE_HEADER = "email,first_name,last_name\n"


def encrypted(h: Harness, tenant: str, text: str) -> bytes:
    key = pgp.public_key(h.settings.data_dir, tenants.require(h.conn, tenant))
    return pgp.encrypt_for(text.encode(), key)


def test_engage_file_waits_for_its_done_marker_then_is_decrypted(ingest: Harness, tmp_path: Path) -> None:
    account, tenant = new_tenant(ingest, tmp_path, profile=Profile.ENGAGE)
    data = "employees.202601010900.csv.pgp"
    upload(account, data, encrypted(ingest, tenant, ENGAGE_HEADER + "e1@acme.com,E,One\n"), folder="/")
    wait_until(lambda: [r for r in ingest.files(tenant) if r["name"] == data and r["state"] == "waiting"],
               events=ingest.sandbox.file_events)
    assert users(ingest, tenant) == {}
    upload(account, "employees.202601010900.csv.done.pgp", b"", folder="/")
    assert report_of(wait_done(ingest, tenant, data))["verdict"] == "accepted"
    assert users(ingest, tenant)["e1@acme.com"]["status"] == "active"


def test_engage_marker_first_then_data_is_processed_at_once(ingest: Harness, tmp_path: Path) -> None:
    account, tenant = new_tenant(ingest, tmp_path, profile=Profile.ENGAGE)
    upload(account, "employees.202601011000.csv.done.pgp", b"", folder="/")
    upload(account, "employees.202601011000.csv.pgp",
           encrypted(ingest, tenant, ENGAGE_HEADER + "e2@acme.com,E,Two\n"), folder="/")
    wait_done(ingest, tenant, "employees.202601011000.csv.pgp")
    assert "e2@acme.com" in users(ingest, tenant)


def test_engage_unencrypted_and_wrongly_encrypted_files_are_reported(ingest: Harness, tmp_path: Path) -> None:
    account, tenant = new_tenant(ingest, tmp_path, profile=Profile.ENGAGE)
    plain = ENGAGE_HEADER + "x@acme.com,X,X\n"
    upload(account, "employees.202601011100.csv.pgp", plain, folder="/")
    upload(account, "employees.202601011100.csv.done.pgp", b"", folder="/")
    report = report_of(wait_done(ingest, tenant, "employees.202601011100.csv.pgp"))
    assert report["verdict"] == "rejected"
    assert [f["code"] for f in report["findings"]] == ["PGP_NOT_ENCRYPTED"]
    import pysequoia

    stranger = str(pysequoia.Tsk.generate("someone else").extract_certificate())
    upload(account, "employees.202601011200.csv.pgp", pgp.encrypt_for(plain.encode(), stranger), folder="/")
    upload(account, "employees.202601011200.csv.done.pgp", b"", folder="/")
    report = report_of(wait_done(ingest, tenant, "employees.202601011200.csv.pgp"))
    assert [f["code"] for f in report["findings"]] == ["PGP_WRONG_KEY"]
    upload(account, "employees.202601011300.csv", plain, folder="/")
    upload(account, "employees.202601011300.csv.done", b"", folder="/")
    report = report_of(wait_done(ingest, tenant, "employees.202601011300.csv"))
    assert [f["code"] for f in report["findings"]] == ["PGP_REQUIRED"]
    assert users(ingest, tenant) == {}
    assert len(emails_of(ingest, tenant)) == 3


def test_engage_terminates_omitted_users_and_refuses_past_the_safety_limit(
    ingest: Harness, tmp_path: Path
) -> None:
    account, tenant = new_tenant(ingest, tmp_path, profile=Profile.ENGAGE)

    def send(stamp: str, emails: list[str]) -> dict[str, Any]:
        body = ENGAGE_HEADER + "".join(f"{e},F,L\n" for e in emails)
        upload(account, f"employees.{stamp}.csv.pgp", encrypted(ingest, tenant, body), folder="/")
        upload(account, f"employees.{stamp}.csv.done.pgp", b"", folder="/")
        return report_of(wait_done(ingest, tenant, f"employees.{stamp}.csv.pgp"))

    roster = [f"p{i}@acme.com" for i in range(10)]
    assert send("202602010000", roster)["applied"]["created"] == 10
    refused = send("202602020000", roster[:7])  # 3 of 10 = 30 % > 20 %
    assert refused["verdict"] == "rejected"
    assert [f["code"] for f in refused["findings"]] == ["TERMINATION_LIMIT"]
    assert all(u["status"] == "active" for u in users(ingest, tenant).values())
    applied = send("202602030000", roster[:8])  # 2 of 10 = 20 %: allowed
    assert applied["applied"]["terminated"] == 2
    found = users(ingest, tenant)
    assert [e for e, u in found.items() if u["status"] == "deactivated"] == ["p8@acme.com", "p9@acme.com"]


def test_department_file_and_employee_id_identity(ingest: Harness, tmp_path: Path) -> None:
    account, tenant = new_tenant(ingest, tmp_path)
    upload(account, "departments-1.csv", "name,parent,is_active\nCompany,,true\nSales,Company,true\n")
    row = wait_done(ingest, tenant, "departments-1.csv")
    assert report_of(row)["applied"]["departments_created"] == 2
    departments = {d["name"]: d for d in directory.departments_listing(ingest.conn, tenant)}
    assert departments["Sales"]["parent"] == "Company"
    ids = "email,first_name,last_name,employee_id,manager_id\n"
    upload(account, "users-1.csv", ids + "boss@acme.com,Bo,Ss,001,\nann@acme.com,Ann,Lee,002,001\n")
    wait_done(ingest, tenant, "users-1.csv")
    assert users(ingest, tenant)["ann@acme.com"]["manager_email"] == "boss@acme.com"
    # Both id columns present: the employee id is the identity, so the email can change.
    upload(account, "users-2.csv", ids + "ann.lee@acme.com,Ann,Lee,002,001\n")
    report = report_of(wait_done(ingest, tenant, "users-2.csv"))
    assert report["applied"]["updated"] == 1 and report["applied"]["created"] == 0
    assert set(users(ingest, tenant)) == {"boss@acme.com", "ann.lee@acme.com"}


def test_a_hostile_file_through_sftp_costs_bounded_outputs_and_no_formula(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Hostile and broken input (docs/security.md) end to end, on a sandbox with small
    bounds: 3,000 bad rows whose cells start with `=` reach the tenant as a
    report with 5 findings per code (the rest counted), an error file and
    an attachment cut at their bounds, and no cell Excel would run."""
    h = sandbox_factory(ingest=True, max_findings_per_code=5, max_error_file_bytes=40_000,
                        max_attachment_bytes=20_000)
    account, tenant = new_tenant(h, tmp_path)
    rows = "".join(f'=cmd|{i},"=HYPERLINK(""http://x/{i}"")",Lee,,,@SUM(A{i}),\n' for i in range(3000))
    upload(account, "users-20260110.csv", HEADER + rows)
    row = wait_done(h, tenant, "users-20260110.csv")
    report = report_of(row)
    assert report["rows"]["skipped"] == 3000
    assert report["findings_not_shown"]["EMAIL_INVALID"] == 2995
    assert json.loads(row["counts_json"])["errors"] == 3000
    root = h.sandbox.tenant_root(tenants.require(h.conn, tenant))
    published = (root / "reports" / "users-20260110.csv.errors.csv").read_bytes()
    assert len(published) <= 40_000 and b"not in this file" in published.splitlines()[-1]
    [mail] = emails_of(h, tenant)
    assert mail["subject"] == "Betterworks user import: 3000 error(s) in users-20260110.csv"
    eml = email.message_from_bytes(Path(mail["detail"]).read_bytes(), policy=email.policy.default)
    [attachment] = list(eml.iter_attachments())  # type: ignore[attr-defined]
    attached = attachment.get_payload(decode=True)
    assert len(attached) <= 20_000 and published.startswith(attached.rsplit(b"\r\n", 2)[0])
    cells = [c for r in csv.reader(io.StringIO(published.decode())) for c in r]
    assert "'=cmd|0" in cells and "'@SUM(A0)" in cells
    assert not [c for c in cells if c[:1] in ("=", "@")]
