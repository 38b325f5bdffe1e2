"""The published criteria and the pure judge: observations in, results out.

The runner (`certify/runner.py`) runs the vendor's job against a fresh sandbox
and records what it saw; this module only decides. Criteria ids are stable:
customers and vendors quote them. The engage profile keeps the ids and words
C03-C07 for its own drop folder, names and PGP (production.md §1).

Runs: `first` (fresh sandbox, known_hosts pre-seeded), `rerun` (same data
again: production.md §5 idempotency), then, unless `--no-faults`, `dropped-connection`
(the connection drops part-way through the first upload) and `refused-login`
(the first login is refused although the password is right), and last
`rotated` (the host key changed on purpose: production.md §2, the job must refuse to
send anything). Each fault fires once, so a job that retries succeeds.

A criterion about the file fails when no file was uploaded, and its evidence
says so: "format findings: none" would read as a pass. In the same way a
fault criterion fails when its fault never fired ("not shown").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import replace

from bwsandbox.certify import robustness
from bwsandbox.certify.model import Criterion, Outcome, Result
from bwsandbox.certify.observations import Judge, RunObservation, Upload, names, some, why_nothing
from bwsandbox.ingest.files import FileState
from bwsandbox.spec.fields import DATE_IN_NAME, FEED_SUFFIXES, Profile

FIRST, RERUN, ROTATED = "first", "rerun", "rotated"
DROPPED, REFUSED = "dropped-connection", "refused-login"
# Small enough that the drop lands inside any real user file (the header
# alone is longer), so the upload is cut, never merely slowed.
DROP_AFTER_BYTES = 64

_FILE_RUNS = (FIRST, RERUN)
CRITERIA: tuple[Criterion, ...] = (
    Criterion(id="C01", title="Connects and authenticates", runs=(FIRST,),
              description="The job logs in with the tenant's password (production.md §1)."),
    Criterion(id="C02", title="Verifies the host key", runs=(FIRST, ROTATED),
              description="Pinned or accepted on first use, and refuses to upload when the key "
                          "changes (production.md §2)."),
    Criterion(id="C03", title="Uploads to /incoming", runs=(FIRST,),
              description="At least one file is picked up from the drop folder (production.md §1)."),
    Criterion(id="C04", title="Dated file name with .csv or .json", runs=_FILE_RUNS,
              description="Every uploaded name carries a date and ends in .csv or .json (.pgp may "
                          "follow), as production asks (production.md §1, §6). A name sent again on the day "
                          "in it is what a daily job does (see C12); a name sent again with another "
                          "day in it is a fixed name and fails."),
    Criterion(id="C05", title="Uploads completely", runs=_FILE_RUNS,
              description="No cut-off upload and no temporary or partial file left in /incoming "
                          "(production.md §2)."),
    Criterion(id="C06", title="UTF-8, comma-delimited, template headers only", runs=_FILE_RUNS,
              description="No encoding, delimiter or header findings (production.md §3, validation.md)."),
    Criterion(id="C07", title="Required fields present", runs=_FILE_RUNS,
              description="email, first_name and last_name columns and values (production.md §3)."),
    Criterion(id="C08", title="Every roster user included", runs=(FIRST,),
              description="Each user of the expected roster (--roster) is in the file."),
    Criterion(id="C09", title="No validation errors", runs=_FILE_RUNS,
              description="Every uploaded file is accepted without an error finding (production.md §4)."),
    Criterion(id="C10", title="Re-running changes nothing", runs=_FILE_RUNS,
              description="Running the job again with the same data leaves the directory as it "
                          "was (production.md §5 idempotency)."),
    Criterion(id="C11", title="Job reports success", required=False, runs=(FIRST, RERUN, ROTATED),
              description="The job exits 0 when it uploaded, and non-zero when it refused a "
                          "changed host key."),
    Criterion(id="C12", title="A second run on the same day sends a new name", required=False,
              runs=_FILE_RUNS,
              description="Production recommends naming each file with the current date (production.md §6), "
                          "so a daily job run twice in one day sends the same name twice; the second "
                          "file is reported as a repeat (production.md §5). Advice only: add the time to the "
                          "name if the job may run more than once a day."),
    Criterion(id="C13", title="Dropped connection during upload: job reports the failure",
              runs=(DROPPED,),
              description=f"The connection drops after {DROP_AFTER_BYTES} bytes of the job's first "
                          "upload, once. The job exits non-zero, unless it retried and a complete "
                          "file arrived: exit 0 after a failed upload hides it from the scheduler "
                          "and the customer's directory silently goes stale."),
    Criterion(id="C14", title="Dropped connection during upload: nothing partial processed",
              runs=(DROPPED,),
              description="The cut-off upload is never processed (production.md §2), and every file "
                          "processed in that run holds every user the first run sent, without "
                          "findings the first run's file did not have."),
    Criterion(id="C15", title="Dropped connection during upload: job retries and the file arrives "
                              "complete", required=False, runs=(DROPPED,),
              description="After the drop the job connects again and a complete file is "
                          "processed in the same run."),
    Criterion(id="C16", title="Refused login: job reports the failure", runs=(REFUSED,),
              description="The job's first login is refused although its password is right (as "
                          "after a password rotation), once. The job exits non-zero, unless it "
                          "retried and a complete file arrived."),
    Criterion(id="C17", title="Refused login: nothing partial processed", runs=(REFUSED,),
              description="Every file processed in that run holds every user the first run sent, "
                          "without findings the first run's file did not have."),
    Criterion(id="C18", title="Refused login: job retries and the file arrives complete",
              required=False, runs=(REFUSED,),
              description="After the refused login the job logs in again and a complete file is "
                          "processed in the same run."),
)

# production.md §1 engage [doc]: the home folder, `employees.YYYYMMDDHHMM.csv.pgp`
# encrypted to the vendor's key, then the empty `.done.pgp` marker.
_ENGAGE_WORDING: dict[str, tuple[str, str]] = {
    "C03": ("Uploads to the home folder",
            "At least one data file is picked up from the drop folder `/` (production.md §1 engage)."),
    "C04": ("Engage file names",
            "Data files are named employees.YYYYMMDDHHMM.csv.pgp, markers "
            "employees.YYYYMMDDHHMM.csv.done.pgp, and no name is reused across runs (production.md §1)."),
    "C05": ("Uploads completely",
            "No cut-off upload, no temporary or partial file left in the drop folder, and each "
            "data file is followed by its .done.pgp marker, without which it is never processed "
            "(production.md §1, §2)."),
    "C06": ("PGP-encrypted, UTF-8, comma-delimited, known headers",
            "Encrypted to the tenant's public key; no encryption, encoding, delimiter or header "
            "findings (production.md §1, §3, validation.md)."),
    "C07": ("Required fields present",
            "The email column and values (production.md §3 engage)."),
}
ENGAGE_CRITERIA: tuple[Criterion, ...] = tuple(
    replace(c, title=_ENGAGE_WORDING[c.id][0], description=_ENGAGE_WORDING[c.id][1])
    if c.id in _ENGAGE_WORDING else c
    for c in CRITERIA
)


def criteria_for(profile: Profile) -> tuple[Criterion, ...]:
    return ENGAGE_CRITERIA if profile is Profile.ENGAGE else CRITERIA


TEMP_NAME = re.compile(r"(^\.|\.filepart$|\.part$|\.tmp$|\.temp$|^\.in\.|~$)", re.IGNORECASE)
# Stricter than the queue, which also recognises `.gpg` and plain `.csv` so
# that it can report them: the documented names only (production.md §1).
ENGAGE_DATA_NAME = re.compile(r"^employees\.(\d{12})\.csv\.pgp$")
ENGAGE_MARKER_NAME = re.compile(r"^employees\.(\d{12})\.csv\.done\.pgp$")

FORMAT_CODES = frozenset({
    "ENCODING_CP1252", "ENCODING_UTF16", "ENCODING_INVALID", "BOM_PRESENT", "NOT_TEXT",
    "DELIMITER_SEMICOLON", "DELIMITER_OTHER", "HEADER_UNKNOWN", "HEADER_CASE", "HEADER_DUPLICATE",
    "HEADER_EMPTY", "CUSTOM_KEY_UNDEFINED", "CUSTOM_KEY_INVALID", "JSON_MALFORMED", "JSON_NOT_ARRAY",
    # A file the vendor app cannot decrypt is never read (ingest/process.py).
    "PGP_REQUIRED", "PGP_NOT_ENCRYPTED", "PGP_WRONG_KEY", "PGP_INVALID", "PGP_NO_KEY",
})
REQUIRED_CODES = frozenset({"HEADER_REQUIRED_MISSING", "EMAIL_REQUIRED", "REQUIRED_VALUE_MISSING"})


def _engage_name(name: str) -> bool:
    match = ENGAGE_DATA_NAME.match(name) or ENGAGE_MARKER_NAME.match(name)
    if match is None:
        return False
    try:
        dt.datetime.strptime(match.group(1), "%Y%m%d%H%M")
    except ValueError:
        return False
    return True


def name_dates(name: str) -> frozenset[dt.date]:
    """The calendar dates DATE_IN_NAME finds in a name (yyyymmdd, yyyy-mm-dd,
    dd-mm-yyyy, any of - _ . between)."""
    found = set()
    for match in DATE_IN_NAME.finditer(name):
        digits = re.sub(r"\D", "", match.group())
        for fmt in ("%Y%m%d", "%d%m%Y"):
            try:
                found.add(dt.datetime.strptime(digits, fmt).date())
                break
            except ValueError:
                continue
    return frozenset(found)


def _feed_suffix(name: str) -> bool:
    """production.md §1 "include .csv or .json in the file name" [doc], read as the
    worker's notice does: the name ends in it, before any .pgp/.gpg."""
    base = name[: -len(".pgp")] if name.lower().endswith((".pgp", ".gpg")) else name
    return base.lower().endswith(FEED_SUFFIXES)


