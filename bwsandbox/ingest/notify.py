"""Technical Contact emails (SPEC §1, §5): one per file with any error.

Production emails the tenant's one Technical Contact address with an error
file to download [doc]. The sandbox builds the same: a summary in the body
(older production emails prefix each entry with SPEC §4's "Entry #n - name did
not process, due to the following errors: ") and the error file attached:
the original rows plus their row number and errors [decided].

Delivery: SMTP when `--smtp host:port` is configured, otherwise an `.eml`
file in DATA/outbox. The message is recorded (state `pending`) in the same
transaction that applies the file; `deliver_pending()` sends it afterwards,
so a crash can at worst send an email twice, never lose one.
"""

from __future__ import annotations

import json
import logging
import smtplib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from bwsandbox.config import parse_smtp
from bwsandbox.errors import ConfigError, IngestError
from bwsandbox.fsutil import atomic_write
from bwsandbox.ingest import reports
from bwsandbox.spec import messages
from bwsandbox.spec.codes import Scope, scope_of
from bwsandbox.validator.errorfile import error_file

log = logging.getLogger(__name__)

SENDER = "Betterworks Sandbox <no-reply@bwsandbox.invalid>"


def error_csv(
    header: Sequence[str],
    originals: Mapping[int, Sequence[str]],
    findings: Iterable[Mapping[str, object]],
) -> bytes:
    """The error file: the validator's format (`validate --format csv`), with
    the directory's findings too. A row the directory refused (licences, a
    taken address) comes with its original cells; where they are not at hand,
    its email is filled in from the finding."""
    findings = list(findings)
    rows = dict(originals)
    columns = list(header)
    for f in findings:
        row, value = f.get("row"), f.get("value")
        if isinstance(row, int) and row not in rows and f.get("column") == "email" and value \
                and "email" in columns:
            cells = [""] * len(columns)
            cells[columns.index("email")] = str(value)
            rows[row] = cells
    rejected = any(f.get("severity") == "error" and f.get("row") is None for f in findings)
    return error_file(header, rows, findings, rejected=rejected)


def build_message(
    *,
    to: str,
    tenant: str,
    file_name: str,
    report: Mapping[str, object],
    attachment: bytes,
    names: Mapping[int, str] | None = None,
) -> EmailMessage:
    """The Technical Contact email. `names` gives each row's display name for
    SPEC §4's "Entry #<n> - <name> did not process..." lines; n is the row
    number of the attached error file (header = row 1) [decided]."""
    names = names or {}
    findings = reports.errors(report)
    applied = report.get("applied") if isinstance(report.get("applied"), dict) else {}
    assert isinstance(applied, dict)
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = f"Betterworks user import: {len(findings)} error(s) in {file_name}"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="bwsandbox.invalid")
    msg["X-Bwsandbox-Tenant"] = tenant
    summary = ", ".join(f"{k} {v}" for k, v in applied.items() if v) or "nothing"
    lines = [
        f"Your file {file_name} was processed with errors.",
        "",
        f"Result: {report.get('verdict')}",
        f"Applied: {summary}",
        "",
    ]
    by_row: dict[int, list[Mapping[str, object]]] = {}
    for f in findings:
        row = f.get("row")
        if isinstance(row, int):
            by_row.setdefault(row, []).append(f)
        else:
            lines.append(str(f.get("message")))
    for row in sorted(by_row):
        texts = " ".join(_sentence(f.get("message")) for f in by_row[row])
        name = names.get(row, "")
        if any(_skips_row(f) for f in by_row[row]):
            lines.append(messages.entry_prefix(row, name) + texts)
        else:
            lines.append(f"Entry #{row} - {name} was processed without the values in error: {texts}")
    lines += ["", "The attached error file lists each row with its errors."]
    msg.set_content("\n".join(lines) + "\n")
    msg.add_attachment(
        attachment, maintype="text", subtype="csv", filename=errors_name(file_name)
    )
    return msg


def _skips_row(finding: Mapping[str, object]) -> bool:
    return scope_of(finding.get("code"), finding.get("row")) is not Scope.VALUE


def _sentence(text: object) -> str:
    text = str(text).strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def errors_name(file_name: str) -> str:
    return f"{file_name}.errors.csv"


def record(
    conn: sqlite3.Connection, *, tenant: str, file_id: int | None, at: str, msg: EmailMessage
) -> int:
    """Queue an email in the caller's transaction."""
    attachments = [part.get_filename() or "" for part in msg.iter_attachments()]
    cur = conn.execute(
        "INSERT INTO emails (tenant, file_id, created_at, to_addr, subject, attachments_json, message)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (tenant, file_id, at, str(msg["To"]), str(msg["Subject"]), json.dumps(attachments), msg.as_bytes()),
    )
    return int(cur.lastrowid or 0)


def deliver_pending(conn: sqlite3.Connection, *, smtp: str | None, outbox: Path) -> int:
    """Send or outbox every pending email; returns how many were handled."""
    rows = conn.execute("SELECT id, tenant, to_addr, message FROM emails WHERE state = 'pending' ORDER BY id")
    handled = 0
    for row in rows.fetchall():
        state, detail = "outboxed", ""
        try:
            if not row["to_addr"]:
                state, detail = "error", "the tenant has no Technical Contact address"
            elif smtp:
                _send(smtp, bytes(row["message"]))
                state = "sent"
            else:
                outbox.mkdir(parents=True, exist_ok=True)
                target = outbox / f"{row['id']:06d}-{row['tenant']}.eml"
                atomic_write(target, bytes(row["message"]))
                detail = str(target)
        except (OSError, smtplib.SMTPException, IngestError, ValueError, OverflowError) as exc:
            # Never leave an email `pending` forever, nor let one bad address
            # or setting kill the queue worker: record why, log one line.
            state, detail = "error", f"{type(exc).__name__}: {exc}"
            log.warning("email #%d to %s not delivered: %s", row["id"], row["to_addr"], detail)
        conn.execute("UPDATE emails SET state = ?, detail = ? WHERE id = ?", (state, detail, row["id"]))
        handled += 1
    return handled


def _send(smtp: str, message: bytes) -> None:
    try:
        host, port = parse_smtp(smtp)
    except ConfigError as exc:
        raise IngestError(str(exc)) from exc
    parsed = message_from_bytes(message, policy=policy.default)
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.send_message(parsed)


def listing(conn: sqlite3.Connection, tenant: str, *, bodies: bool = False) -> list[dict[str, object]]:
    """A tenant's emails; with `bodies`, each with its plain-text `body` too."""
    out: list[dict[str, object]] = []
    for r in conn.execute("SELECT * FROM emails WHERE tenant = ? ORDER BY id", (tenant,)):
        entry: dict[str, object] = {
            "id": r["id"],
            "file_id": r["file_id"],
            "created_at": r["created_at"],
            "to": r["to_addr"],
            "subject": r["subject"],
            "attachments": json.loads(r["attachments_json"]),
            "state": r["state"],
            "detail": r["detail"],
        }
        if bodies:
            entry["body"] = _plain_body(bytes(r["message"]))
        out.append(entry)
    return out


def _plain_body(raw: bytes) -> str:
    part = message_from_bytes(raw, policy=policy.default).get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""
