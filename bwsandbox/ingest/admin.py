"""The Admin module, simulated: manual changes a later file overrides (docs/production.md §5).

Production lets an administrator edit one user or upload a CSV by hand in
the Admin module; data in a later SFTP file overrides those manual changes
for the same user [doc]. The sandbox records each manual edit (`dir_manual`)
so the report of the file that overwrites it can list it.

- `set_user(...)`: an individual update, `field=value` pairs; `status=
  deactivated|active` is a shorthand for a deactivation date of today / blank.
- `upload(...)`: a manual CSV upload; it shows its errors immediately and
  sends no email to the Technical Contact (production shows them in the
  browser).

Both go through the same validator and apply code as SFTP files, with
`Source.ADMIN`: no PGP, no engage terminations, no Technical Contact email.
A user they deactivate is notified to their manager, as for a file (docs/production.md §5).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from bwsandbox import clock as clock_mod
from bwsandbox import tenants as tenants_mod
from bwsandbox.config import Settings
from bwsandbox.errors import UsageError
from bwsandbox.ingest import notify
from bwsandbox.ingest.process import Bounds, Processed, process
from bwsandbox.ingest.records import Source, email_key
from bwsandbox.spec.fields import Kind
from bwsandbox.validator.header import template_for
from bwsandbox.validator.model import is_text


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"expected field=value, not {pair!r}")
        if not is_text(pair):
            raise UsageError(f"{pair!r} is not valid UTF-8 text")
        out[name.strip()] = value
    if not out:
        raise UsageError("give at least one field=value")
    return out


def set_user(
    conn: sqlite3.Connection, settings: Settings, tenant_name: str, email: str, fields: Mapping[str, str]
) -> Processed:
    for given in (tenant_name, email):
        if not is_text(given):
            raise UsageError(f"{given!r} is not valid UTF-8 text")
    tenant = tenants_mod.require(conn, tenant_name)
    clock = clock_mod.load(conn)
    values = dict(fields)
    if "email" in values:
        raise UsageError("the email identifies the user; it cannot be set here")
    status = values.pop("status", None)
    # The Admin module edits fields the tenant has: a field it does not know is
    # a mistake to say, not a column to ignore as a file's would be.
    known = (set(template_for(Kind.USERS, tenant.profile)) | set(tenant.custom_keys)) - {"email"}
    unknown = sorted(set(values) - known)
    if unknown:
        can_set = sorted(known | ({"status"} if "deactivation_date" in known else set()))
        raise UsageError(f"unknown field(s) {', '.join(unknown)}: fields are {', '.join(can_set)}")
    if status is not None:
        if "deactivation_date" not in known:  # engage: the roster file decides (docs/production.md §1)
            raise UsageError(
                f"status cannot be set for the {tenant.profile} profile: a user is terminated by "
                "leaving them out of the next roster file"
            )
        if status not in ("active", "deactivated"):
            raise UsageError("status must be active or deactivated")
        # yyyy/mm/dd: a documented format (docs/production.md §3), so no notice about a date
        # the admin never typed
        values["deactivation_date"] = clock.today().strftime("%Y/%m/%d") if status == "deactivated" else ""
    # EMAIL only identifies the user (matched case-insensitively, as in
    # production): the row carries the stored address, so an edit never
    # rewrites its letter case, and an unknown address is said plainly
    # rather than as feed errors about the fields a new user would need.
    row = conn.execute(
        "SELECT fields_json FROM dir_users WHERE tenant = ? AND email_key = ?",
        (tenant.name, email_key(email)),
    ).fetchone()
    if row is None:
        raise UsageError(f"no user {email} in tenant {tenant.name}")
    stored = str(json.loads(row[0]).get("email") or email)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", *values])
    writer.writerow([stored, *values.values()])
    return _delivered(conn, settings, process(
        conn, data_dir=settings.data_dir, tenant=tenant, name="admin-set-user.csv",
        data=out.getvalue().encode(), clock=clock, source=Source.ADMIN,
        label=f"admin set-user {email}", termination_limit=settings.engage_termination_limit,
    ))


def upload(conn: sqlite3.Connection, settings: Settings, tenant_name: str, path: Path) -> Processed:
    tenant = tenants_mod.require(conn, tenant_name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return _delivered(conn, settings, process(
        conn, data_dir=settings.data_dir, tenant=tenant, name=path.name, data=data,
        clock=clock_mod.load(conn), source=Source.ADMIN, label=f"admin upload {path.name}",
        termination_limit=settings.engage_termination_limit, bounds=Bounds.from_settings(settings),
    ))


def _delivered(conn: sqlite3.Connection, settings: Settings, done: Processed) -> Processed:
    """An edit that deactivates users records their managers' notifications
    (docs/production.md §5): sent (or outboxed) now, as the worker does after a file."""
    notify.deliver_pending(conn, smtp=settings.smtp, outbox=settings.data_dir / "outbox")
    return done