def judge(
    first: RunObservation,
    rerun: RunObservation,
    rotated: RunObservation,
    roster: frozenset[str] | None,
    *,
    profile: Profile = Profile.CORE,
    dropped: RunObservation | None = None,
    refused: RunObservation | None = None,
) -> tuple[Result, ...]:
    """`dropped`/`refused`: the fault runs, None when they were not run
    (`--no-faults`): their criteria are then not applicable."""
    by_id = {c.id: c for c in criteria_for(profile)}

    def r(cid: str, ok: bool | None, *evidence: str) -> Result:
        outcome = Outcome.NOT_APPLICABLE if ok is None else (Outcome.PASS if ok else Outcome.FAIL)
        return Result(criterion=by_id[cid], outcome=outcome, evidence=tuple(e for e in evidence if e))

    engage = profile is Profile.ENGAGE
    folder = "/" if engage else "/incoming"
    sent = first.uploads + rerun.uploads
    complete = [u for u in sent if u.state != FileState.INCOMPLETE]
    data = [u for u in complete if not u.marker]  # what the vendor app reads
    first_data = [u for u in first.uploads if u.state != FileState.INCOMPLETE and not u.marker]
    nothing = why_nothing(sent)
    results = [
        r("C01", first.auth_ok > 0,
          f"first run: {first.auth_ok} successful login(s), {first.auth_failed} failed"),
    ]
    # C02: the rotated run must not log in and upload. OpenSSH with
    # StrictHostKeyChecking=no still connects but drops password auth (production.md §2),
    # so "no successful login and no upload" is the observable refusal.
    refused_key = rotated.auth_ok == 0 and not rotated.uploads
    results.append(r(
        "C02", refused_key and first.auth_ok > 0,
        "with a rotated host key the job "
        + ("refused to log in" if refused_key else
           f"logged in {rotated.auth_ok} time(s) and uploaded {names(rotated.uploads)}"),
        "" if first.auth_ok else "the first run never logged in, so key checking was not shown",
    ))
    results.append(r(
        "C03", bool(first_data),
        f"picked up from {folder}: {names(first_data)}" if first_data
        else f"first run: {why_nothing(first.uploads)}",
    ))
    results.append(_file_names(r, first, rerun, data, nothing, engage=engage))
    results.append(_completeness(r, first, rerun, data, nothing, folder=folder))
    fmt = sorted({c for u in data for c in u.codes if c in FORMAT_CODES})
    results.append(r("C06", bool(data) and not fmt,
                     f"format findings: {', '.join(fmt) or 'none'}" if data else nothing))
    req = sorted({c for u in data for c in u.codes if c in REQUIRED_CODES})
    results.append(r("C07", bool(data) and not req,
                     f"required-field findings: {', '.join(req) or 'none'}" if data else nothing))
    if roster is None:
        results.append(r("C08", None, "no --roster given"))
    elif not first_data:
        results.append(r("C08", False, f"first run: {why_nothing(first.uploads)}",
                         f"0 of {len(roster)} roster users in a file"))
    else:
        emails = frozenset().union(*(u.emails for u in first_data))
        missing = sorted(roster - emails)
        results.append(r(
            "C08", not missing,
            f"{len(roster) - len(missing)} of {len(roster)} roster users in the file",
            f"missing: {some(missing)}" if missing else "",
        ))
    bad = [f"{u.name}: {u.verdict or 'not processed (' + u.state + ')'}"
           for u in data if u.verdict != "accepted"]
    if not data:
        results.append(r("C09", False, nothing))
    else:
        results.append(r("C09", not bad, f"not accepted: {', '.join(bad)}" if bad else "every file accepted"))
    rerun_data = [u for u in rerun.uploads if not u.marker]
    changed = sorted(
        k for k in set(first.directory) | set(rerun.directory)
        if first.directory.get(k) != rerun.directory.get(k)
    )
    results.append(r(
        "C10", bool(rerun_data) and not changed,
        f"second run uploaded: {names(rerun_data)}" if rerun_data
        else f"second run: {why_nothing(rerun.uploads)}",
        f"users changed by the re-run: {some(changed)}" if changed
        else "directory identical after the re-run" if rerun_data else "",
    ))
    codes = f"exit codes: first {first.exit_code}, re-run {rerun.exit_code}, rotated {rotated.exit_code}"
    results.append(r(
        "C11", first.exit_code == 0 and rerun.exit_code == 0 and rotated.exit_code not in (0, None),
        codes,
    ))
    results.append(_same_day_names(r, first, rerun, data, nothing, engage=engage))
    reference = robustness.Reference.of(first_data)
    results.extend(robustness.dropped(r, dropped, reference))
    results.extend(robustness.refused(r, refused, reference))
    return tuple(results)


