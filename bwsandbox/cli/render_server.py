"""Rendering for the server-side commands (serve banner, tenant list, files,
host keys). Kept apart from render.py (the validator's) so both can grow
without stepping on each other; rich stays confined to the cli layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from bwsandbox.cli import layout, safe
from bwsandbox.ingest import reports
from bwsandbox.ingest.files import FileState
from bwsandbox.server.hostkeys import HostKeyInfo


def host_keys_text(keys: Sequence[HostKeyInfo], *, title: str = "Host key fingerprints") -> str:
    """Fingerprints the way each client shows them (docs/production.md §2)."""
    lines = [f"{title}:"]
    for key in keys:
        lines.append(f"  {key.type}")
        lines.append(f"    OpenSSH            {key.sha256}")
        lines.append(f"                       {key.md5}")
        lines.append(f"    PuTTY / FileZilla  {key.putty}")
        if key.type == CURL_KEY_TYPE:
            pin = f"--hostpubsha256 {key.curl_sha256}"
            lines.append(f"    curl               {pin}  (curl/libssh2 uses this key)")
    return "\n".join(lines)


# curl (libssh2) negotiates ECDSA with this server, whatever else is offered,
# so only that key's hash pins it (docs/server.md "Connecting with clients").
CURL_KEY_TYPE = "ecdsa-sha2-nistp256"


def connect_text(host: str, port: int, username: str, password: str, keys: Sequence[HostKeyInfo]) -> str:
    """How to connect with the common clients."""
    target = f"{username}@{host}" if host not in ("0.0.0.0", "::", "") else f"{username}@127.0.0.1"
    shown = target.split("@", 1)[1]
    ed25519 = next((k for k in keys if k.type == "ssh-ed25519"), None)
    ecdsa = next((k for k in keys if k.type == CURL_KEY_TYPE), None)
    pin = f" -hostkey {ed25519.sha256}" if ed25519 else ""
    curl_pin = f" --hostpubsha256 {ecdsa.curl_sha256}" if ecdsa else ""
    return "\n".join(
        [
            f"  OpenSSH    sftp -P {port} {target}        (password: {password})",
            f"  PuTTY      psftp -P {port}{pin} {target}",
            f"  FileZilla  sftp://{shown}  port {port}  user {username}",
            f"  curl       curl -u {username}:{password}{curl_pin} -T FILE sftp://{shown}:{port}/incoming/",
        ]
    )


def print_table(
    console: Console, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, drop: Sequence[str] = (),
    head: Sequence[str] = (), keep: Sequence[str] = (),
) -> None:
    """A listing that reads at any width (`layout.print_records`); every
    value is shown safely (`cli.safe`)."""
    layout.print_records(console, columns, rows, drop=drop, head=head, keep=keep)


def shown_state(state: str) -> str:
    """A file's state as `files` and `report` show it: an engage data file
    `waiting` for its .done marker is, for the user, still queued."""
    return FileState.QUEUED.value if state == FileState.WAITING else str(state)


def print_findings(console: Console, report: Mapping[str, object]) -> None:
    """A report's findings, one block each (nothing when there are none)."""
    findings = reports.findings(report)
    if findings:
        layout.print_findings(console, findings)
        console.print()
        console.print(layout.severity_summary(findings))


def when(iso: object) -> str:
    """`2026-03-01T09:00:12+00:00` as `2026-03-01 09:00:12` (UTC, as stored)."""
    return str(iso or "").replace("T", " ")[:19]


CHANGES_SHOWN = 20


