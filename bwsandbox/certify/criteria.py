"""The published criteria and the pure judge: observations in, results out.

The runner (`certify/runner.py`) runs the vendor's job three times against a
fresh sandbox and records what it saw; this module only decides. Criteria ids
are stable: customers and vendors quote them.

Runs: `first` (fresh sandbox, known_hosts pre-seeded), `rerun` (same data
again: SPEC §5 idempotency), `rotated` (the host key changed on purpose:
SPEC §2, the job must refuse to send anything).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bwsandbox.certify.model import Criterion, Outcome, Result

CRITERIA: tuple[Criterion, ...] = (
    Criterion(id="C01", title="Connects and authenticates",
              description="The job logs in with the tenant's password (SPEC §1)."),
    Criterion(id="C02", title="Verifies the host key",
              description="Pinned or accepted on first use, and refuses to upload when the key "
                          "changes (SPEC §2)."),
    Criterion(id="C03", title="Uploads to /incoming",
              description="At least one file is picked up from the drop folder (SPEC §1)."),
    Criterion(id="C04", title="Unique, dated file name",
              description="Every uploaded name carries the date and differs from earlier uploads "
                          "(SPEC §1)."),
    Criterion(id="C05", title="Uploads completely",
              description="No cut-off upload and no temporary or partial file left in /incoming "
                          "(SPEC §2)."),
    Criterion(id="C06", title="UTF-8, comma-delimited, template headers only",
              description="No encoding, delimiter or header findings (SPEC §3, §6)."),
    Criterion(id="C07", title="Required fields present",
              description="email, first_name and last_name columns and values (SPEC §3)."),
    Criterion(id="C08", title="Every roster user included",
              description="Each user of the expected roster (--roster) is in the file."),
    Criterion(id="C09", title="No validation errors",
              description="Every uploaded file is accepted without an error finding (SPEC §4)."),
    Criterion(id="C10", title="Re-running changes nothing",
              description="Running the job again with the same data leaves the directory as it "
                          "was (SPEC §5 idempotency)."),
    Criterion(id="C11", title="Job reports success", required=False,
              description="The job exits 0 when it uploaded, and non-zero when it refused a "
                          "changed host key."),
)
BY_ID = {c.id: c for c in CRITERIA}

DATE_IN_NAME = re.compile(
    r"(?<!\d)(?:(?:19|20)\d{2}[-_.]?(?:0[1-9]|1[0-2])[-_.]?(?:0[1-9]|[12]\d|3[01])"
    r"|(?:0[1-9]|[12]\d|3[01])[-_.]?(?:0[1-9]|1[0-2])[-_.]?(?:19|20)\d{2})"
)
TEMP_NAME = re.compile(r"(^\.|\.filepart$|\.part$|\.tmp$|\.temp$|^\.in\.|~$)", re.IGNORECASE)

FORMAT_CODES = frozenset({
    "ENCODING_CP1252", "ENCODING_UTF16", "ENCODING_INVALID", "BOM_PRESENT", "NOT_TEXT",
    "DELIMITER_SEMICOLON", "DELIMITER_OTHER", "HEADER_UNKNOWN", "HEADER_CASE", "HEADER_DUPLICATE",
    "HEADER_EMPTY", "CUSTOM_KEY_UNDEFINED", "CUSTOM_KEY_INVALID", "JSON_MALFORMED", "JSON_NOT_ARRAY",
})
REQUIRED_CODES = frozenset({"HEADER_REQUIRED_MISSING", "EMAIL_REQUIRED", "REQUIRED_VALUE_MISSING"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    name: str
    bytes: int
    state: str  # files.state
    verdict: str | None
    codes: tuple[str, ...] = ()  # finding codes of its report
    emails: frozenset[str] = frozenset()  # lower-cased emails in the file


@dataclass(frozen=True, slots=True, kw_only=True)
class RunObservation:
    label: str
    exit_code: int | None
    auth_ok: int  # successful logins of the tenant during the run
    auth_failed: int
    uploads: tuple[Upload, ...] = ()
    leftovers: tuple[str, ...] = ()  # names still in /incoming after the run
    directory: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


def _r(cid: str, ok: bool | None, *evidence: str) -> Result:
    outcome = Outcome.NOT_APPLICABLE if ok is None else (Outcome.PASS if ok else Outcome.FAIL)
    return Result(criterion=BY_ID[cid], outcome=outcome, evidence=tuple(e for e in evidence if e))


def _names(uploads: Sequence[Upload]) -> str:
    return ", ".join(u.name for u in uploads) or "none"


def judge(
    first: RunObservation,
    rerun: RunObservation,
    rotated: RunObservation,
    roster: frozenset[str] | None,
) -> tuple[Result, ...]:
    complete = [u for u in first.uploads + rerun.uploads if u.state != "incomplete"]
    first_files = [u for u in first.uploads if u.state != "incomplete"]
    results = [
        _r("C01", first.auth_ok > 0,
           f"first run: {first.auth_ok} successful login(s), {first.auth_failed} failed"),
    ]
    # C02: the rotated run must not log in and upload. OpenSSH with
    # StrictHostKeyChecking=no still connects but drops password auth (SPEC §2),
    # so "no successful login and no upload" is the observable refusal.
    refused = rotated.auth_ok == 0 and not rotated.uploads
    results.append(_r(
        "C02", refused and first.auth_ok > 0,
        "with a rotated host key the job "
        + ("refused to log in" if refused else
           f"logged in {rotated.auth_ok} time(s) and uploaded {_names(rotated.uploads)}"),
        "" if first.auth_ok else "the first run never logged in, so key checking was not shown",
    ))
    results.append(_r("C03", bool(first_files), f"picked up from /incoming: {_names(first_files)}"))
    undated = [u.name for u in complete if not DATE_IN_NAME.search(u.name)]
    names = [u.name for u in complete]
    repeated = sorted({n for n in names if names.count(n) > 1})
    results.append(_r(
        "C04", bool(complete) and not undated and not repeated,
        f"names: {', '.join(names) or 'none'}",
        f"no date in: {', '.join(undated)}" if undated else "",
        f"reused across runs: {', '.join(repeated)}" if repeated else "",
    ))
    cut = [u.name for u in first.uploads + rerun.uploads if u.state == "incomplete"]
    left = sorted(set(first.leftovers) | set(rerun.leftovers))
    temp = [n for n in names if TEMP_NAME.search(n)]
    results.append(_r(
        "C05", bool(complete) and not cut and not left and not temp,
        f"cut-off uploads: {', '.join(cut) or 'none'}",
        f"left in /incoming: {', '.join(left) or 'nothing'}",
        f"temporary names processed: {', '.join(temp)}" if temp else "",
    ))
    fmt = sorted({c for u in complete for c in u.codes if c in FORMAT_CODES})
    results.append(_r("C06", bool(complete) and not fmt,
                      f"format findings: {', '.join(fmt) or 'none'}"))
    req = sorted({c for u in complete for c in u.codes if c in REQUIRED_CODES})
    results.append(_r("C07", bool(complete) and not req,
                      f"required-field findings: {', '.join(req) or 'none'}"))
    if roster is None:
        results.append(_r("C08", None, "no --roster given"))
    else:
        sent = frozenset().union(*(u.emails for u in first_files)) if first_files else frozenset()
        missing = sorted(roster - sent)
        results.append(_r(
            "C08", bool(first_files) and not missing,
            f"{len(roster) - len(missing)} of {len(roster)} roster users in the file",
            f"missing: {', '.join(missing[:20])}{' …' if len(missing) > 20 else ''}" if missing else "",
        ))
    bad = [f"{u.name}: {u.verdict}" for u in complete if u.verdict != "accepted"]
    results.append(_r("C09", bool(complete) and not bad,
                      f"not accepted: {', '.join(bad)}" if bad else "every file accepted"))
    changed = sorted(
        k for k in set(first.directory) | set(rerun.directory)
        if first.directory.get(k) != rerun.directory.get(k)
    )
    results.append(_r(
        "C10", bool(rerun.uploads) and not changed,
        f"second run uploaded: {_names(rerun.uploads)}",
        f"users changed by the re-run: {', '.join(changed[:20])}" if changed
        else "directory identical after the re-run",
    ))
    codes = f"exit codes: first {first.exit_code}, re-run {rerun.exit_code}, rotated {rotated.exit_code}"
    results.append(_r(
        "C11", first.exit_code == 0 and rerun.exit_code == 0 and rotated.exit_code not in (0, None),
        codes,
    ))
    return tuple(results)
