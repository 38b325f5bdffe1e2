"""Runnable examples for integrators (quoted in the README): each is a real
test of the `bwsandbox` pytest fixture against a running sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from bwsandbox.testing import SandboxHandle

VALID = (
    "email,first_name,last_name,employee_id,manager_email,title\r\n"
    "ada@example.com,Ada,Lovelace,0001,,CEO\r\n"
    "grace@example.com,Grace,Hopper,0002,ada@example.com,CTO\r\n"
)


def test_my_export_job_uploads_a_valid_file(bwsandbox: SandboxHandle, tmp_path: Path) -> None:
    export = tmp_path / "users_20261125.csv"
    export.write_text(VALID, encoding="utf-8")  # stands in for your HRIS job's output

    bwsandbox.upload(export)
    report = bwsandbox.wait_processed("users_20261125.csv")

    assert report["verdict"] == "accepted"
    assert bwsandbox.user("grace@example.com").manager_email == "ada@example.com"
    assert bwsandbox.emails == []  # no error, no email to the Technical Contact


@pytest.mark.bwsandbox(users=[
    {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"},
    {"email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper"},
    {"email": "alan@example.com", "first_name": "Alan", "last_name": "Turing"},
])
def test_a_manager_change_overrides_an_admin_edit(bwsandbox: SandboxHandle) -> None:
    bwsandbox.admin.set_user("grace@example.com", manager_email="alan@example.com")
    assert bwsandbox.user("grace@example.com").manager_email == "alan@example.com"

    bwsandbox.upload(VALID, "users_20261126.csv")
    report = bwsandbox.wait_processed("users_20261126.csv")

    assert bwsandbox.user("grace@example.com").manager_email == "ada@example.com"
    (overwritten,) = report["overwritten_manual_edits"]  # the report names the edit it undid
    assert (overwritten["field"], overwritten["manual_value"]) == ("manager_email", "alan@example.com")


def test_a_semicolon_file_is_rejected_with_the_right_message(bwsandbox: SandboxHandle) -> None:
    bwsandbox.upload(VALID.replace(",", ";"), "users_20261127.csv")
    report = bwsandbox.wait_processed("users_20261127.csv")

    assert report["verdict"] == "rejected"
    (finding,) = report["findings"]
    assert finding["code"] == "DELIMITER_SEMICOLON"
    assert finding["message"].startswith("The file is separated by semicolons (';')")
    assert bwsandbox.directory == []
    (email,) = bwsandbox.emails  # what the Technical Contact receives says the same
    assert email["to"] == "technical-contact@example.com"
    assert finding["message"] in email["body"]


@pytest.mark.bwsandbox(licenses=1)
def test_the_licence_limit_refuses_every_creation(bwsandbox: SandboxHandle) -> None:
    bwsandbox.upload(VALID, "users_20261128.csv")
    report = bwsandbox.wait_processed("users_20261128.csv")

    messages = [f["message"] for f in report["findings"]]
    assert any(m.startswith("You are attempting to create 2 additional users") for m in messages)
    assert bwsandbox.directory == []


@pytest.mark.bwsandbox(profile="engage", users=[
    {"email": f"{name}@example.com"} for name in ("ada", "grace", "alan", "edsger", "barbara")
])
def test_an_engage_roster_is_encrypted_and_terminates_whoever_it_leaves_out(bwsandbox: SandboxHandle) -> None:
    roster = "email,first_name,last_name\r\n" + "".join(
        f"{name}@example.com,{name.title()},X\r\n" for name in ("ada", "grace", "alan", "edsger")
    )
    # Encrypted to the tenant's sandbox key, then the .done marker (docs/production.md §1).
    name = bwsandbox.upload_engage(roster, stamp="202611250900")
    report = bwsandbox.wait_processed(name)

    assert (name, report["verdict"]) == ("employees.202611250900.csv.pgp", "accepted")
    assert bwsandbox.user("barbara@example.com").status == "deactivated"  # the file is the full roster
    assert bwsandbox.user("ada@example.com").status == "active"
