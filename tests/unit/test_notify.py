"""Technical Contact email delivery never leaves an email `pending` forever
nor raises into the queue worker loop (docs/production.md §5)."""

from __future__ import annotations

import logging
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import pytest

from bwsandbox import store
from bwsandbox.ingest import notify
from bwsandbox.ingest.process import Processed


def _pending(tmp_path: Path) -> sqlite3.Connection:
    conn = store.connect(tmp_path / "sandbox.db")
    msg = EmailMessage()
    msg["To"], msg["Subject"] = "it@acme.com", "errors"
    msg.set_content("body")
    with store.transaction(conn):
        notify.record(conn, tenant="acme", file_id=None, at="2026-01-01T00:00:00+00:00", msg=msg)
    return conn


@pytest.mark.parametrize("smtp", ["nonsense", "host:99999999999999999999"])
def test_a_bad_smtp_setting_marks_the_email_error_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, smtp: str
) -> None:
    conn = _pending(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bwsandbox.ingest.notify"):
        assert notify.deliver_pending(conn, smtp=smtp, outbox=tmp_path / "outbox") == 1
    row = conn.execute("SELECT state, detail FROM emails").fetchone()
    assert row["state"] == "error"
    assert "smtp" in row["detail"]
    assert [r.exc_info for r in caplog.records] == [None]  # one line, no traceback
    assert "not delivered" in caplog.records[0].getMessage()


def _process(tmp_path: Path, name: str, data: bytes, **tenant: object) -> Processed:
    """One upload through the vendor app (validator, apply, report) in a real store."""
    import datetime as dt

    from bwsandbox import tenants
    from bwsandbox.clock import Clock
    from bwsandbox.ingest.process import process
    from bwsandbox.ingest.records import Source

    conn = store.connect(tmp_path / "s.db")
    with store.transaction(conn):
        added = tenants.add(conn, name="acme", username="a", password="p",
                            created_at="2026-01-01T00:00:00+00:00", **tenant)
    try:
        return process(
            conn, data_dir=tmp_path, tenant=added, name=name, data=data,
            clock=Clock(fixed=dt.datetime(2026, 3, 15, tzinfo=dt.UTC)), source=Source.FILE, label=name,
            termination_limit=1.0,
        )
    finally:
        conn.close()


def test_rows_the_directory_refused_keep_their_original_cells_in_the_error_file(tmp_path: Path) -> None:
    data = b"email,first_name,last_name,title\r\nbob@x.com,Bob,Baker,Eng\r\ncat@x.com,Cat,Cole,\r\n"
    done = _process(tmp_path, "u_20260301.csv", data, licenses=1)
    assert done.errors_csv is not None
    lines = done.errors_csv.decode().splitlines()
    assert len(lines) == 3
    refused = ',skipped,"LICENSE_LIMIT: You are attempting to create 2 additional users.'
    assert lines[1].startswith("bob@x.com,Bob,Baker,Eng,2" + refused)
    assert lines[2].startswith("cat@x.com,Cat,Cole,,3" + refused)
    assert done.report["rows"] == {"total": 2, "valid": 0, "skipped": 2}  # as validate --context counts
    assert done.names == {2: "Bob Baker", 3: "Cat Cole"}  # "Entry #2 - Bob Baker did not process..."


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("users_20260301.csv", set()),
        ("users-2026-03-01.json", set()),
        ("users_01.03.2026.csv.pgp", {"PGP_NO_KEY"}),  # dated, .csv under .pgp: no name notice
        ("users.csv", {"FILE_NAME_UNDATED"}),
        ("users_20260301.txt", {"FILE_NAME_EXTENSION"}),
        ("users", {"FILE_NAME_UNDATED", "FILE_NAME_EXTENSION"}),
    ],
)
def test_core_upload_names_without_a_date_or_a_feed_extension_get_a_notice(
    tmp_path: Path, name: str, codes: set[str]
) -> None:
    done = _process(tmp_path, name, b"email,first_name,last_name\r\na@x.com,A,B\r\n")
    findings = done.report["findings"]
    assert isinstance(findings, list)
    assert {f["code"] for f in findings} == codes
    assert all(f["severity"] == "notice" for f in findings if f["code"].startswith("FILE_NAME"))
