"""`bwsandbox template` writes templates the validator accepts as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from bwsandbox.cli.main import main
from bwsandbox.spec.fields import Profile
from bwsandbox.templates import build
from bwsandbox.validator import Context, validate


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
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "departments_example.csv", "departments_template.csv", "users_example.csv", "users_template.csv",
    ]
    assert main(["template", "-o", str(tmp_path)]) == 2
    assert main(["template", "-o", str(tmp_path), "--force"]) == 0
