"""What a control surface does to a sandbox, in one place: the HTTP API
(bwsandbox/api), tenants declared from the environment (declare.py) and
the pytest fixture share these, so "reset" or "seed users" means one thing.

Each function takes a store connection of the caller's thread; none
imports the server or an HTTP library. Functions that delete a tenant's
data must run while the queue worker is paused (`worker.paused()`), as the
pytest fixture's reset does.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import secrets
import shutil
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bwsandbox import clock as clock_mod
from bwsandbox import layout, store
from bwsandbox import tenants as tenants_mod
from bwsandbox.config import Settings
from bwsandbox.errors import StoreError, UsageError
from bwsandbox.ingest import files
from bwsandbox.spec.fields import Profile
from bwsandbox.tenants import Region, Tenant

FINAL_STATES = files.FINAL


class NotFound(UsageError):
    """The tenant, upload, email or user asked for does not exist."""


class SeedError(UsageError):
    """Seeded users the Admin module refused; `problems` names each row."""

    def __init__(self, problems: list[str], *, what: str = "users",
                 report: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"the seeded {what} are invalid:\n" + "\n".join(problems))
        self.problems = problems
        self.what = what
        self.report = report  # departments: what the rows without an error did


# -- tenants ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class TenantSpec:
    """A tenant as a control surface declares it; `password` None generates one."""

    name: str
    username: str | None = None
    password: str | None = None
    region: str = "us"
    profile: str = "core"
    licenses: int = 1000
    contact: str = "technical-contact@example.com"
    locale: str = "en-US"
    custom_keys: Sequence[str] = ()
    authorized_keys: Sequence[str] = ()


def create_tenant(conn: sqlite3.Connection, settings: Settings, spec: TenantSpec, *,
                  password_hash: str | None = None) -> tuple[Tenant, str]:
    """Create the tenant and its SFTP tree; returns it with its password.
    The one way a tenant is made (`tenant add`, the API, declared tenants,
    the pytest fixture). `password_hash`: see `tenants.add`.

    The folders are made inside the transaction that stores the tenant: if
    a folder cannot be made, a StoreError says which and why and the row is
    rolled back; if the tenant is not stored (that, or the COMMIT failing),
    the folders this call made are removed, so no half-made tenant remains."""
    try:
        region, profile = Region(spec.region), Profile(spec.profile)
    except ValueError as exc:
        raise UsageError(f"{exc} (region: us or eu; profile: core or engage)") from None
    password = spec.password if spec.password is not None else secrets.token_urlsafe(12)
    made: Path | None = None  # the tenant's home, when this call made it
    try:
        with store.transaction(conn):
            tenant = tenants_mod.add(
                conn, name=spec.name, username=spec.name if spec.username is None else spec.username,
                password=password, password_hash=password_hash, region=region, profile=profile,
                licenses=spec.licenses, contact=spec.contact, locale=spec.locale,
                custom_keys=frozenset(spec.custom_keys), authorized_keys="\n".join(spec.authorized_keys),
                created_at=clock_mod.load(conn).iso(),
            )
            home = layout.tenant_home(settings.data_dir, tenant)
            made = None if _exists(home) else home
            _make_tree(settings, tenant)
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise
    return tenant, password


def _exists(path: Path) -> bool:
    try:
        path.lstat()
    except OSError:
        return False  # absent, or a path the file system cannot even hold
    return True


def _make_tree(settings: Settings, tenant: Tenant) -> None:
    """The tenant's SFTP tree, or a StoreError saying which folder and why."""
    try:
        layout.ensure_tree(settings.data_dir, tenant, reports_folder=settings.reports_folder)
    except OSError as exc:
        where = exc.filename or layout.tenant_root(settings.data_dir, tenant)
        raise StoreError(f"cannot make the folders of tenant {tenant.name!r} ({where}): "
                         f"{exc.strerror or exc}") from exc


def _remove_tree(path: Path, tenant: Tenant) -> None:
    """Remove `path` and all below it; gone already, or a path too long to
    have ever been made, is fine. Anything else is a StoreError naming it."""
    try:
        shutil.rmtree(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENAMETOOLONG):
            return
        raise StoreError(f"cannot remove the folders of tenant {tenant.name!r} "
                         f"({exc.filename or path}): {exc.strerror or exc}") from exc


def require_tenant(conn: sqlite3.Connection, name: str) -> Tenant:
    tenant = tenants_mod.get(conn, name)
    if tenant is None:
        known = ", ".join(t.name for t in tenants_mod.all_tenants(conn)) or "none yet"
        raise NotFound(f"no tenant named {name!r} (tenants: {known})")
    return tenant


