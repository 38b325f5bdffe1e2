"""The emails production sends, captured (docs/production.md §1, §5).

Technical Contact emails: one per file with any error. Production emails the
tenant's one Technical Contact address with an error file to download [doc].
The sandbox builds the same: a summary in the body (older production emails
prefix each entry with docs/production.md §4's "Entry #n - name did not process, due to the
following errors: ") and the error file attached: the original rows plus
their row number and errors [decided].

Manager notifications: when a user is deactivated, "their manager will be
notified via an automated email" [doc for CSV upload; docs/production.md §5 assumes it for
SFTP]. The sandbox records one per deactivated user whose manager is an
active user, whatever deactivated them (a file, an engage termination, the
Admin module, the clock reaching a deactivation date), in the transaction
that deactivates them (`directory.write`). Its wording is undocumented: the
text says it is the sandbox's. Each email's kind is in its
`X-Bwsandbox-Kind` header (`technical-contact`, `manager-notification`).

Delivery: SMTP when `--smtp host:port` is configured, otherwise an `.eml`
file in DATA/outbox. The message is recorded (state `pending`) in the same
transaction that applies the file; `deliver_pending()` sends it afterwards,
so a crash can at worst send an email twice, never lose one.
"""

from __future__ import annotations

import errno
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
from bwsandbox.textsafe import one_line, printable
from bwsandbox.validator.errorfile import error_file

log = logging.getLogger(__name__)

SENDER = "Betterworks Sandbox <no-reply@bwsandbox.invalid>"
TECHNICAL_CONTACT = "technical-contact"
MANAGER_NOTIFICATION = "manager-notification"
KINDS = (TECHNICAL_CONTACT, MANAGER_NOTIFICATION)


def error_csv(
    header: Sequence[str],
    originals: Mapping[int, Sequence[str]],
    findings: Iterable[Mapping[str, object]],
    *,
    max_bytes: int | None = None,
) -> bytes:
    """The error file: the validator's format (`validate --format csv`), with
    the directory's findings too. A row the directory refused (licences, a
    taken address) comes with its original cells; where they are not at hand,
    its email is filled in from the finding. `max_bytes`: the rows stop
    before that size, and a last line says how many were left out."""
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
    return error_file(header, rows, findings, rejected=rejected, max_bytes=max_bytes)


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
    docs/production.md §4's "Entry #<n> - <name> did not process..." lines; n is the row
    number of the attached error file (header = row 1) [decided]."""
    names = names or {}
    findings = reports.errors(report)
    applied = report.get("applied") if isinstance(report.get("applied"), dict) else {}
    assert isinstance(applied, dict)
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    # The name and the cells are the tenant's text: shown with control
    # characters escaped (a newline would forge a header or a body line).
    count = reports.error_count(report)  # with those the report leaves out (max_findings_per_code)
    msg["Subject"] = one_line(f"Betterworks user import: {count} error(s) in {file_name}")
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="bwsandbox.invalid")
    msg["X-Bwsandbox-Tenant"] = one_line(tenant)  # a name stored before name_problem refused CR/LF
    msg["X-Bwsandbox-Kind"] = TECHNICAL_CONTACT
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
    if count > len(findings):
        lines += ["", f"{count - len(findings):,} more error(s) are not listed here; the attached error "
                      "file lists every row it can hold, and the report counts them all."]
    lines += ["", "The attached error file lists each row with its errors."]
    msg.set_content("\n".join(one_line(line) for line in lines) + "\n")
    msg.add_attachment(
        attachment, maintype="text", subtype="csv", filename=one_line(errors_name(file_name))
    )
    return msg


def manager_message(
    *, to: str, tenant: str, manager: Mapping[str, str], user: Mapping[str, str], terminated: bool,
    on: str, source: str,
) -> EmailMessage:
    """The manager's notice of a deactivated report (docs/production.md §5)."""
    name = _display_name(user)
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = one_line(f"Betterworks: {name} has been deactivated")
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="bwsandbox.invalid")
    msg["X-Bwsandbox-Tenant"] = tenant
    msg["X-Bwsandbox-Kind"] = MANAGER_NOTIFICATION
    why = " (left out of the engage roster file)" if terminated else ""
    lines = [
        f"Hello {_display_name(manager)},",
        "",
        f"{name} ({user.get('email', '')}), who reports to you, has been deactivated in Betterworks on "
        f"{on}{why}.",
        f"Source: {source}.",
        "",
        "--",
        "Sent by the Betterworks sandbox. Production notifies the manager of a deactivated user by an "
        "automated email (documented for CSV uploads; for SFTP files the sandbox infers it). Its wording "
        "is not documented: this text is the sandbox's.",
    ]
    msg.set_content(printable("\n".join(lines), keep="\n") + "\n")
    return msg


def _display_name(fields: Mapping[str, str]) -> str:
    first = fields.get("preferred_name") or fields.get("first_name", "")
    full = " ".join(p for p in (first, fields.get("last_name", "")) if p)
    return full or fields.get("email", "")


