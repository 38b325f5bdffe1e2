"""Control characters in tenant names: the one name rule (tenants.name_problem,
which `tenant add` and the API share) refuses them; a name stored before it
did still gets its file processed and its email delivered, and never reaches
the terminal or an outbox file name raw."""

from __future__ import annotations

import email
import email.policy
import sqlite3
from pathlib import Path

import pytest
from ingest_env import T0, Env

from bwsandbox import store, tenants
from bwsandbox.cli.main import main

REFUSED = [("\r\n", "U+000D"), ("\x1b", "U+001B"), ("\u2028", "U+2028"), ("\u202e", "U+202E")]


def _stored_before_the_rule(conn: sqlite3.Connection, name: str, username: str) -> tenants.Tenant:
    """A tenant row as an older sandbox could store it, past today's name rule."""
    with store.transaction(conn):
        conn.execute(
            "INSERT INTO tenants (name, region, profile, username, password_hash, authorized_keys,"
            " contact, licenses, locale, custom_keys, created_at)"
            " VALUES (?, 'us', 'core', ?, ?, '', ?, 1000, 'en-US', '[]', ?)",
            (name, username, tenants.hash_password("pw"), f"it@{username}.com", T0.isoformat()),
        )
    tenant = tenants.get(conn, name)
    assert tenant is not None
    return tenant


@pytest.mark.parametrize(("char", "code"), REFUSED)
def test_the_name_rule_refuses_control_format_and_separator_characters(char: str, code: str) -> None:
    problem = tenants.name_problem(f"evil{char}Bcc: x@evil.com")
    assert problem is not None
    assert f"character 5 is {code}" in problem
    assert char not in problem  # the message shows it escaped


@pytest.mark.parametrize("name", ["Acme GmbH", "Ünïcode Co", "東京", "😀 team"])
def test_the_name_rule_keeps_printable_names(name: str) -> None:
    assert tenants.name_problem(name) is None


@pytest.mark.parametrize(("char", "code"), REFUSED[:3])
def test_tenant_add_refuses_them_as_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], char: str, code: str
) -> None:
    argv = ["tenant", "add", f"evil{char}x", "--username", "evil", "--password", "pw",
            "--data-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"is {code}" in err and char not in err
    conn = store.connect(tmp_path / "sandbox.db")
    try:
        assert tenants.all_tenants(conn) == []
    finally:
        conn.close()


def test_a_name_stored_before_the_rule_still_gets_its_report_and_email(tmp_path: Path) -> None:
    env = Env(tmp_path)
    tenant = _stored_before_the_rule(env.conn, "evil2\r\nBcc: x@evil.com", "evil2")
    file_id = env.put(tenant, "users_20260301.csv", "email,first_name,last_name\nnot-an-email,A,B\n")
    assert env.worker.process_pending() == [file_id]
    assert env.row(file_id)["state"] == "done"  # not `failed` on a header that cannot hold a newline
    assert env.report(file_id)["verdict"] != "failed"
    row = env.conn.execute("SELECT state, detail FROM emails").fetchone()
    assert row["state"] == "outboxed"
    outboxed = Path(row["detail"])
    assert outboxed.name == "000001-evil2__Bcc__x_evil.com.eml"
    msg = email.message_from_bytes(outboxed.read_bytes(), policy=email.policy.default)
    assert msg["X-Bwsandbox-Tenant"] == "evil2\\r\\nBcc: x@evil.com"
    assert msg["Bcc"] is None  # the name forged no header


def test_a_stored_name_with_esc_never_reaches_the_terminal_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = Env(tmp_path)
    evil = "ev\x1b]0;owned\x07il\r"
    tenant = _stored_before_the_rule(env.conn, evil, "evil")
    data = ["--data-dir", str(env.settings.data_dir)]
    assert main(["files", "--tenant", evil, *data]) == 0  # "no uploads yet for tenant ..."
    file_id = env.put(tenant, "users_20260301.csv", "email,first_name,last_name\nnot-an-email,A,B\n")
    assert env.worker.process_pending() == [file_id]
    assert main(["files", *data]) == 0  # the footer "tenant ...: 1 upload(s)"
    assert main(["emails", "--tenant", evil, *data]) == 0
    _stored_before_the_rule(env.conn, "plain", "plain")
    assert main(["files", "--tenant", "nobody", *data]) == 2  # "no tenant named ... (tenants: ...)"
    assert main(["report", "users_20260301.csv", "--tenant", "nobody", *data]) == 2
    out, err = capsys.readouterr()
    shown = out + err
    # Two tenants now: each command that must be told which lists them.
    assert main(["emails", *data]) == 2  # "this sandbox has 2 tenants (...)"
    assert main(["fault", "add", "disconnect", *data]) == 2  # "which tenant? ... (tenants: ...)"
    err = capsys.readouterr().err
    assert err.count("\\x1b]0;owned") == 2
    out, err = shown, err
    assert "\\x1b]0;owned\\x07il\\r" in out + err  # shown, escaped
    assert "\x1b" not in out + err and "\x07" not in out + err and "\r" not in out + err
    assert [p.name for p in (env.settings.data_dir / "outbox").iterdir()] == ["000001-ev__0_owned_il_.eml"]