def purge_tenant_data(conn: sqlite3.Connection, settings: Settings, tenant: Tenant) -> None:
    """Forget a tenant's uploads, reports, directory, admin edits, emails and
    faults; keep the tenant, its password and its PGP key. The worker must be
    paused (a file it holds would be written back). A StoreError names a
    folder that could not be cleared or made again."""
    with store.transaction(conn):
        _purge_rows(conn, tenant)
    home = layout.tenant_home(settings.data_dir, tenant)
    try:
        children = list(home.iterdir())
    except OSError:
        children = []  # no home yet (or none it could have): _make_tree says why if it matters
    for child in children:
        if child.name != "pgp":  # the key the tenant's export job encrypts to stays valid
            if child.is_dir() and not child.is_symlink():
                _remove_tree(child, tenant)
            else:
                try:
                    child.unlink(missing_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot remove {child} of tenant {tenant.name!r}: "
                                     f"{exc.strerror or exc}") from exc
    _make_tree(settings, tenant)


def _purge_rows(conn: sqlite3.Connection, tenant: Tenant) -> None:
    files.purge_tenant(conn, tenant.name)
    for table in ("dir_users", "dir_departments", "dir_history", "dir_batches", "dir_manual", "emails",
                  "faults"):
        conn.execute(f'DELETE FROM "{table}" WHERE tenant = ?', (tenant.name,))
    conn.execute("DELETE FROM meta WHERE key = ?", (f"dir_version:{tenant.name}",))


def delete_tenant(conn: sqlite3.Connection, settings: Settings, tenant: Tenant) -> None:
    """The tenant and everything it has. The worker must be paused. Its
    folders go first: if they cannot be removed, a StoreError says which and
    the tenant stays, so deleting again finishes the job (a tenant whose
    folders could never be made, its name too long for the file system, is
    simply deleted)."""
    _remove_tree(layout.tenant_home(settings.data_dir, tenant), tenant)
    with store.transaction(conn):
        _purge_rows(conn, tenant)
        conn.execute("DELETE FROM tenants WHERE name = ?", (tenant.name,))


# -- the directory ----------------------------------------------------------------

def seed_users(
    conn: sqlite3.Connection, settings: Settings, tenant: Tenant, users: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    """Existing users, entered as an admin's manual CSV upload (as the pytest
    fixture seeds them); returns its report, or raises SeedError."""

    if not users:
        return {}
    columns = list(dict.fromkeys(k for u in users for k in u))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: str(v) for k, v in u.items()} for u in users)
    report, errors = _admin_upload(conn, settings, tenant, out.getvalue().encode("utf-8"), ".csv")
    if errors:
        raise SeedError([_seed_problem(f, users) for f in errors])
    return report


DEPARTMENTS_FILE = "departments.csv"


def _admin_upload(
    conn: sqlite3.Connection, settings: Settings, tenant: Tenant, data: bytes, suffix: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An admin's manual upload of `data` (through a temporary file, named to
    end in `suffix`); returns its report and its error findings."""
    from bwsandbox.ingest import admin

    path = settings.data_dir / f"admin-seed-{secrets.token_hex(4)}{suffix}"
    path.write_bytes(data)
    try:
        report = dict(admin.upload(conn, settings, tenant.name, path).report)
    finally:
        path.unlink(missing_ok=True)
    findings: list[dict[str, Any]] = list(report.get("findings") or [])  # type: ignore[call-overload]
    return report, [f for f in findings if f.get("severity") == "error"]


def seed_departments(
    conn: sqlite3.Connection, settings: Settings, tenant: Tenant, *,
    data: bytes | None = None, rows: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Departments (docs/production.md §3's department file: name, parent, is_active), as
    an admin's manual upload of the department file, given as the CSV or as
    rows; returns its report. Rows without an error are applied; any error
    raises SeedError naming each refused row (with the report)."""
    from bwsandbox.spec.fields import Kind, trim
    from bwsandbox.validator.header import detect_kind

    if tenant.profile is not Profile.CORE:
        raise UsageError(
            f"tenant {tenant.name!r} is {tenant.profile}: only core tenants have a department file")
    if rows is not None:
        if not rows:
            raise UsageError('give at least one department, e.g. [{"name": "Engineering", "parent": ""}]')
        columns = list(dict.fromkeys(k for r in rows for k in r))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                          for k, v in r.items()} for r in rows)
        data = out.getvalue().encode("utf-8")
    if not data:
        raise UsageError("give the department file: a CSV with a header name,parent,is_active")
    first = data.decode("utf-8-sig", "replace").splitlines()[0] if data.strip() else ""
    header = tuple(trim(h).lower() for h in next(csv.reader([first]), []))
    if detect_kind(header, Profile.CORE) is not Kind.DEPARTMENTS:
        raise UsageError(
            f"not a department file: its header must have `name` and no `email` (it is {first!r})")
    report, errors = _admin_upload(conn, settings, tenant, data, f"-{DEPARTMENTS_FILE}")
    if errors:
        problems = []
        for f in errors:
            row = f.get("row")
            where = "the whole file" if not isinstance(row, int) else (
                f"rows[{row - 2}]" if rows is not None else f"row {row}")
            column = f" in {f['column']!r}" if f.get("column") else ""
            problems.append(f"{where}: {f.get('code')}{column}: {f.get('message')}")
        raise SeedError(problems, what="departments", report=report)
    return report


