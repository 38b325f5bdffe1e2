"""`validate(progress=...)` reports the parts of a big file as they are read,
ends complete, and never changes the result (the CLI's progress bar)."""

from __future__ import annotations

from validator_helpers import each_engine  # noqa: F401  (autouse: every test runs on both engines)

from bwsandbox.validator import validate


def _feed(rows: int) -> bytes:
    lines = ["email,first_name,last_name,employee_id,title"]
    lines += [f"user{i}@example.com,First{i},Last{i},{i:07d},Engineer" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_progress_on_a_big_file_is_monotonic_and_ends_complete() -> None:
    data = _feed(400_000)  # ~22 MB: several parts
    calls: list[tuple[int, int]] = []
    with_bar = validate(data, name="big.csv", progress=lambda d, t: calls.append((d, t)))
    assert len(calls) >= 3
    fractions = [d / t for d, t in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] < 1.0
    assert with_bar.report.to_dict() == validate(data, name="big.csv").report.to_dict()


def test_a_small_file_ends_complete() -> None:
    calls: list[tuple[int, int]] = []
    validate(_feed(3), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (1, 1) and all(d <= t for d, t in calls)
