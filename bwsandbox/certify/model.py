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

    @property
    def failed(self) -> bool:
        return self.exit_code != 0

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
class ScriptFile:
    """The job's own script, as the command names it, and what it held."""

    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadedFile:
    """One upload the sandbox recorded during a run."""

    run: str
    name: str
    bytes: int
    sha256: str
    state: str  # files.state: done, incomplete (cut off, never processed), waiting, ...
    verdict: str | None

    def to_dict(self) -> dict[str, object]:
        return {"run": self.run, "name": self.name, "bytes": self.bytes, "sha256": self.sha256,
                "state": self.state, "verdict": self.verdict}


@dataclass(frozen=True, slots=True, kw_only=True)
class Certification:
    command: str
    version: str
    started_at: str
    profile: str
    results: tuple[Result, ...]
    runs: tuple[JobRun, ...] = field(default=())
    script: ScriptFile | None = None  # None: the command names no file we could hash
    files: tuple[UploadedFile, ...] = ()

    @property
    def passed(self) -> bool:
        return not any(r.blocking for r in self.results)

    def run(self, label: str) -> JobRun | None:
        return next((run for run in self.runs if run.label == label), None)

    def timings(self, result: Result) -> dict[str, float]:
        """Seconds of each run `result` is judged from (runs that took place)."""
        return {label: run.seconds for label in result.criterion.runs
                if (run := self.run(label)) is not None}

    def failed_runs(self) -> tuple[JobRun, ...]:
        """Runs whose output a reader needs: the job exited non-zero or timed
        out, or a required criterion judged from the run failed."""
        judged = {label for r in self.results if r.blocking for label in r.criterion.runs}
        return tuple(run for run in self.runs if run.failed or run.label in judged)

    def to_dict(self) -> dict[str, object]:
        return {
            "bwsandbox_version": self.version,
            "date": self.started_at,
            "command": self.command,
            "script": None if self.script is None else {
                "path": self.script.path, "sha256": self.script.sha256, "bytes": self.script.bytes,
            },
            "profile": self.profile,
            "passed": self.passed,
            "criteria": [
                {**r.to_dict(), "timings": {k: round(v, 3) for k, v in self.timings(r).items()}}
                for r in self.results
            ],
            "runs": [run.to_dict() for run in self.runs],
            "files": [f.to_dict() for f in self.files],
        }
