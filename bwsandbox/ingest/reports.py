"""The per-file report: the validator's report plus what was applied.

Its JSON extends the validator's contract (`file`, `profile`, `sha256`,
`verdict`, `rows`, `findings`) with:

    file_id, received_at, processed_at, source      where the file came from
    repeat             "repeat of file #N (...): same name/content" or null (docs/production.md §5)
    applied            counts: created, updated, deactivated, reactivated,
                       terminated, unchanged, skipped
    overwritten_manual_edits   each manual edit this file replaced (docs/production.md §5)
    changes            the first CHANGES_SHOWN user changes with their
                       [old, new] values (all of them are in the history)
    findings_not_shown {code: count} of the findings left out (`cap`), when any

`findings` holds the validator's findings and the ones only the directory
can see (licence limit, engage safety net, PGP), in the same shape; the
verdict is recomputed over both. Reports are kept in the store (files row)
and next to the stored file; with the `reports_folder` setting on (default)
they are also published to the tenant's SFTP tree as `/reports/<name>.report.json`
and `/reports/<name>.errors.csv`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from bwsandbox.fsutil import atomic_write
from bwsandbox.ingest.records import Action, Outcome
from bwsandbox.validator.model import Report

CHANGES_SHOWN = 1000
# What `publish` adds to a name on disk: ".<name>.report.json.tmp" while it
# writes (fsutil.atomic_write); names are fitted to leave this room.
NAME_ROOM = len(".") + len(".report.json") + len(".tmp")
APPLIED_KEYS = tuple(str(a) for a in Action) + ("skipped",)


def build(
    *, report: Report, outcome: Outcome, validator_skipped: int, extra: Mapping[str, object]
) -> dict[str, object]:
    """The stored report (JSON): a judgement's typed report, what it applied,
    and `extra` (where the file came from). The one place it becomes a dict."""
    out = report.to_dict()
    out["applied"] = applied_counts(outcome, validator_skipped)
    out["overwritten_manual_edits"] = [
        {
            "row": o.row, "email": o.email, "field": o.field, "manual_value": o.manual_value,
            "file_value": o.file_value, "edited_at": o.edited_at, "edited_by": o.edited_by,
        }
        for o in outcome.overwritten
    ]
    out["changes"] = change_list(outcome)
    out["changes_not_shown"] = max(len(outcome.users) - CHANGES_SHOWN, 0)
    out.update(extra)
    return out


def applied_counts(outcome: Outcome, validator_skipped: int) -> dict[str, int]:
    """What a file applied, by action (`applied` of a report and of a plan)."""
    applied = {key: outcome.counts.get(key, 0) for key in APPLIED_KEYS}
    applied["skipped"] += validator_skipped
    if outcome.departments:
        applied["departments_created"] = sum(1 for d in outcome.departments if d.action is Action.CREATED)
        applied["departments_updated"] = sum(1 for d in outcome.departments if d.action is Action.UPDATED)
    return applied


def change_list(outcome: Outcome) -> list[dict[str, object]]:
    """The first CHANGES_SHOWN user changes with their [old, new] values."""
    out: list[dict[str, object]] = []
    for c in outcome.users:
        if len(out) == CHANGES_SHOWN:
            break
        if c.action is not Action.UNCHANGED:
            out.append({
                "row": c.row, "email": c.fields.get("email", ""), "action": str(c.action),
                "fields": {name: [old, new] for name, old, new in c.diff},
            })  # fmt: skip
    return out


TEXT_SHOWN = 1000  # characters of a value or message a report keeps


def cap(report: Mapping[str, object], *, per_code: int, max_bytes: int) -> dict[str, object]:
    """The report as it is stored, published and emailed: at most `per_code`
    findings of each code (the first, in row order; the count of the rest in
    `findings_not_shown`), every value and message cut to TEXT_SHOWN
    characters, and, should it still be over `max_bytes` of JSON, fewer per
    code (then fewer changes) until it fits. Verdict, rows and counts are
    those of every finding (docs/security.md "Limits")."""
    every = [_short(f) for f in findings(report)]
    listed = report.get("changes")
    listed = listed if isinstance(listed, list) else []
    all_changes = [_short_change(c) for c in listed if isinstance(c, dict)]
    before = report.get("changes_not_shown")
    hidden_before = before if isinstance(before, int) else 0
    changes = all_changes
    out = dict(report)
    while True:
        kept, hidden = _per_code(every, per_code)
        out["findings"] = kept
        out.pop("findings_not_shown", None)
        if hidden:
            out["findings_not_shown"] = hidden
        out["changes"] = changes
        out["changes_not_shown"] = hidden_before + len(all_changes) - len(changes)
        if len(json.dumps(out, indent=2).encode()) <= max_bytes:
            return out
        if per_code > 1:
            per_code //= 2
        elif changes:
            changes = changes[: len(changes) // 2]
        else:
            return out  # one finding per code and no change: as small as it gets


def _per_code(
    every: list[dict[str, object]], per_code: int
) -> tuple[list[dict[str, object]], dict[str, int]]:
    kept: list[dict[str, object]] = []
    seen: dict[str, int] = {}
    for f in every:
        code = str(f.get("code"))
        seen[code] = seen.get(code, 0) + 1
        if seen[code] <= per_code:
            kept.append(f)
    return kept, {code: n - per_code for code, n in sorted(seen.items()) if n > per_code}


def _cut(value: object) -> object:
    if isinstance(value, str) and len(value) > TEXT_SHOWN:
        return value[:TEXT_SHOWN] + f"… ({len(value) - TEXT_SHOWN:,} more characters)"
    return value


def _short(f: dict[str, object]) -> dict[str, object]:
    return {k: _cut(v) if k in ("value", "message") else v for k, v in f.items()}


def _short_change(c: dict[str, object]) -> dict[str, object]:
    fields = c.get("fields")
    if not isinstance(fields, dict):
        return c
    return {**c, "fields": {k: [_cut(x) for x in v] if isinstance(v, list) else v for k, v in fields.items()}}


def error_count(report: Mapping[str, object]) -> int:
    """Every error of the file, those `cap` left out of the report included."""
    shown = errors(report)
    hidden = report.get("findings_not_shown")
    codes = {str(f.get("code")) for f in shown}
    more = sum(int(n) for code, n in hidden.items() if code in codes) if isinstance(hidden, dict) else 0
    return len(shown) + more


def has_errors(report: Mapping[str, object]) -> bool:
    return bool(errors(report))


def counts(report: Mapping[str, object]) -> dict[str, int]:
    """What `bwsandbox files` shows once a file is done (files.counts_json)."""
    applied = report.get("applied")
    out = {k: int(v) for k, v in applied.items()} if isinstance(applied, dict) else {}
    out["errors"] = error_count(report)
    out["overwritten"] = len(report.get("overwritten_manual_edits") or [])  # type: ignore[arg-type]
    return out


def publish(folder: Path, name: str, report: Mapping[str, object], errors_csv: bytes | None) -> None:
    """Write `<name>.report.json` (and `<name>.errors.csv`) atomically into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / f"{name}.report.json", json.dumps(report, indent=2).encode() + b"\n")
    if errors_csv is not None:
        atomic_write(folder / f"{name}.errors.csv", errors_csv)


def findings(report: Mapping[str, object]) -> list[dict[str, object]]:
    """The report's findings, whatever JSON it came from (a stored report is
    read back, never trusted to have the shape)."""
    value = report.get("findings")
    return [f for f in value if isinstance(f, dict)] if isinstance(value, list) else []


def errors(report: Mapping[str, object]) -> list[dict[str, object]]:
    """The findings that count against the file: severity `error`."""
    return [f for f in findings(report) if f.get("severity") == "error"]


def applied_text(report: Mapping[str, object], *, zeros: bool = False) -> str:
    """`created 2, updated 1`: what a file applied (zero counts only with `zeros`)."""
    applied = report.get("applied")
    counts = applied if isinstance(applied, dict) else {}
    return ", ".join(f"{k} {v}" for k, v in counts.items() if zeros or v)