def _reuse(first: RunObservation, rerun: RunObservation) -> tuple[list[str], dict[str, dt.date]]:
    """Names sent more than once by the two runs (complete uploads), and of
    those, the ones sent on the day they carry: {name: that day}."""
    runs = [(obs, [u.name for u in obs.uploads if u.state != FileState.INCOMPLETE]) for obs in (first, rerun)]
    every = [n for _, sent in runs for n in sent]
    repeated = sorted({n for n in every if every.count(n) > 1})
    daily: dict[str, dt.date] = {}
    for name in repeated:
        days = [obs.days for obs, sent in runs if name in sent]
        common = frozenset.intersection(*days) & name_dates(name)
        if common:
            daily[name] = min(common)
    return repeated, daily


def _file_names(
    r: Judge, first: RunObservation, rerun: RunObservation, data: Sequence[Upload], nothing: str,
    *, engage: bool,
) -> Result:
    """C04. Core: a date anywhere in the name and .csv/.json (production.md §1); a
    name re-sent on the day it carries is a daily job's (C12 advises), one
    re-sent with another day is fixed. Engage: the documented names, whose
    stamp is down to the minute (production.md §1); the re-run starts in the next
    minute, so any reuse is a fixed name."""
    if not data:
        return r("C04", False, nothing)
    sent = [u.name for u in first.uploads + rerun.uploads if u.state != FileState.INCOMPLETE]
    repeated, daily = _reuse(first, rerun)
    if engage:
        bad = [n for n in sent if not _engage_name(n)]
        return r(
            "C04", not bad and not repeated,
            f"names: {', '.join(sent)}",
            f"not employees.YYYYMMDDHHMM.csv.pgp or .csv.done.pgp: {', '.join(bad)}" if bad else "",
            f"reused across runs: {', '.join(repeated)}" if repeated else "",
        )
    undated = [n for n in sent if not DATE_IN_NAME.search(n)]
    no_suffix = [n for n in sent if not _feed_suffix(n)]
    fixed = [n for n in repeated if n not in daily]
    return r(
        "C04", not undated and not no_suffix and not fixed,
        f"names: {', '.join(sent)}",
        f"no date in: {', '.join(undated)}" if undated else "",
        f"no .csv or .json at the end of: {', '.join(no_suffix)}" if no_suffix else "",
        f"reused across runs, not on the day in the name (a fixed name): {', '.join(fixed)}"
        if fixed else "",
        f"re-sent on the day in the name, as a daily job does (advice in C12): {', '.join(daily)}"
        if daily else "",
    )


