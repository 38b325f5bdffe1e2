"""What the runner saw of one run of the vendor's job: the judge's input
(`criteria.py` for C01-C12, `robustness.py` for the fault runs C13-C18)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bwsandbox.certify.model import Result
from bwsandbox.ingest.files import FileState

NOTHING = "no file was uploaded"
# files.state of an upload the vendor app never read: cut off, or an engage
# data file whose `.done` marker never came.
UNREAD = frozenset({FileState.INCOMPLETE, FileState.WAITING})


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    name: str
    bytes: int
    state: str  # files.state; `waiting`: an engage file whose marker never came
    verdict: str | None
    codes: tuple[str, ...] = ()  # finding codes of its report
    emails: frozenset[str] = frozenset()  # lower-cased emails in the file
    marker: bool = False  # an engage `.done` marker: recorded, never read (docs/production.md §1)
    sha256: str = ""  # of the bytes received


@dataclass(frozen=True, slots=True, kw_only=True)
class RunObservation:
    label: str
    exit_code: int | None
    auth_ok: int  # successful logins of the tenant during the run
    auth_failed: int
    uploads: tuple[Upload, ...] = ()
    leftovers: tuple[str, ...] = ()  # names still in the drop folder after the run
    directory: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # The calendar days the run spanned, local and UTC: a job may date its
    # file either way, and both are "the current date" (docs/production.md §1).
    days: frozenset[dt.date] = frozenset()
    faults_fired: tuple[str, ...] = ()  # kinds of the sandbox's faults that fired during the run


class Judge(Protocol):
    """Makes one criterion's result: ok None is "not applicable"."""

    def __call__(self, cid: str, ok: bool | None, *evidence: str) -> Result: ...


def names(uploads: Sequence[Upload]) -> str:
    return ", ".join(u.name for u in uploads) or "none"


def why_nothing(uploads: Sequence[Upload]) -> str:
    """Why there is no file to judge: said instead of "findings: none"."""
    cut = [u.name for u in uploads if u.state == FileState.INCOMPLETE]
    if not uploads:
        return NOTHING
    if len(cut) == len(uploads):
        return f"no file was uploaded completely (cut off: {', '.join(cut)})"
    return f"no data file was uploaded, only .done markers: {names(uploads)}"


def some(items: Sequence[str], shown: int = 20) -> str:
    return ", ".join(items[:shown]) + (" …" if len(items) > shown else "")
