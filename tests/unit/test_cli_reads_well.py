"""The CLI as a new user meets it (docs/server.md "Reading it anywhere"):
findings and lists read at 80 columns and in a log, `report 2` and no
`--tenant` with one tenant work, `emails` shows what was sent, the history
says `field: old → new`, and whatever a tenant wrote (file names, cells) is
shown with its control characters escaped and its markup as written."""

from __future__ import annotations

import io
import json
import logging
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from bwsandbox import store, tenants
from bwsandbox.cli import layout
from bwsandbox.cli.cmd_serve import _OneLinePerEvent, _SafeFormatter, follow_up
from bwsandbox.cli.main import main
from bwsandbox.clock import Clock
from bwsandbox.config import load
from bwsandbox.ingest.queue import Inbox
from bwsandbox.ingest.worker import Worker

ANSI = re.compile(r"\x1b")
EVIL = "evil\x1b[2J[bold red]x\u202e_20260301.csv"  # a name a job could send (no / and no CR/LF)
ERRORS = ("email,first_name,last_name,employee_id,manager_email,deactivation_date\n"
          "ada@x.com,Ada,Lovelace,00017,,\n"
          "grace@@x.com,Grace,Hopper,00042,ada@x.com,13/13/2020\n"
          "alan@x.com,,Turing,108,nobody@x.com,soon\n"
          "kat@x.com,Kat,Johnson,1.23E+13,kat@x.com,03/04/2027\n"
          "bob@x.com,\x1b]0;pwned\x07Bob,[link=http://x]Ray[/link],00099,ada@x.com,\n")


def _upload(data: Path, tenant: str, name: str, body: str) -> None:
    settings = load({"data_dir": data}, env={})
    conn = store.connect(settings.db_path)
    spool = data.parent / f"spool-{abs(hash(name))}.csv"
    spool.write_text(body)
    Inbox(conn, settings.data_dir, Clock()).received(tenants.require(conn, tenant), name, spool)
    Worker(settings).process_pending()
    conn.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    settings = load({"data_dir": tmp_path / "data"}, env={})
    conn = store.connect(settings.db_path)
    with store.transaction(conn):
        tenants.add(conn, name="acme", username="acme", password="pw", contact="it@acme.com",
                    created_at="2026-01-01T00:00:00+00:00")
    conn.close()
    _upload(settings.data_dir, "acme", "users_20260301.csv", ERRORS)
    _upload(settings.data_dir, "acme", EVIL, "email,first_name,last_name\nzed@x.com,Zed,Z\n")
    _upload(settings.data_dir, "acme", "users_20260302.csv", "email,title\nada@x.com,CEO\n")
    return settings.data_dir


