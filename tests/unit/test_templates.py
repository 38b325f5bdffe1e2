"""`bwsandbox template` writes templates the validator accepts as they are."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bwsandbox.cli.main import main
from bwsandbox.spec.fields import Profile
from bwsandbox.templates import build
from bwsandbox.validator import Context, validate


def test_the_examples_are_named_as_production_asks_so_their_upload_earns_no_notice() -> None:
    """docs/production.md §1: a dated name with .csv (core); employees.YYYYMMDDHHMM.csv (engage)."""
    from bwsandbox.spec.fields import DATE_IN_NAME

    now = dt.datetime(2026, 3, 1, 9, 5)
    core = [f.name for f in build(Profile.CORE, advanced=True, now=now)]
    assert "users_example_20260301.csv" in core and "departments_example_20260301.csv" in core
    assert all(DATE_IN_NAME.search(n) for n in core if "_template" not in n)
    assert [f.name for f in build(Profile.ENGAGE, now=now)][1] == "employees.202603010905.csv"


@pytest.mark.parametrize("profile", list(Profile))
@pytest.mark.parametrize("advanced", [False, True])
def test_every_example_validates_without_error(profile: Profile, advanced: bool) -> None:
    for f in build(profile, advanced=advanced):
        report = validate(f.content.encode(), Context(profile=profile), name=f.name).report
        errors = [x for x in report.findings if x.severity == "error"]
        if f.name.endswith("_template.csv"):
            assert report.total == 0  # header only
            continue
        assert not errors, (f.name, errors)
        assert report.total == report.valid > 0
        assert not [x for x in report.findings if x.code == "HEADER_UNKNOWN"]


def test_the_command_writes_files_and_refuses_to_overwrite(tmp_path: Path) -> None:
    assert main(["template", "--advanced", "-o", str(tmp_path)]) == 0
    day = dt.date.today().strftime("%Y%m%d")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"departments_example_{day}.csv", "departments_template.csv", f"users_example_{day}.csv",
        "users_template.csv",
    ]
    assert main(["template", "-o", str(tmp_path)]) == 2
    assert main(["template", "-o", str(tmp_path), "--force"]) == 0
