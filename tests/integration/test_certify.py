"""`bwsandbox certify` runs real export jobs (fixtures/exporters/) against a
fresh sandbox, and each broken job fails exactly the criterion it breaks."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bwsandbox.cli.main import main

EXPORTERS = Path(__file__).resolve().parents[2] / "fixtures" / "exporters"
ROSTER = EXPORTERS / "roster.csv"


def _certify(tmp_path: Path, job: str, *extra: str) -> tuple[int, dict[str, object]]:
    out = tmp_path / "cert.json"
    command = f"{sys.executable} {EXPORTERS / job}"
    code = main(["certify", "--run", command, "--timeout", "60", "--json", str(out), *extra])
    return code, json.loads(out.read_text())


def _failed(report: dict[str, object], *, required: bool = True) -> set[str]:
    return {
        str(c["id"]) for c in report["criteria"]  # type: ignore[attr-defined]
        if c["outcome"] == "fail" and c["required"] is required
    }


def test_a_good_export_job_is_certified_with_every_artifact(tmp_path: Path) -> None:
    junit, md = tmp_path / "cert.xml", tmp_path / "cert.md"
    code, report = _certify(tmp_path, "good.py", "--roster", str(ROSTER),
                            "--junit", str(junit), "--markdown", str(md))
    assert code == 0, report
    assert report["passed"] is True
    assert {c["outcome"] for c in report["criteria"]} == {"pass"}  # type: ignore[attr-defined]
    assert [r["exit_code"] for r in report["runs"]] == [0, 0, 2]  # type: ignore[attr-defined]
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "11" and suite.get("failures") == "0"
    text = md.read_text()
    assert "**Result: PASSED**" in text and "bwsandbox 0.1.0" in text and "C02 Verifies the host key" in text


@pytest.mark.parametrize(
    ("job", "roster", "failing"),
    [
        ("no_hostkey_check.py", False, {"C02"}),
        ("semicolon.py", False, {"C06", "C09"}),
        ("undated_name.py", False, {"C04"}),
        ("missing_user.py", True, {"C08"}),
        ("temp_leftover.py", False, {"C05"}),
    ],
)
def test_each_broken_export_job_fails_its_criterion(
    tmp_path: Path, job: str, roster: bool, failing: set[str]
) -> None:
    code, report = _certify(tmp_path, job, *(["--roster", str(ROSTER)] if roster else []))
    assert code == 1
    assert report["passed"] is False
    assert _failed(report) == failing


def test_a_job_that_cannot_start_fails_clearly(tmp_path: Path) -> None:
    code, report = _certify(tmp_path, "does_not_exist.py")
    assert code == 1
    assert "C01" in _failed(report)
