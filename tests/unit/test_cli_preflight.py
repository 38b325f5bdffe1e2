"""Commands refuse bad arguments before doing anything slow or lasting:
certify's report paths before its three runs, clock's DAYS before
the calendar overflows."""

from __future__ import annotations

from pathlib import Path

import pytest

from bwsandbox.cli.main import main


@pytest.mark.parametrize("flag", ["--junit", "--json", "--markdown"])
def test_certify_refuses_an_unwritable_report_path_before_running_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    marker = tmp_path / "ran"
    argv = ["certify", "--run", f"touch {marker}", "--timeout", "5", flag, str(tmp_path)]
    assert main(argv) == 2
    assert not marker.exists()  # the export job never ran
    assert "is a directory" in capsys.readouterr().err


def test_certify_refuses_a_report_in_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    argv = ["certify", "--run", f"touch {marker}", "--json", str(tmp_path / "nope" / "r.json")]
    assert main(argv) == 2
    assert not marker.exists()


@pytest.mark.parametrize("days", ["99999999", "-36501"])
def test_clock_advance_out_of_range_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], days: str
) -> None:
    assert main(["clock", "advance", "--data-dir", str(tmp_path), "--", days]) == 2
    assert "at most 36500 days either way" in capsys.readouterr().err


def test_clock_without_an_action_says_which_actions_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["clock", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "give an action" in err and "invalid choice" not in err


def test_clock_accepts_data_dir_before_the_action(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clock", "--data-dir", str(tmp_path), "advance", "3"]) == 0
    assert main(["clock", "show", "--data-dir", str(tmp_path)]) == 0
    assert "offset +3 days" in capsys.readouterr().out.splitlines()[-1]
