"""C13-C18: the vendor's job under the sandbox's faults (bwsandbox/faults.py).

Run `dropped-connection`: the connection drops after DROP_AFTER_BYTES bytes of
the job's first upload; run `refused-login`: the job's first login is refused
although the password is right. Each fault fires once, so a job that retries
gets through. Required of every job: its exit status says it failed (exit 0
only once a complete file arrived after a retry: a job that hides a failed
upload behind exit 0 leaves its scheduler reporting success while the
customer's directory goes stale), and nothing partial was processed (docs/production.md §2:
"a cut-off upload must never be processed"). Advised: it retries, and the
file then arrives complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bwsandbox.certify.model import Result
from bwsandbox.certify.observations import UNREAD, Judge, RunObservation, Upload, names, some
from bwsandbox.ingest.files import FileState

NO_FAULTS = "not run (--no-faults)"


@dataclass(frozen=True, slots=True)
class Reference:
    """What the first run sent: a file processed under a fault is complete
    when it holds every one of these users and no finding these files lacked
    (a truncated CSV loses rows or fields, a truncated JSON or PGP file does
    not parse)."""

    emails: frozenset[str]
    codes: frozenset[str]

    @classmethod
    def of(cls, uploads: Sequence[Upload]) -> Reference:
        return cls(frozenset().union(*(u.emails for u in uploads)),
                   frozenset(c for u in uploads for c in u.codes))

    def partial(self, upload: Upload) -> str:
        """Why `upload` is not the complete file, or ""."""
        lost = sorted(self.emails - upload.emails)
        new = sorted(set(upload.codes) - self.codes)
        return "; ".join(part for part in (
            f"{len(lost)} of {len(self.emails)} users of the first run missing: {some(lost, 5)}"
            if lost else "",
            f"findings the first run's file did not have: {', '.join(new)}" if new else "",
        ) if part)


def _processed(obs: RunObservation) -> list[Upload]:
    return [u for u in obs.uploads if not u.marker and u.state not in UNREAD]


def _exit(obs: RunObservation) -> str:
    return "did not finish before the timeout" if obs.exit_code is None else f"exited {obs.exit_code}"


def _reports_failure(
    r: Judge, cid: str, obs: RunObservation, fault: str, arrived: Sequence[Upload]
) -> Result:
    """Exit non-zero, or exit 0 only once a complete file arrived after a retry."""
    if obs.exit_code is None:
        return r(cid, False, f"after {fault} the job {_exit(obs)}")
    if obs.exit_code != 0:
        return r(cid, True, f"after {fault} the job {_exit(obs)}")
    if arrived:
        return r(cid, True, f"after {fault} the job retried and exited 0 once a complete file "
                            f"arrived: {names(arrived)}")
    return r(cid, False, f"after {fault} the job exited 0, and no complete file arrived: its "
                         "scheduler would report success while nothing was delivered")


def _nothing_partial(
    r: Judge, cid: str, obs: RunObservation, reference: Reference, cut: Sequence[Upload]
) -> Result:
    processed = _processed(obs)
    partial = [f"{u.name} ({why})" for u in processed if (why := reference.partial(u))]
    complete = [u.name for u in processed if not reference.partial(u)]
    return r(
        cid, not partial,
        f"cut off and never processed: {', '.join(f'{u.name} ({u.bytes} bytes received)' for u in cut)}"
        if cut else "",
        f"processed although partial: {'; '.join(partial)}" if partial else "",
        f"processed, complete: {', '.join(complete)}" if complete
        else "" if partial else "nothing else was processed" if cut else "nothing was processed",
        "the first run sent no file to compare with" if processed and not reference.emails else "",
    )


def _retried(r: Judge, cid: str, fault: str, arrived: Sequence[Upload]) -> Result:
    if arrived:
        return r(cid, True, f"after {fault} the job retried: {names(arrived)} arrived complete")
    return r(cid, False, f"after {fault} no complete file arrived: the job did not retry")


def _not_shown(r: Judge, ids: Sequence[str], why: str) -> list[Result]:
    return [r(cid, False, f"not shown: {why}") for cid in ids]


def dropped(r: Judge, obs: RunObservation | None, reference: Reference) -> list[Result]:
    """C13-C15: the connection dropped part-way through the first upload."""
    ids = ("C13", "C14", "C15")
    if obs is None:
        return [r(cid, None, NO_FAULTS) for cid in ids]
    cut = [u for u in obs.uploads if u.state == FileState.INCOMPLETE]
    if not cut:
        if not obs.uploads:
            why = "the job uploaded nothing, so there was no upload to cut off"
        else:
            fired = "the fault fired, but " if "disconnect" in obs.faults_fired else ""
            why = f"no upload was cut off ({fired}uploaded: {names(obs.uploads)})"
        return _not_shown(r, ids, why)
    fault = f"the connection dropped during {names(cut)}"
    arrived = [u for u in _processed(obs) if not reference.partial(u)]
    return [
        _reports_failure(r, "C13", obs, fault, arrived),
        _nothing_partial(r, "C14", obs, reference, cut),
        _retried(r, "C15", fault, arrived),
    ]


def refused(r: Judge, obs: RunObservation | None, reference: Reference) -> list[Result]:
    """C16-C18: the first login with the right password was refused."""
    ids = ("C16", "C17", "C18")
    if obs is None:
        return [r(cid, None, NO_FAULTS) for cid in ids]
    if "refuse-login" not in obs.faults_fired:
        why = ("the job never logged in with the tenant's password "
               f"({obs.auth_failed} failed login(s))" if obs.auth_failed
               else "the job never tried to log in")
        return _not_shown(r, ids, why)
    fault = "the refused login"
    arrived = [u for u in _processed(obs) if not reference.partial(u)]
    # A client that falls back to keyboard-interactive with the same password
    # logs in again on the same connection: a retry as well, and the counts say so.
    logins = f"logins in the run: {obs.auth_failed} refused, {obs.auth_ok} successful"
    return [
        _with(_reports_failure(r, "C16", obs, fault, arrived), logins),
        _nothing_partial(r, "C17", obs, reference, ()),
        _with(_retried(r, "C18", fault, arrived), logins),
    ]


def _with(result: Result, evidence: str) -> Result:
    return replace(result, evidence=(*result.evidence, evidence))