def _same_day_names(
    r: Judge, first: RunObservation, rerun: RunObservation, data: Sequence[Upload], nothing: str,
    *, engage: bool,
) -> Result:
    """C12 (advisory): a name sent twice on one day is no defect of a dated
    name (production.md §1), but production reports the second file as a
    repeat (production.md §5)."""
    if engage:
        return r("C12", None, "engage names carry the minute (production.md §1): C04 judges their reuse")
    if not data:
        return r("C12", False, nothing)
    repeated, daily = _reuse(first, rerun)
    if not repeated:
        return r("C12", True, "each run sent names of its own")
    fixed = [n for n in repeated if n not in daily]
    return r(
        "C12", False,
        *(f"{name} was sent by both runs on {day.isoformat()}, the day in its name"
          for name, day in daily.items()),
        "a dated name is what production recommends (production.md §6), so C04 passes; production reports "
        "the second file of the same name as a repeat (production.md §5). Add the time to the name "
        "(users_YYYYMMDD_HHMMSS.csv) if the job may run more than once a day." if daily else "",
        f"reused with a date that is not the day it was sent (fails C04): {', '.join(fixed)}"
        if fixed else "",
    )


def _completeness(
    r: Judge, first: RunObservation, rerun: RunObservation, data: Sequence[Upload], nothing: str,
    *, folder: str,
) -> Result:
    """C05: nothing cut off or left behind; engage: every data file released
    by its marker (a `waiting` file is never processed, production.md §1)."""
    cut = [u.name for u in first.uploads + rerun.uploads if u.state == FileState.INCOMPLETE]
    left = sorted(set(first.leftovers) | set(rerun.leftovers))
    left_line = f"left in {folder}: {', '.join(left) or 'nothing'}"
    if not data:
        return r("C05", False, nothing, left_line if left else "")
    temp = [u.name for u in first.uploads + rerun.uploads if u.state != FileState.INCOMPLETE
            and TEMP_NAME.search(u.name)]
    waiting = [u.name for u in data if u.state == FileState.WAITING]
    return r(
        "C05", not cut and not left and not temp and not waiting,
        f"cut-off uploads: {', '.join(cut) or 'none'}",
        left_line,
        f"temporary names processed: {', '.join(temp)}" if temp else "",
        f"never processed, no .done marker arrived: {', '.join(waiting)}" if waiting else "",
    )
