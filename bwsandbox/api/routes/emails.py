"""`/tenants/{name}/emails`: the captured emails, each raw and its attachments."""

from __future__ import annotations

import sqlite3
from email import message_from_bytes, policy
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response

from bwsandbox import control
from bwsandbox.api.routes.deps import DB, EmailId

router = APIRouter()


@router.get("/tenants/{name}/emails", tags=["emails"],
            summary="captured emails: to, subject, plain text, attachments by URL")
def list_emails(name: str, conn: DB) -> list[dict[str, Any]]:
    from bwsandbox.ingest import notify

    control.require_tenant(conn, name)
    base = f"/api/v1/tenants/{quote(name, safe='')}/emails"
    out = []
    for e in notify.listing(conn, name, bodies=True):
        files = e.get("attachment_files")
        out.append({
            "id": e["id"], "kind": e["kind"], "file_id": e["file_id"], "created_at": e["created_at"],
            "to": e["to"], "subject": e["subject"], "text": e.get("body", ""), "state": e["state"],
            "attachments": [{**a, "url": f"{base}/{e['id']}/attachments/{i}"}
                            for i, a in enumerate(files if isinstance(files, list) else [])],
            "raw_url": f"{base}/{e['id']}/raw",
        })
    return out


def _message(conn: sqlite3.Connection, tenant: str, email_id: int) -> bytes:
    control.require_tenant(conn, tenant)
    row = conn.execute(
        "SELECT message FROM emails WHERE id = ? AND tenant = ?", (email_id, tenant)
    ).fetchone()
    if row is None:
        raise control.NotFound(f"tenant {tenant!r} has no email #{email_id}")
    return bytes(row[0])


@router.get("/tenants/{name}/emails/{email_id}/raw", tags=["emails"], response_class=Response,
            summary="the whole message as sent (.eml)")
def raw_email(name: str, email_id: EmailId, conn: DB) -> Response:
    return Response(_message(conn, name, email_id), media_type="message/rfc822")


@router.get("/tenants/{name}/emails/{email_id}/attachments/{index}", tags=["emails"], response_class=Response,
            summary="download one attachment")
def attachment(name: str, email_id: EmailId, index: int, conn: DB) -> Response:
    parsed = message_from_bytes(_message(conn, name, email_id), policy=policy.default)
    parts = list(parsed.iter_attachments())
    if not 0 <= index < len(parts):
        raise control.NotFound(f"email #{email_id} has {len(parts)} attachment(s); no #{index}")
    part = parts[index]
    filename = part.get_filename() or f"attachment-{index}"
    return Response(part.get_payload(decode=True) or b"", media_type=part.get_content_type(), headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})
