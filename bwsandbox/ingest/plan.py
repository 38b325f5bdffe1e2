"""What a file does to a directory: the one computation every part shares.

    judge(data, context, directory, ...)  the validator (what the file alone
                                       shows) then the apply layer (the rules
                                       that need the directory, `apply.py`,
                                       `links.py`), in a workspace
    validate(data, context, name=...)  the same, on the directory a
                                       `Context` gives as JSON (or an empty
                                       one: a new tenant)

The worker (`process.py`) writes a judgement to the store; `bwsandbox
validate` prints it, with its `plan`, without writing; the HTTP API's plan
returns it. Because they are one function over the same workspace, what
`validate --tenant` predicts is what an upload then does (a property test
drives both).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from bwsandbox.ingest import workspace
from bwsandbox.ingest.apply import due_deactivations, run, shown
from bwsandbox.ingest.departments import run_departments
from bwsandbox.ingest.records import Department, Outcome, Policy, Source, State, User, email_key
from bwsandbox.ingest.reports import applied_counts, change_list
from bwsandbox.spec.codes import Scope, Severity
from bwsandbox.spec.fields import DATE_IN_NAME, FEED_SUFFIXES, Kind, Profile, trim
from bwsandbox.validator import Context, DirectorySnapshot, Validation
from bwsandbox.validator import validate as validate_file
from bwsandbox.validator.findings import file_finding
from bwsandbox.validator.model import ApplicableRow, Finding, Report

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """The report over both layers (findings, rows and verdict), the changes
    the file makes, and the original cells of every row with a finding."""

    report: Report
    outcome: Outcome
    originals: Mapping[int, Sequence[str]] = field(default_factory=dict)
    validator_skipped: int = 0  # rows the validator left out (counted as `skipped` in `applied`)
    validation: Validation | None = None  # the file alone (None: refused before it was read)

    def applicable(self) -> Iterator[ApplicableRow]:
        """The rows the file alone lets through (the directory may still refuse some: `outcome`)."""
        return self.validation.applicable() if self.validation is not None else iter(())

    def detached(self) -> Judgement:
        """The judgement as it outlives its workspace: the changes its plan
        lists, and their count."""
        return dataclasses.replace(self, outcome=shown(self.outcome))

    @property
    def plan(self) -> dict[str, object]:
        """`{"applied": {...}, "changes": [...]}`, in the shape of a processed
        report's keys of the same names."""
        return {"applied": applied_counts(self.outcome, self.validator_skipped),
                "changes": change_list(self.outcome)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Terms:
    """What the tenant adds to the validator's `Context`."""

    source: Source = Source.FILE
    label: str = ""
    now: str = "1970-01-01T00:00:00+00:00"
    licenses: int | None = None
    termination_limit: float = 0.20
    upload_name: str | None = None  # the name an SFTP upload arrives under: its naming notices


def judge(
    plain: bytes, *, name: str, context: Context, directory: sqlite3.Connection, terms: Terms,
    progress: Progress | None = None,
) -> Judgement:
    """The file (plain bytes, named `name` for its format) against the
    directory in the workspace on `directory` (`workspace.py`). The
    judgement's changes are read from that workspace: use them while it
    lasts, or `detached()`."""
    today = (context.today or dt.date.today()).isoformat()
    validation = validate_file(plain, context, name=name, progress=progress)
    report = validation.report
    outcome = Outcome()
    if str(report.verdict) != "rejected":
        policy = Policy(
            profile=context.profile, source=terms.source, source_label=terms.label, today=today,
            now=terms.now, licenses=terms.licenses, termination_limit=terms.termination_limit,
            columns=frozenset(report.columns or report.header), mentioned=_mentioned(validation),
        )
        applier = run_departments if report.kind is Kind.DEPARTMENTS else run
        outcome = applier(directory, validation.applicable(), policy)
    more = list(outcome.findings)
    if terms.upload_name is not None and context.profile is Profile.CORE:
        more += name_notices(terms.upload_name)
    findings = list(report.findings)
    if terms.source is Source.ADMIN:  # the manual upload department files are said to need
        findings = [f for f in findings if f.code != "DEPARTMENT_FILE_MANUAL"]
    return _merge(report, findings, more, outcome, validation)


def rejected(name: str, profile: Profile, problem: Finding) -> Judgement:
    """A file refused before it could be read (PGP): nothing applies."""
    report = Report(file=name, profile=profile, sha256="", kind=Kind.USERS, total=0, valid=0, skipped=0,
                    findings=(problem,))
    return Judgement(report=report, outcome=Outcome())


def _merge(
    report: Report, findings: list[Finding], more: list[Finding], outcome: Outcome, validation: Validation
) -> Judgement:
    merged = findings + more
    merged.sort(key=lambda f: (f.row is not None, f.row or 0))  # stable: the validator's first
    # Rows the directory refused (licences, a taken address) are skipped rows
    # of the file too.
    refused = {f.row for f in more if f.row is not None and f.severity is Severity.ERROR
               and f.scope is Scope.ROW}
    moved = min(len(refused), report.valid)
    if outcome.refused:  # the whole file (the engage safety net): nothing applies
        moved = report.valid
    judged = dataclasses.replace(
        report, findings=tuple(merged), valid=report.valid - moved, skipped=report.skipped + moved
    )
    # Rows only the directory refused keep their original cells in the error
    # file too (docs/production.md §5).
    originals: Mapping[int, Sequence[str]] = validation.originals
    including = getattr(originals, "including", None)
    rows = {f.row for f in more if f.row is not None}
    if rows - set(originals) and including is not None:
        originals = including(rows)
    return Judgement(report=judged, outcome=outcome, originals=originals, validator_skipped=report.skipped,
                     validation=validation)


def _mentioned(validation: Validation) -> frozenset[str]:
    """Emails on rows that were not applied: engage must not terminate them."""
    header = [trim(h) for h in validation.report.header]  # " email" is email (docs/production.md §6)
    if "email" not in header:
        return frozenset()
    index = header.index("email")
    return frozenset(
        email_key(cells[index]) for cells in validation.originals.values() if len(cells) > index
    )


def name_notices(name: str) -> list[Finding]:
    """A core upload's name is unique, has its date in it, and ends in .csv
    or .json (docs/production.md §1). Production's reaction to other names
    is not documented: the file is processed, and the report says what to
    rename."""
    out = []
    base = name[: -len(".pgp")] if name.lower().endswith((".pgp", ".gpg")) else name
    if not base.lower().endswith(FEED_SUFFIXES):
        out.append(file_finding("FILE_NAME_EXTENSION", (
            f"{name} does not end in .csv or .json, the names production documents; "
            "name the export users_YYYYMMDD.csv (or .json)."), value=name))
    if not DATE_IN_NAME.search(name):
        out.append(file_finding("FILE_NAME_UNDATED", (
            f"{name} has no date in it; production asks for a unique, dated name such as "
            "users_YYYYMMDD.csv, so each day's file is told apart."), value=name))
    return out


def swept(state: State, today: str) -> State:
    """The directory once the clock's due deactivations are applied, as the
    worker applies them before each file."""
    due = due_deactivations(state, today)
    return due.state_after(state) if due.users else state


def state_of(snapshot: DirectorySnapshot | None) -> State:
    """A directory given as JSON (`validate --context`) as the apply layer's `State`."""
    if snapshot is None:
        return State()
    users = {}
    for uid, u in enumerate(snapshot.users, start=1):
        fields = {"email": u.email}
        for name in ("employee_id", "manager_email", "department_name"):
            value = getattr(u, name)
            if value:
                fields[name] = value
        users[uid] = User(uid=uid, fields=fields, active=u.active)
    departments = {d.strip().lower(): Department(name=d.strip()) for d in snapshot.departments if d.strip()}
    return State(users=users, departments=departments)


def validate(
    data: bytes, context: Context = Context(), *, name: str = "<stdin>",  # noqa: B008 (frozen)
    progress: Progress | None = None,
) -> Judgement:
    """What production would do with `data`, against the directory `context`
    gives (none: an empty directory, as a new tenant has). Changes nothing."""
    limit = context.engage_termination_limit
    today = (context.today or dt.date.today()).isoformat()
    state = swept(state_of(context.directory), today)
    # The context counts the licences still free; the tenant counts them all.
    free = context.licenses_available
    terms = Terms(licenses=None if free is None else free + state.active_count(),
                  termination_limit=0.20 if limit is None else limit)
    with workspace.private() as conn, workspace.working(conn):
        workspace.from_state(conn, state)
        judgement = judge(data, name=name, context=context, directory=conn, terms=terms, progress=progress)
        return judgement.detached()