def notify_managers(
    conn: sqlite3.Connection, *, tenant: str, changes: Iterable[tuple[Mapping[str, str], bool]],
    on: str, at: str, source: str, file_id: int | None,
) -> int:
    """Record a manager notification for each deactivated user (fields, and
    whether an engage roster terminated them) whose manager is an active user
    of the tenant once the change is written. In the caller's transaction."""
    recorded = 0
    for user, terminated in changes:
        manager_email = user.get("manager_email", "")
        if not manager_email:
            continue
        row = conn.execute(
            "SELECT fields_json FROM dir_users WHERE tenant = ? AND email_key = ? AND active = 1",
            (tenant, manager_email.strip().lower()),
        ).fetchone()
        if row is None:
            continue
        manager = json.loads(row[0])
        msg = manager_message(
            to=str(manager.get("email") or manager_email), tenant=tenant, manager=manager, user=user,
            terminated=terminated, on=on, source=source,
        )
        record(conn, tenant=tenant, file_id=file_id, at=at, msg=msg)
        recorded += 1
    return recorded


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
    """Send or outbox every pending email; returns how many were handled.

    The queue worker delivers after each file, and a command that records
    emails itself (an admin edit, the clock deactivating users) delivers them
    at once: one lock per data directory keeps two processes from sending
    the same email twice."""
    import fcntl

    outbox.parent.mkdir(parents=True, exist_ok=True)
    with (outbox.parent / "deliver.lock").open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _deliver(conn, smtp=smtp, outbox=outbox)


def _deliver(conn: sqlite3.Connection, *, smtp: str | None, outbox: Path) -> int:
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
                target = outbox / outbox_name(row["id"], row["tenant"])
                atomic_write(target, bytes(row["message"]))
                detail = str(target)
        except (OSError, smtplib.SMTPException, IngestError, ValueError, OverflowError) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                # A full disk passes: the email stays pending, the worker tries again.
                log.warning("email #%d to %s waits: %s", row["id"], row["to_addr"], exc)
                continue
            # Never leave an email `pending` forever, nor let one bad address
            # or setting kill the queue worker: record why, log one line.
            state, detail = "error", f"{type(exc).__name__}: {exc}"
            log.warning("email #%d to %s not delivered: %s", row["id"], row["to_addr"], detail)
        conn.execute("UPDATE emails SET state = ?, detail = ? WHERE id = ?", (state, detail, row["id"]))
        handled += 1
    return handled


_OUTBOX_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def outbox_name(email_id: int, tenant: str) -> str:
    """The outbox file of email `email_id`: `000001-acme.eml`. Outside ASCII
    letters, digits and `._-`, each character of the tenant's name shows as
    `_`, so a name (stored before name_problem refused control characters, or
    with spaces or non-ASCII letters) never puts an escape sequence or a
    newline into a file name a shell lists; the id keeps each name unique."""
    safe = "".join(c if c in _OUTBOX_SAFE else "_" for c in tenant)
    return f"{email_id:06d}-{safe}.eml"


def _send(smtp: str, message: bytes) -> None:
    try:
        host, port = parse_smtp(smtp)
    except ConfigError as exc:
        raise IngestError(str(exc)) from exc
    parsed = message_from_bytes(message, policy=policy.default)
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.send_message(parsed)


def listing(
    conn: sqlite3.Connection, tenant: str, *, bodies: bool = False, kind: str | None = None
) -> list[dict[str, object]]:
    """A tenant's emails, each with its `kind`; with `bodies`, the plain-text
    `body` and `attachment_files` (name, content type, size) too. `kind`
    keeps one kind only (TECHNICAL_CONTACT, MANAGER_NOTIFICATION)."""
    out: list[dict[str, object]] = []
    for r in conn.execute("SELECT * FROM emails WHERE tenant = ? ORDER BY id", (tenant,)):
        parsed = message_from_bytes(bytes(r["message"]), policy=policy.default)
        got = str(parsed.get("X-Bwsandbox-Kind") or TECHNICAL_CONTACT)  # older emails: the only kind
        if kind is not None and got != kind:
            continue
        entry: dict[str, object] = {
            "id": r["id"],
            "kind": got,
            "file_id": r["file_id"],
            "created_at": r["created_at"],
            "to": r["to_addr"],
            "subject": r["subject"],
            "attachments": json.loads(r["attachments_json"]),
            "state": r["state"],
            "detail": r["detail"],
        }
        if bodies:
            part = parsed.get_body(preferencelist=("plain",))
            entry["body"] = str(part.get_content()) if part is not None else ""
            entry["attachment_files"] = [
                {"name": a.get_filename() or "", "content_type": a.get_content_type(),
                 "bytes": len(a.get_payload(decode=True) or b"")}
                for a in parsed.iter_attachments()
            ]
        out.append(entry)
    return out
