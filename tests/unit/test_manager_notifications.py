"""docs/production.md §5: when a user is deactivated, "their manager will be notified via an
automated email". The sandbox records it like the Technical Contact's
emails, in the transaction that deactivates the user, whatever deactivated
them (a file, an engage termination, the Admin module, the clock), and
delivers it; file names and cells in emails cannot forge a header or a line."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bwsandbox import store, tenants
from bwsandbox.clock import Clock
from bwsandbox.config import load
from bwsandbox.ingest import admin, directory, notify
from bwsandbox.ingest.process import Processed, process
from bwsandbox.ingest.records import Source
from bwsandbox.spec.fields import Profile

CLOCK = Clock(fixed=dt.datetime(2026, 3, 15, 9, 0, tzinfo=dt.UTC))
SEED = (b"email,first_name,last_name,manager_email\r\n"
        b"ada@x.com,Ada,Lovelace,\r\ngrace@x.com,Grace,Hopper,ada@x.com\r\n"
        b"alan@x.com,Alan,Turing,ada@x.com\r\nkat@x.com,Kat,Johnson,grace@x.com\r\n")


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = store.connect(tmp_path / "sandbox.db")
    yield c
    c.close()


def _tenant(conn: sqlite3.Connection, profile: Profile = Profile.CORE) -> tenants.Tenant:
    with store.transaction(conn):
        return tenants.add(conn, name="acme", username="acme", password="pw", profile=profile,
                           contact="it@x.com", created_at="2026-01-01T00:00:00+00:00")


def _send(conn: sqlite3.Connection, tmp_path: Path, tenant: tenants.Tenant, data: bytes, name: str,
          source: Source = Source.FILE) -> Processed:
    return process(conn, data_dir=tmp_path, tenant=tenant, name=name, data=data, clock=CLOCK,
                   source=source, label=f"file {name}", termination_limit=0.5)


def _notices(conn: sqlite3.Connection) -> list[dict[str, object]]:
    return notify.listing(conn, "acme", bodies=True, kind=notify.MANAGER_NOTIFICATION)


def test_a_file_that_deactivates_a_user_notifies_their_manager(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    tenant = _tenant(conn)
    _send(conn, tmp_path, tenant, SEED, "seed.csv")
    assert _notices(conn) == []
    gone = b"email,deactivation_date\r\ngrace@x.com,03/01/2026\r\n"
    _send(conn, tmp_path, tenant, gone, "users_20260315.csv")
    (notice,) = _notices(conn)
    assert (notice["to"], notice["subject"], notice["state"]) == (
        "ada@x.com", "Betterworks: Grace Hopper has been deactivated", "pending")
    body = str(notice["body"])
    assert body.startswith("Hello Ada Lovelace,")
    assert ("Grace Hopper (grace@x.com), who reports to you, has been deactivated in Betterworks on "
            "2026-03-15") in body
    assert "Source: file users_20260315.csv." in body and "this text is the sandbox's" in body
    # A Technical Contact listing stays what it was: these are another kind.
    assert notify.listing(conn, "acme", kind=notify.TECHNICAL_CONTACT) == []
    assert [e["kind"] for e in notify.listing(conn, "acme")] == [notify.MANAGER_NOTIFICATION]


def test_no_notification_without_an_active_manager(conn: sqlite3.Connection, tmp_path: Path) -> None:
    tenant = _tenant(conn)
    _send(conn, tmp_path, tenant, SEED, "seed.csv")
    # Ada has no manager; Grace's manager Ada is deactivated by the same file.
    both = b"email,deactivation_date\r\nada@x.com,03/01/2026\r\ngrace@x.com,03/01/2026\r\n"
    _send(conn, tmp_path, tenant, both, "users_20260315.csv")
    assert _notices(conn) == []
    # A future date notifies nobody until the clock reaches it.
    later = b"email,deactivation_date\r\nkat@x.com,12/31/2030\r\n"
    _send(conn, tmp_path, tenant, later, "users_20260316.csv")
    assert _notices(conn) == []


def test_an_engage_termination_notifies_the_manager(conn: sqlite3.Connection, tmp_path: Path) -> None:
    tenant = _tenant(conn, Profile.ENGAGE)
    _send(conn, tmp_path, tenant, SEED, "seed.csv", source=Source.ADMIN)
    from bwsandbox.ingest import apply, workspace
    from bwsandbox.ingest.records import Policy
    from bwsandbox.validator.model import ApplicableRow

    kept = ["ada@x.com", "grace@x.com", "kat@x.com"]
    rows = [ApplicableRow(row=i + 2, values={"email": e}) for i, e in enumerate(kept)]
    policy = Policy(profile=Profile.ENGAGE, today="2026-03-15", termination_limit=0.5)
    workspace.prepare(conn)
    workspace.from_store(conn, "acme")
    outcome = apply.run(conn, rows, policy)
    with store.transaction(conn):
        directory.write(conn, "acme", outcome, directory.Provenance(kind=Source.FILE, label="file #2 roster",
                                                                    at="2026-03-15T09:00:00+00:00"))
    workspace.drop(conn)
    (notice,) = _notices(conn)
    assert notice["to"] == "ada@x.com"
    assert "Alan Turing (alan@x.com), who reports to you" in str(notice["body"])
    assert "(left out of the engage roster file)" in str(notice["body"])


def test_the_admin_module_and_the_clock_notify_and_deliver_at_once(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    settings = load({"data_dir": tmp_path}, env={})
    tenant = _tenant(conn)
    _send(conn, tmp_path, tenant, SEED, "seed.csv")
    admin.set_user(conn, settings, tenant.name, "GRACE@x.com", {"status": "deactivated"})
    (notice,) = _notices(conn)
    assert notice["state"] == "outboxed" and notice["to"] == "ada@x.com"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    # A future date, then the clock reaches it: Kat's manager (Grace) is gone, Alan's (Ada) is told.
    later = b"email,deactivation_date\r\nalan@x.com,03/20/2026\r\n"
    _send(conn, tmp_path, tenant, later, "users_20260315.csv")
    with store.transaction(conn):
        assert directory.sweep(conn, "acme", "2026-03-21", "2026-03-21T00:00:00+00:00") == 1
    notices = _notices(conn)
    assert [(n["to"], n["subject"]) for n in notices][1:] == [
        ("ada@x.com", "Betterworks: Alan Turing has been deactivated")]
    assert "Source: clock: deactivation date reached." in str(notices[1]["body"])


def test_the_technical_contact_email_escapes_control_characters(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    tenant = _tenant(conn)
    name = "users\n\x1b[31mX-Forged: yes_20260315.csv"
    data = b"email,first_name,last_name\r\nnot-an-address,\x1b]0;pwn\x07A,B\r\n"
    done = _send(conn, tmp_path, tenant, data, name)
    assert done.has_errors
    with store.transaction(conn):
        msg = notify.build_message(to="it@x.com", tenant="acme", file_name=name, report=done.report,
                                   attachment=done.errors_csv or b"", names=done.names)
        notify.record(conn, tenant="acme", file_id=None, at="2026-03-15T09:00:00+00:00", msg=msg)
    (email,) = notify.listing(conn, "acme", bodies=True, kind=notify.TECHNICAL_CONTACT)
    assert email["subject"] == ("Betterworks user import: 1 error(s) in "
                                "users\\n\\x1b[31mX-Forged: yes_20260315.csv")
    body = str(email["body"])
    assert "\x1b" not in body and "\x07" not in body and "X-Forged" in body
    assert all(not line.startswith("X-Forged") for line in body.splitlines())
    (attachment,) = email["attachment_files"]  # type: ignore[misc]
    assert attachment["content_type"] == "text/csv" and attachment["bytes"] == len(done.errors_csv or b"")
