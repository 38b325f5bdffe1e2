"""One file through the vendor app: decrypt -> validate -> apply -> report.

Shared by the queue worker (SFTP uploads) and the Admin module's manual
upload. The file is validated and applied in a workspace (work tables that
hold the directory and the users as the file leaves them, `workspace.py`), and
everything is written in ONE transaction together with whatever the caller
adds in `finalize` (the worker marks the file done and records its email
there): after `kill -9` at any moment a file is applied entirely or not at
all. If the directory changed in between (another process applied
something), the file is recomputed on the new directory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bwsandbox.clock import Clock
from bwsandbox.config import Settings
from bwsandbox.ingest import directory, pgp, reports, workspace
from bwsandbox.ingest.apply import shown
from bwsandbox.ingest.notify import error_csv
from bwsandbox.ingest.plan import Judgement, Terms, judge, rejected
from bwsandbox.ingest.records import Outcome, Source
from bwsandbox.spec.fields import Profile, trim
from bwsandbox.store import transaction
from bwsandbox.tenants import Tenant
from bwsandbox.validator import Context
from bwsandbox.validator.findings import file_finding
from bwsandbox.validator.model import Finding, Limits


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """What one file may cost (docs/security.md "Limits"): the settings of
    the same names; the defaults are theirs."""

    max_decrypted_bytes: int = pgp.DEFAULT_MAX_DECRYPTED
    limits: Limits = Limits()  # the validator's: columns, JSON size
    max_findings_per_code: int = 1000
    max_report_bytes: int = 16 * 1024**2
    max_error_file_bytes: int = 32 * 1024**2
    max_attachment_bytes: int = 10 * 1024**2

    @classmethod
    def from_settings(cls, settings: Settings) -> Bounds:
        return cls(
            max_decrypted_bytes=settings.max_decrypted_bytes,
            limits=Limits(max_columns=settings.max_columns, max_json_bytes=settings.max_json_bytes),
            max_findings_per_code=settings.max_findings_per_code,
            max_report_bytes=settings.max_report_bytes,
            max_error_file_bytes=settings.max_error_file_bytes,
            max_attachment_bytes=settings.max_attachment_bytes,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Processed:
    report: dict[str, object]
    errors_csv: bytes | None  # None when the file has no error
    outcome: Outcome
    names: Mapping[int, str] = field(default_factory=dict)  # row -> "First Last" for the email
    # The error file as attached to the email: errors_csv, cut shorter when it
    # is over max_attachment_bytes.
    attachment: bytes | None = None

    @property
    def verdict(self) -> str:
        return str(self.report["verdict"])

    @property
    def has_errors(self) -> bool:
        return self.errors_csv is not None


Finalize = Callable[[sqlite3.Connection, Processed], None]


def decrypt(
    data: bytes, *, name: str, tenant: Tenant, data_dir: Path, max_bytes: int = pgp.DEFAULT_MAX_DECRYPTED,
    create_key: bool = True,
) -> tuple[bytes, str, Finding | None]:
    """(plaintext, name to validate under, problem). Engage requires PGP
    (docs/production.md §1)."""
    if pgp.is_pgp_name(name):
        if tenant.profile is Profile.CORE and not pgp.has_key(data_dir, tenant):
            return data, name, file_finding("PGP_NO_KEY", (
                f"{name} is named as a PGP file, but this tenant has no sandbox key. Run "
                f"`{pgp.export_key_command(tenant)}` and encrypt to that key."))
        try:
            plain = pgp.decrypt(data, data_dir, tenant, name, max_bytes=max_bytes, create_key=create_key)
            return plain, pgp.plain_name(name), None
        except pgp.PgpProblem as problem:
            return data, name, file_finding(problem.code, problem.message)
    if tenant.profile is Profile.ENGAGE:
        return data, name, file_finding("PGP_REQUIRED", (
            f"{name} is not encrypted. The engage profile accepts only PGP-encrypted files "
            f"named employees.YYYYMMDDHHMM.csv.pgp, encrypted with the key from "
            f"`{pgp.export_key_command(tenant)}`."))
    return data, name, None


def process(
    conn: sqlite3.Connection,
    *,
    data_dir: Path,
    tenant: Tenant,
    name: str,
    data: bytes,
    clock: Clock,
    source: Source,
    label: str,
    termination_limit: float,
    extra: Mapping[str, object] | None = None,
    finalize: Finalize | None = None,
    bounds: Bounds = Bounds(),  # noqa: B008 (frozen)
) -> Processed:
    today = clock.today().isoformat()
    now = clock.iso()
    if source is Source.FILE:
        plain, vname, problem = decrypt(
            data, name=name, tenant=tenant, data_dir=data_dir, max_bytes=bounds.max_decrypted_bytes
        )
    else:  # the Admin module's manual upload is a plain CSV in the browser
        plain, vname, problem = data, name, None
    try:
        while True:
            with transaction(conn):
                directory.sweep(conn, tenant.name, today, now)
            seen = directory.version(conn, tenant.name)
            processed = _compute(
                conn, tenant=tenant, name=name, vname=vname, plain=plain, problem=problem,
                today=today, now=now, source=source, label=label,
                termination_limit=termination_limit, extra=extra or {}, bounds=bounds,
            )
            with transaction(conn):
                if directory.version(conn, tenant.name) != seen:
                    continue  # someone else changed the directory meanwhile: recompute
                origin = directory.Provenance(
                    kind=source, label=label, at=now,
                    file_id=_int(extra.get("file_id")) if extra else None,
                )
                directory.write(conn, tenant.name, processed.outcome, origin)
                if processed.outcome.changed:
                    directory.bump(conn, tenant.name)
                # The changes are in the store now: the outcome no longer reads them from the
                # workspace (whose directory, read in place, now shows them written).
                written = dataclasses.replace(processed.outcome, users=[])
                done = dataclasses.replace(processed, outcome=written)
                if finalize is not None:
                    finalize(conn, done)
            return done
    finally:
        workspace.drop(conn)


def plan(
    conn: sqlite3.Connection,
    *,
    data_dir: Path,
    tenant: Tenant,
    name: str,
    data: bytes,
    clock: Clock,
    termination_limit: float,
    bounds: Bounds = Bounds(),  # noqa: B008 (frozen)
) -> Processed:
    """What `data`, uploaded by SFTP as `name`, would do to the tenant's
    directory now: the worker's own computation (decrypt, validate, apply in
    a workspace, report, error file) without the transaction that writes it.
    Changes nothing: no sweep, no write, no email."""
    try:
        with _judging(conn, data_dir=data_dir, tenant=tenant, name=name, data=data, clock=clock,
                      termination_limit=termination_limit, bounds=bounds) as judgement:
            processed = _stored(judgement, label=f"plan {name}", extra={}, bounds=bounds)
            return dataclasses.replace(processed, outcome=shown(processed.outcome))
    finally:
        workspace.drop(conn)


def _compute(
    conn: sqlite3.Connection,
    *,
    tenant: Tenant,
    name: str,
    vname: str,
    plain: bytes,
    problem: Finding | None,
    today: str,
    now: str,
    source: Source,
    label: str,
    termination_limit: float,
    extra: Mapping[str, object],
    bounds: Bounds = Bounds(),  # noqa: B008 (frozen)
) -> Processed:
    workspace.load(conn, tenant.name)
    with workspace.working(conn):
        judgement = _judge(
            conn, tenant=tenant, name=name, vname=vname, plain=plain,
            problem=problem, today=today, now=now, source=source, label=label,
            termination_limit=termination_limit, bounds=bounds,
        )
        return _stored(judgement, label=label, extra=extra, bounds=bounds)


def _stored(
    judgement: Judgement, *, label: str, extra: Mapping[str, object], bounds: Bounds
) -> Processed:
    """A judgement as it is stored, published and emailed: the report as
    JSON, capped; the error file and its attachment, bounded; the names of
    the rows shown."""
    report = judgement.report  # `extra` (the stored file's sha256, its id) has the last word
    header, originals = report.header, judgement.originals
    full = reports.build(
        report=report, outcome=judgement.outcome, validator_skipped=judgement.validator_skipped,
        extra={"source": label, **extra},
    )
    csv_bytes = attachment = None
    if report.has_errors:
        # The error file lists every row with an error, up to its byte bound;
        # the report keeps the first findings of each code (docs/security.md).
        findings = reports.findings(full)
        csv_bytes = error_csv(header, originals, findings, max_bytes=bounds.max_error_file_bytes)
        attachment = csv_bytes
        if len(csv_bytes) > bounds.max_attachment_bytes:
            attachment = error_csv(header, originals, findings, max_bytes=bounds.max_attachment_bytes)
    full = reports.cap(full, per_code=bounds.max_findings_per_code, max_bytes=bounds.max_report_bytes)
    # Names of the rows the report (and so the email) shows; each is parsed only now.
    shown = {r for r in (f.get("row") for f in reports.findings(full)) if isinstance(r, int)}
    names = _names(header, {row: originals[row] for row in sorted(shown) if row in originals})
    for f in judgement.outcome.findings:  # a row whose original cells are not at hand (JSON entries)
        if f.row is not None and f.value:
            names.setdefault(f.row, f.value)
    return Processed(
        report=full, errors_csv=csv_bytes, outcome=judgement.outcome, names=names, attachment=attachment
    )


def _judge(
    conn: sqlite3.Connection, *, tenant: Tenant, name: str, vname: str, plain: bytes, problem: Finding | None,
    today: str, now: str, source: Source, label: str, termination_limit: float, bounds: Bounds,
) -> Judgement:
    """The file against the tenant's directory (`plan.judge`), reported under
    the name it arrived with."""
    if problem is not None:
        return rejected(name, tenant.profile, problem)
    context = Context(
        profile=tenant.profile, locale=tenant.locale, custom_keys=tenant.custom_keys,
        today=dt.date.fromisoformat(today), limits=bounds.limits,
    )
    terms = Terms(
        source=source, label=label, now=now, licenses=tenant.licenses, termination_limit=termination_limit,
        upload_name=name if source is Source.FILE else None,
    )
    judgement = judge(plain, name=vname, context=context, directory=conn, terms=terms)
    return dataclasses.replace(judgement, report=dataclasses.replace(judgement.report, file=name))


def judge_upload(
    conn: sqlite3.Connection, *, data_dir: Path, tenant: Tenant, name: str, data: bytes, clock: Clock,
    termination_limit: float, bounds: Bounds = Bounds(),  # noqa: B008 (frozen)
) -> Judgement:
    """`bwsandbox validate --tenant`: what `data`, uploaded by SFTP as
    `name`, would do to the tenant's directory now, as a typed judgement.
    Changes nothing."""
    try:
        with _judging(conn, data_dir=data_dir, tenant=tenant, name=name, data=data, clock=clock,
                      termination_limit=termination_limit, bounds=bounds) as judgement:
            return judgement.detached()
    finally:
        workspace.drop(conn)


@contextmanager
def _judging(
    conn: sqlite3.Connection, *, data_dir: Path, tenant: Tenant, name: str, data: bytes, clock: Clock,
    termination_limit: float, bounds: Bounds,
) -> Iterator[Judgement]:
    """The upload's judgement, its changes readable until the block ends."""
    plain, vname, problem = decrypt(
        data, name=name, tenant=tenant, data_dir=data_dir, max_bytes=bounds.max_decrypted_bytes,
        create_key=False,
    )
    today = clock.today().isoformat()
    workspace.load(conn, tenant.name, swept_on=today)  # as the worker sweeps before each file
    with workspace.working(conn):
        yield _judge(
            conn, tenant=tenant, name=name, vname=vname, plain=plain,
            problem=problem, today=today, now=clock.iso(), source=Source.FILE, label=f"plan {name}",
            termination_limit=termination_limit, bounds=bounds,
        )


def _names(header: Sequence[str], originals: Mapping[int, Sequence[str]]) -> dict[int, str]:
    """Display names of the rows with findings (docs/production.md §4 "Entry #n - <name>")."""

    names = [trim(h) for h in header]

    def cell(cells: Sequence[str], column: str) -> str:
        index = names.index(column) if column in names else len(cells)
        return cells[index].strip() if index < len(cells) else ""

    out = {}
    for row, cells in originals.items():
        full = " ".join(p for p in (cell(cells, "first_name"), cell(cells, "last_name")) if p)
        out[row] = full or cell(cells, "email") or cell(cells, "name")
    return out


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None
