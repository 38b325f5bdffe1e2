"""The judge on the engage profile: PGP data files and their .done markers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from certify_helpers import GOOD, _evidence, _failing, _good_runs, _judge, _outcomes

from bwsandbox.certify.criteria import CRITERIA, ENGAGE_CRITERIA
from bwsandbox.certify.model import Outcome
from bwsandbox.certify.observations import RunObservation, Upload
from bwsandbox.spec.fields import Profile

# -- engage: employees.YYYYMMDDHHMM.csv.pgp + .done.pgp marker in `/` (docs/production.md §1) ----

DATA = replace(GOOD, name="employees.202611251015.csv.pgp")
MARKER = Upload(name="employees.202611251015.csv.done.pgp", bytes=0, state="done", verdict=None,
                marker=True)


def _engage_runs() -> tuple[RunObservation, RunObservation, RunObservation]:
    first, rerun, rotated = _good_runs()
    again = (replace(DATA, name="employees.202611251016.csv.pgp"),
             replace(MARKER, name="employees.202611251016.csv.done.pgp"))
    return replace(first, uploads=(DATA, MARKER)), replace(rerun, uploads=again), rotated


def test_a_good_engage_job_passes_and_its_markers_are_not_judged_as_files() -> None:
    results = _judge(*_engage_runs(), roster=frozenset({"a@example.com"}), profile=Profile.ENGAGE)
    outcomes = _outcomes(results)
    # Engage names carry the minute: C04 judges their reuse, C12 has nothing to add.
    assert outcomes.pop("C12") is Outcome.NOT_APPLICABLE
    assert set(outcomes.values()) == {Outcome.PASS}
    assert [r.criterion for r in results] == list(ENGAGE_CRITERIA)
    assert _evidence(results)["C03"] == ("picked up from /: employees.202611251015.csv.pgp",)


def test_engage_criteria_keep_the_ids_and_reword_folder_names_and_encryption() -> None:
    assert [c.id for c in ENGAGE_CRITERIA] == [c.id for c in CRITERIA]
    changed = {c.id for c, core in zip(ENGAGE_CRITERIA, CRITERIA, strict=True) if c != core}
    assert changed == {"C03", "C04", "C05", "C06", "C07"}


@pytest.mark.parametrize(
    "name",
    [
        "users_20261125.csv.pgp",  # a core name: dated, but not the engage one
        "employees.202611251015.csv.gpg",  # .gpg: not the documented suffix
        "employees.202613251015.csv.pgp",  # month 13
        "employees.2026112510.csv.pgp",  # no minutes
    ],
)
def test_an_engage_job_with_another_name_fails_c04(name: str) -> None:
    first, rerun, rotated = _engage_runs()
    first = replace(first, uploads=(replace(DATA, name=name), MARKER))
    results = _judge(first, rerun, rotated, roster=None, profile=Profile.ENGAGE)
    assert _failing(results) == {"C04"}
    assert any(name in e for e in _evidence(results)["C04"])


def test_a_core_name_passes_c04_in_the_core_profile() -> None:
    first, rerun, rotated = _good_runs()
    first = replace(first, uploads=(replace(GOOD, name="users_20261125.csv.pgp"),))
    assert "C04" not in _failing(_judge(first, rerun, rotated, roster=None))


def test_an_engage_file_waiting_for_its_marker_fails_completeness_and_acceptance() -> None:
    first, rerun, rotated = _engage_runs()
    waiting = replace(DATA, state="waiting", verdict=None)
    results = _judge(replace(first, uploads=(waiting,)), replace(rerun, uploads=(replace(
        waiting, name="employees.202611251016.csv.pgp"),)), rotated, roster=None, profile=Profile.ENGAGE)
    assert _failing(results) == {"C05", "C09"}
    evidence = _evidence(results)
    assert any(e.startswith("never processed, no .done marker arrived: employees.202611251015")
               for e in evidence["C05"])
    assert "not processed (waiting)" in evidence["C09"][0]


def test_an_engage_job_sending_only_markers_uploaded_no_data_file() -> None:
    first, rerun, rotated = _engage_runs()
    results = _judge(replace(first, uploads=(MARKER,)), replace(rerun, uploads=()), rotated,
                    roster=None, profile=Profile.ENGAGE)
    assert _evidence(results)["C06"] == (f"no data file was uploaded, only .done markers: {MARKER.name}",)
    assert {"C03", "C04", "C06", "C09"} <= _failing(results)


def test_an_engage_file_the_vendor_cannot_decrypt_fails_c06() -> None:
    first, rerun, rotated = _engage_runs()
    rejected = replace(DATA, codes=("PGP_REQUIRED",), verdict="rejected", emails=frozenset())
    results = _judge(replace(first, uploads=(rejected, MARKER)), rerun, rotated, roster=None,
                    profile=Profile.ENGAGE)
    assert _failing(results) == {"C06", "C09"}
    assert _evidence(results)["C06"] == ("format findings: PGP_REQUIRED",)
