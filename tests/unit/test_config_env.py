"""Every setting is also a `BWSANDBOX_*` environment variable (a CI service
container has no config file to write first), and the layers keep their
order: argument > DATA_DIR/config.json > environment > default."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bwsandbox.config import Settings, load
from bwsandbox.errors import ConfigError

# A value different from the default for every setting: (as the environment says it, as loaded).
NOT_DEFAULT: dict[str, tuple[str, object]] = {
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("3222", 3222),
    "eu_port": ("3223", 3223),
    "queue_delay": ("1.5", 1.5),
    "queue_per_mb": ("0.25", 0.25),
    "queue_jitter": ("0.5", 0.5),
    "queue_seed": ("7", 7),
    "smtp": ("mail.example.com:2525", "mail.example.com:2525"),
    "reports_folder": ("off", False),
    "max_file_bytes": ("1024", 1024),
    "max_sessions_per_tenant": ("3", 3),
    "idle_timeout": ("9", 9.0),
    "lockout_attempts": ("0", 0),
    "lockout_seconds": ("1", 1.0),
    "max_auth_attempts": ("2", 2),
    "max_startups_per_address": ("4", 4),
    "max_connections": ("5", 5),
    "max_handles_per_session": ("8", 8),
    "max_open_handles": ("64", 64),
    "pickup_quiet_seconds": ("0.2", 0.2),
    "engage_termination_limit": ("0.5", 0.5),
    "max_decrypted_bytes": ("1000", 1000),
    "max_columns": ("50", 50),
    "max_json_bytes": ("1000", 1000),
    "max_findings_per_code": ("10", 10),
    "max_report_bytes": ("100000", 100000),
    "max_error_file_bytes": ("5000", 5000),
    "max_attachment_bytes": ("5000", 5000),
    "max_processing_attempts": ("5", 5),
    "fast_lane_bytes": ("0", 0),
    "retry_backoff_seconds": ("0.5", 0.5),
    "http_host": ("0.0.0.0", "0.0.0.0"),
    "http_port": ("0", 0),
    "api_token": ("s3cret", "s3cret"),
    "tenants_file": ("/etc/bwsandbox/tenants.json", "/etc/bwsandbox/tenants.json"),
    "tenants": ('[{"name": "acme"}]', '[{"name": "acme"}]'),
}


def test_the_table_names_every_setting() -> None:
    assert set(NOT_DEFAULT) == {f.name for f in dataclasses.fields(Settings)} - {"data_dir"}


@pytest.mark.parametrize("name", sorted(NOT_DEFAULT))
def test_every_setting_is_read_from_its_environment_variable(tmp_path: Path, name: str) -> None:
    raw, expected = NOT_DEFAULT[name]
    assert getattr(Settings(), name) != expected
    settings = load({"data_dir": tmp_path}, env={f"BWSANDBOX_{name.upper()}": raw})
    assert getattr(settings, name) == expected


@pytest.mark.parametrize("variable", ["BWSANDBOX_HOME", "BWSANDBOX_DATA_DIR"])
def test_the_data_directory_comes_from_the_environment(tmp_path: Path, variable: str) -> None:
    assert load(env={variable: str(tmp_path / "d")}).data_dir == tmp_path / "d"


def test_http_port_off_in_the_environment_means_no_api(tmp_path: Path) -> None:
    assert load({"data_dir": tmp_path}, env={"BWSANDBOX_HTTP_PORT": "off"}).http_port is None


def test_layers_argument_over_file_over_environment(tmp_path: Path) -> None:
    env = {"BWSANDBOX_HTTP_PORT": "1111", "BWSANDBOX_QUEUE_DELAY": "3"}
    (tmp_path / "config.json").write_text(json.dumps({"http_port": 2222}))
    settings = load({"data_dir": tmp_path}, env=env)
    assert (settings.http_port, settings.queue_delay) == (2222, 3.0)
    assert load({"data_dir": tmp_path, "http_port": 3333}, env=env).http_port == 3333


@pytest.mark.parametrize("raw", ["70000", "-1", "eighty"])
def test_a_bad_http_port_in_the_environment_is_one_line_error(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="http_port"):
        load({"data_dir": tmp_path}, env={"BWSANDBOX_HTTP_PORT": raw})