def _seed_problem(finding: Mapping[str, Any], users: Sequence[Mapping[str, str]]) -> str:
    row = finding.get("row")
    where = "the whole upload"
    if isinstance(row, int):
        index = row - 2  # row 2 of the CSV is users[0]
        where = f"users[{index}] ({users[index].get('email') or 'no email'})" if 0 <= index < len(
            users) else f"row {row}"
    column = f" in {finding['column']!r}" if finding.get("column") else ""
    return f"{where}: {finding.get('code')}{column}: {finding.get('message')}"


# -- uploads ----------------------------------------------------------------------

def _upload(upload: files.Upload, *, report: bool = False) -> dict[str, Any]:
    """An upload as the API shows it (JSON's edge: the record becomes a dict here)."""
    out: dict[str, Any] = {
        "id": upload.id, "name": upload.name, "bytes": upload.bytes, "sha256": upload.sha256,
        "received_at": upload.received_at, "state": upload.state.value, "final": upload.final,
        "verdict": upload.verdict, "detail": upload.detail,
        "counts": json.loads(upload.counts_json) if upload.counts_json else None,
        "has_errors_csv": upload.has_errors_csv,
    }
    if report:
        out["report"] = json.loads(upload.report_json) if upload.report_json else None
    return out


def uploads(conn: sqlite3.Connection, tenant: str) -> list[dict[str, Any]]:
    """Every upload of the tenant, newest first, incomplete ones included."""
    return [_upload(u) for u in files.uploads(conn, tenant)]


def latest_upload(
    conn: sqlite3.Connection, tenant: str, name: str, after: int = 0
) -> dict[str, Any] | None:
    """The newest upload called `name` (with an id above `after`), with its report."""
    found = files.latest_upload(conn, tenant, name, after=after)
    return _upload(found, report=True) if found is not None else None


def upload_by_id(conn: sqlite3.Connection, tenant: str, file_id: int) -> dict[str, Any]:
    found = files.upload(conn, tenant, file_id)
    if found is None:
        raise NotFound(f"tenant {tenant!r} has no upload #{file_id}")
    return _upload(found, report=True)


def errors_csv(conn: sqlite3.Connection, file_id: int) -> bytes | None:
    row = conn.execute("SELECT errors_csv FROM file_outputs WHERE file_id = ?", (file_id,)).fetchone()
    return bytes(row[0]) if row is not None and row[0] is not None else None


def history_of_file(conn: sqlite3.Connection, tenant: str, file_id: int) -> list[dict[str, object]]:
    """What this upload changed, field by field (before, after)."""
    from bwsandbox.ingest import directory

    return list(directory.history(conn, tenant, file_id=file_id))


# -- the clock --------------------------------------------------------------------

def clock_state(conn: sqlite3.Connection) -> dict[str, Any]:
    clock = clock_mod.load(conn)
    state = {"today": clock.today().isoformat(), "now": clock.iso(), "offset_days": clock.offset_days}
    return {**state, "warning": clock.warning} if clock.warning else state  # a stored offset ignored


def set_clock(conn: sqlite3.Connection, settings: Settings, offset: int) -> dict[str, Any]:
    """Move the sandbox's today (docs/production.md §3): reached deactivation dates take
    effect at once and their managers' notifications go out (`bwsandbox clock` and the
    API). `offset` comes from `clock.offset_for` or `clock.advanced`, which check it."""
    from bwsandbox.ingest import directory, notify

    deactivated = 0
    with store.transaction(conn):
        clock_mod.set_offset(conn, offset)
        clock = clock_mod.load(conn)
        for tenant in tenants_mod.all_tenants(conn):
            deactivated += directory.sweep(conn, tenant.name, clock.today().isoformat(), clock.iso())
    if deactivated:
        notify.deliver_pending(conn, smtp=settings.smtp, outbox=settings.data_dir / "outbox")
    return {**clock_state(conn), "deactivated": deactivated}
