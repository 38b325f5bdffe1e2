"""Certification results as data; the writers and the terminal render them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "n/a"  # e.g. roster completeness without --roster


@dataclass(frozen=True, slots=True, kw_only=True)
class Criterion:
    """One published criterion. `id` is stable: customers quote it."""

    id: str
    title: str
    description: str
    required: bool = True
    runs: tuple[str, ...] = ()  # labels of the runs it is judged from (their timings go with it)


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    criterion: Criterion
    outcome: Outcome
    evidence: tuple[str, ...]

    @property
    def blocking(self) -> bool:
        return self.criterion.required and self.outcome is Outcome.FAIL

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.criterion.id,
            "title": self.criterion.title,
            "required": self.criterion.required,
            "outcome": str(self.outcome),
            "evidence": list(self.evidence),
            "runs": list(self.criterion.runs),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRun:
    """One execution of the vendor's command."""

    label: str
    exit_code: int | None  # None: timed out and killed
    seconds: float
    stdout_tail: str
    stderr_tail: str
    started_at: str = ""
    purpose: str = ""  # what the run simulates and what the job must do

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "purpose": self.purpose,
            "started_at": self.started_at,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Certification:
    command: str
    version: str
    started_at: str
    profile: str
    results: tuple[Result, ...]
    runs: tuple[JobRun, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not any(r.blocking for r in self.results)

    def to_dict(self) -> dict[str, object]:
        return {
            "bwsandbox_version": self.version,
            "date": self.started_at,
            "command": self.command,
            "profile": self.profile,
            "passed": self.passed,
            "criteria": [r.to_dict() for r in self.results],
            "runs": [run.to_dict() for run in self.runs],
        }