def print_report(report: Mapping[str, Any], *, tenant: str, contact: str, reports_folder: bool) -> None:
    """`bwsandbox report`: what happened to one file, from the top: verdict,
    counts, findings (one block each), then the changes and the manual edits
    it overwrote."""
    out = layout.stdout()
    verdict = str(report.get("verdict", ""))
    out.print(Text.assemble(
        safe.text(report.get("file"), style="bold"), "  ",
        (verdict.upper(), layout.VERDICT_STYLE.get(verdict, "")),
        f"  file #{report.get('file_id')} · tenant ", safe.text(tenant),
    ))  # fmt: skip
    rows = _mapping(report.get("rows"))
    out.print(Text(
        f"received {when(report.get('received_at'))}, processed {when(report.get('processed_at'))} · "
        f"{report.get('bytes', 0):,} bytes · rows: {rows.get('total', 0)} total, "
        f"{rows.get('valid', 0)} applied, {rows.get('skipped', 0)} skipped", style="dim",
    ))  # fmt: skip
    out.print(Text.assemble(("applied: ", "bold"), reports.applied_text(report) or "nothing"))
    if report.get("repeat"):
        out.print(Text.assemble(("note: ", "bold"), safe.text(report["repeat"])))
    findings = reports.findings(report)
    if findings:
        out.print()
        print_findings(out, report)
    if reports.has_errors(report):
        name = safe.plain(report.get("file"))
        where = f"/reports/{name}.errors.csv in the tenant's SFTP tree" if reports_folder else "the store"
        to = f" and emailed to {safe.plain(contact)}" if contact else ""
        out.print(Text(f"error file: {where}{to} (`bwsandbox emails`)", style="dim"))
    changes = report.get("changes") if isinstance(report.get("changes"), list) else []
    if changes:
        more = len(changes) - CHANGES_SHOWN + int(report.get("changes_not_shown") or 0)
        out.print()
        out.print(Text(f"changes ({len(changes) + int(report.get('changes_not_shown') or 0)})", style="bold"))
        for c in changes[:CHANGES_SHOWN]:
            _change(out, c)
        if more > 0:
            out.print(Text(f"… and {more} more: --format json, or `bwsandbox directory --history`",
                           style="dim"))
    edits = report.get("overwritten_manual_edits") or []
    if edits:
        out.print()
        out.print(Text(f"manual edits this file overwrote ({len(edits)})", style="bold"))
        for e in edits:
            out.print(Text.assemble(
                f"row {e.get('row')}  ", safe.text(e.get("email"), style="bold"), "  ",
                safe.text(e.get("field")),
                ": ", safe.text(f'"{safe.plain(e.get("manual_value"))}"'), " → ",
                safe.text(f'"{safe.plain(e.get("file_value"))}"'),
            ))  # fmt: skip
            out.print(Padding(Text.assemble("set by ", safe.text(e.get("edited_by")), " on ",
                                            when(e.get("edited_at")), style="dim"),
                              (0, 0, 0, layout.INDENT), expand=False))


def _change(out: Console, change: Mapping[str, Any]) -> None:
    action = str(change.get("action", ""))
    row = change.get("row")
    out.print(Text.assemble(
        (f"{action:<11}", "bold"), " ", safe.text(change.get("email")),
        (f"  row {row}" if row is not None else "", "dim"),
    ))  # fmt: skip
    if action == "created":
        return  # every field is new: the row says them
    for name, pair in _mapping(change.get("fields")).items():
        old, new = (pair + ["", ""])[:2] if isinstance(pair, list) else ("", pair)
        out.print(Padding(field_change(name, old, new), (0, 0, 0, layout.INDENT + 8), expand=False))


def field_change(name: str, old: object, new: object) -> Text:
    """`title: "CTO" → "CEO"`; an empty side shows as `(empty)`."""

    def side(v: object) -> Text:
        return safe.text(f'"{safe.plain(v)}"') if v not in (None, "") else Text("(empty)", style="dim")

    return Text.assemble((f"{safe.plain(name)}: ", "dim"), side(old), " → ", side(new))


def _mapping(value: object) -> Mapping[str, Any]:
    """A dict read back from stored JSON, or {} (never trusted to have the shape)."""
    return value if isinstance(value, dict) else {}


def field_value(name: str, value: object) -> Text:
    """`title: "CEO"` (a field set on creation)."""
    return Text.assemble((f"{safe.plain(name)}: ", "dim"), safe.text(f'"{safe.plain(value)}"'))


def print_history(entries: Sequence[Mapping[str, Any]]) -> None:
    """`bwsandbox directory --history`: one block per change: when, whom,
    what and where from, then each field as `field: old → new`."""
    out = layout.stdout()
    for n, e in enumerate(entries):
        if n:
            out.print()
        row = f", row {e['row']}" if e.get("row") is not None else ""
        out.print(Text.assemble(
            (when(e.get("at")), "dim"), "  ", safe.text(e.get("subject"), style="bold"), "  ",
            (str(e.get("action", "")), "bold"), "  ", ("(", "dim"), safe.text(e.get("source"), style="dim"),
            (f"{row})", "dim"),
        ))  # fmt: skip
        created = e.get("action") == "created"
        for name, pair in _mapping(e.get("changes")).items():
            old, new = (list(pair) + ["", ""])[:2] if isinstance(pair, list) else ("", pair)
            if created and not new:
                continue
            line = field_value(name, new) if created else field_change(name, old, new)
            out.print(Padding(line, (0, 0, 0, layout.INDENT), expand=False))
    if not entries:
        out.print(Text("no changes recorded", style="dim"))


def print_email(email: Mapping[str, Any]) -> None:
    """One email in full: its headers, plain-text body and attachments."""
    out = layout.stdout()
    for label, key in (("Kind", "kind"), ("To", "to"), ("Subject", "subject"), ("Created", "created_at"),
                       ("State", "state"), ("Detail", "detail")):
        value = when(email.get(key)) if key == "created_at" else email.get(key)
        if value:
            out.print(Text.assemble((f"{label}: ", "bold"), safe.text(value)))
    for a in email.get("attachment_files") or []:
        out.print(Text.assemble(("Attachment: ", "bold"), safe.text(a.get("name")),
                                f"  ({a.get('content_type')}, {a.get('bytes', 0):,} bytes)"))
    out.print()
    out.print(safe.lines(email.get("body", "")))