@pytest.fixture
def width(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Commands print on an 80-column terminal (colours on: escapes must be ours only)."""
    screen = io.StringIO()

    def terminal() -> Console:
        return Console(file=screen, width=80, force_terminal=True, color_system="standard", highlight=False)

    monkeypatch.setattr(layout, "stdout", terminal)
    yield screen


def run(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--data-dir", str(data)])
    got = capsys.readouterr()
    return code, got.out, got.err


def _visible(screen: str) -> list[str]:
    """The screen's lines as a person reads them (our colour codes removed)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", screen).splitlines()


# -- findings: one block each, at 80 columns and in a log --------------------------------


def test_findings_read_at_80_columns(
    capsys: pytest.CaptureFixture[str], data: Path, width: io.StringIO
) -> None:
    code, _, _ = run(capsys, data, "report", "users_20260301.csv")
    lines = _visible(width.getvalue())
    assert code == 1
    assert max(len(line) for line in lines) <= 80
    at = lines.index('row 3  error  EMAIL_INVALID  email "grace@@x.com"')
    assert lines[at + 1] == "    Invalid email address: it has more than one @."
    assert lines[at + 2].startswith("    fix: ")
    assert len(lines) < 80  # 11 findings: never 160 lines of slivers


def test_findings_in_a_log_are_one_line_each_without_colours(
    capsys: pytest.CaptureFixture[str], data: Path
) -> None:
    code, out, _ = run(capsys, data, "report", "users_20260301.csv")
    assert not ANSI.search(out)
    lines = out.splitlines()
    assert "row 3  error  EMAIL_INVALID  email \"grace@@x.com\"" in lines
    assert "    Invalid email address: it has more than one @." in lines
    longest = max(lines, key=len)
    assert len(longest) < 200 and "│" not in out  # no table rows 230 characters wide


def test_validate_uses_the_same_blocks(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    feed = tmp_path / "users_20260301.csv"
    feed.write_text(ERRORS)
    assert main(["validate", str(feed)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert 'row 5  warning  EXCEL_SCIENTIFIC  employee_id "1.23E+13"' in lines
    assert "5 errors, 2 warnings, 1 notice" in lines
    assert lines[lines.index("5 errors, 2 warnings, 1 notice") + 1].startswith("Plan: ")


# -- report: an id, no --tenant, a hint ---------------------------------------------------


def test_report_takes_an_id_with_or_without_hash_and_needs_no_tenant_when_there_is_one(
    capsys: pytest.CaptureFixture[str], data: Path
) -> None:
    outs = [run(capsys, data, "report", which, "--format", "json")[1] for which in ("1", "#1")]
    assert json.loads(outs[0])["file"] == json.loads(outs[1])["file"] == "users_20260301.csv"
    code, out, _ = run(capsys, data, "report", "--tenant", "acme", "users_20260302.csv")
    assert code == 0 and "users_20260302.csv  ACCEPTED  file #3 · tenant acme" in out


def test_a_missing_report_says_what_is_close(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    code, _, err = run(capsys, data, "report", "users_2026031.csv")
    assert code == 2 and "did you mean 'users_20260301.csv'?" in err and "bwsandbox files" in err
    code, _, err = run(capsys, data, "report", "99")
    assert code == 2 and "no file named '99' and none with that id" in err
    for beyond in ("99999999999999999999999", "#99999999999999999999999", "²"):  # past SQLite's INTEGER
        code, _, err = run(capsys, data, "report", beyond)
        assert code == 2 and f"no file named {beyond!r} and none with that id" in err, err


def test_several_tenants_ask_which(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    conn = store.connect(data / "sandbox.db")
    with store.transaction(conn):
        tenants.add(conn, name="beta", username="beta", password="pw", created_at="2026-01-01T00:00:00+00:00")
    conn.close()
    _upload(data, "beta", "users_20260301.csv", "email,first_name,last_name\nq@x.com,Q,R\n")
    code, _, err = run(capsys, data, "report", "users_20260301.csv")
    assert code == 2 and "uploaded by several tenants (acme, beta)" in err
    assert run(capsys, data, "report", "users_20260302.csv", "--format", "json")[0] == 0  # only acme's
    code, _, err = run(capsys, data, "directory")
    assert code == 2 and "say which with --tenant NAME" in err
    assert run(capsys, data, "directory", "--tenant", "beta")[0] == 0


def test_report_shows_the_changes_a_file_made(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    _, out, _ = run(capsys, data, "report", "3")
    assert "changes (1)" in out
    assert 'title: (empty) → "CEO"' in out


# -- emails -----------------------------------------------------------------------------------


def test_emails_json_has_the_body_and_the_attachments_sizes(
    capsys: pytest.CaptureFixture[str], data: Path
) -> None:
    code, out, _ = run(capsys, data, "emails", "--format", "json")
    (mail,) = json.loads(out)
    assert code == 0 and mail["kind"] == "technical-contact"
    assert mail["body"].startswith("Your file users_20260301.csv was processed with errors.")
    (attachment,) = mail["attachment_files"]
    assert attachment["name"] == "users_20260301.csv.errors.csv" and attachment["bytes"] > 100
    code, out, _ = run(capsys, data, "emails", "1")
    assert code == 0 and "Attachment: users_20260301.csv.errors.csv" in out and "Entry #3" in out
    assert run(capsys, data, "emails", "7")[0] == 2


# -- the history ------------------------------------------------------------------------------


def test_history_says_field_old_new_not_a_raw_dict(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    code, out, _ = run(capsys, data, "directory", "--history", "ada@x.com")
    assert code == 0 and "{" not in out
    assert 'title: (empty) → "CEO"' in out and 'first_name: "Ada"' in out
    code, out, _ = run(capsys, data, "directory", "--history", "ada@x.com", "--format", "csv")
    assert "at,subject,action,field,old,new,source,row" in out and ",title,,CEO," in out


# -- hostile names and values -----------------------------------------------------------------


@pytest.mark.parametrize("argv", [("files",), ("directory",), ("report", "2"), ("report", "1"),
                                  ("emails", "1"), ("directory", "--history")])
def test_a_tenants_text_never_drives_the_terminal(
    capsys: pytest.CaptureFixture[str], data: Path, width: io.StringIO, argv: tuple[str, ...]
) -> None:
    run(capsys, data, *argv)
    screen = width.getvalue()
    ours = re.sub(r"\x1b\[[0-9;]*m", "", screen)  # our own colours, SGR only
    assert "\x1b" not in ours and "\x07" not in ours and "\u202e" not in ours
    if argv[0] in ("files", "report") and argv[-1] == "2":
        assert "evil\\x1b[2J[bold red]x\\u202e_20260301.csv" in ours  # escaped, markup as written
    if argv == ("directory",):
        assert "\\x1b]0;pwned\\x07Bob [link=http://x]Ray[/link]" in ours


def test_serve_logs_one_line_per_record_and_no_duplicate_events() -> None:
    formatter = _SafeFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("bwsandbox.server", logging.WARNING, __file__, 1,
                               "incomplete upload %s/%s", ("acme", "a\nfile #9 state=done"), None)
    assert formatter.format(record) == "WARNING incomplete upload acme/a\\nfile #9 state=done"
    events = _OneLinePerEvent()

    def kept(name: str, msg: str, level: int = logging.INFO) -> bool:
        return events.filter(logging.LogRecord(name, level, __file__, 1, msg, (), None))

    assert not kept("bwsandbox.server", "picked up %s/%s (%d bytes) as file #%d")
    assert not kept("bwsandbox.ingest", "file #%d %s/%s: %s (%s)")
    assert not kept("bwsandbox", "listening for %s on %s:%d")
    assert not kept("bwsandbox.server", "incomplete upload %s/%s (%d bytes): %s", logging.WARNING)
    assert kept("bwsandbox.server", "closing idle session %d from %s")
    assert kept("bwsandbox.ingest", "file #%d failed", logging.ERROR)


def test_serve_names_a_non_default_data_dir_in_its_follow_up_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["bwsandbox"])  # on PATH or not, the name ends the same
    plain = follow_up(Path(".bwsandbox")).split(" ", 1)[1]
    assert plain == "files | report NAME | emails"
    assert follow_up(tmp_path / ".bwsandbox").endswith(" files | report NAME | emails")  # the same folder

    # Another folder (from --data-dir or $BWSANDBOX_HOME) is named on each command, quoted for a
    # shell; and each command, as a shell splits it, reads that sandbox.
    odd = tmp_path / "it's my data"
    conn = store.connect(load({"data_dir": odd}, env={}).db_path)
    with store.transaction(conn):
        tenants.add(conn, name="acme", username="acme", password="pw", contact="it@acme.com",
                    created_at="2026-01-01T00:00:00+00:00")
    conn.close()
    quoted = shlex.quote(str(odd))
    shown = follow_up(odd)
    assert shown.split(" ", 1)[1] == (
        f"files --data-dir {quoted} | report NAME --data-dir {quoted} | emails --data-dir {quoted}"
    )
    commands = shown.split(" | ")
    assert main(shlex.split(commands[0])[1:]) == 0
    assert main(shlex.split(commands[2])) == 0
    assert "no sandbox" not in capsys.readouterr().err
