"""Settings are range-checked when they load, whichever layer they come from
(GUIDE convention 4): a bad value is a one-line ConfigError (exit 2), never an
OverflowError from the server later nor a traceback in the serve log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bwsandbox.cli.main import main
from bwsandbox.config import load
from bwsandbox.errors import ConfigError


@pytest.mark.parametrize("smtp", ["nonsense", "host:", ":25", "host:0", "host:65536", "host:x25"])
def test_smtp_must_be_host_colon_port(tmp_path: Path, smtp: str) -> None:
    with pytest.raises(ConfigError, match="smtp"):
        load({"data_dir": tmp_path, "smtp": smtp}, env={})


def test_a_valid_smtp_setting_loads(tmp_path: Path) -> None:
    settings = load({"data_dir": tmp_path, "smtp": "mail.example.com:2525"}, env={})
    assert settings.smtp == "mail.example.com:2525"


@pytest.mark.parametrize(
    ("name", "value"),
    [("port", 99999), ("eu_port", -1), ("queue_delay", -1), ("idle_timeout", -0.5),
     ("max_file_bytes", -1), ("lockout_seconds", float("nan")), ("engage_termination_limit", 1.5),
     ("max_decrypted_bytes", -1), ("max_columns", 0), ("max_json_bytes", -5), ("max_findings_per_code", 0),
     ("max_report_bytes", 1000), ("max_error_file_bytes", 10), ("max_attachment_bytes", 10),
     ("max_processing_attempts", 0), ("fast_lane_bytes", -1), ("retry_backoff_seconds", float("inf"))],
)
def test_out_of_range_arguments_are_refused(tmp_path: Path, name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        load({"data_dir": tmp_path, name: value}, env={})


def test_out_of_range_values_from_the_config_file_and_environment_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="queue_delay"):
        load({"data_dir": tmp_path}, env={"BWSANDBOX_QUEUE_DELAY": "-3"})
    (tmp_path / "config.json").write_text(json.dumps({"port": 70000}))
    with pytest.raises(ConfigError, match="port"):
        load({"data_dir": tmp_path}, env={})


def test_a_config_json_that_is_not_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ConfigError, match="not a file"):
        load({"data_dir": tmp_path}, env={})


@pytest.mark.parametrize("argv", [["--port", "99999"], ["--smtp", "nonsense"], ["--queue-delay", "-1"]])
def test_serve_refuses_bad_settings_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(["serve", "--data-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert "invalid value" in err and "internal error" not in err and "Traceback" not in err
