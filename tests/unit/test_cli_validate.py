"""`bwsandbox validate`: output formats and exit codes (docs/validation.md)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bwsandbox.cli.main import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
VALID = str(FIXTURES / "valid_users.csv")
BROKEN = str(FIXTURES / "EMAIL_INVALID.csv")


def test_valid_file_exits_zero_with_a_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", VALID]) == 0
    out = capsys.readouterr().out
    assert "ACCEPTED" in out and "valid_users.csv" in out


def test_errors_exit_one_and_text_groups_by_row_with_hints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", BROKEN]) == 1
    out = capsys.readouterr().out
    assert "EMAIL_INVALID" in out and "fix: Use a full" in out and "2 errors" in out


def test_json_for_one_file_is_exactly_one_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", BROKEN]) == 1
    out = capsys.readouterr().out
    doc = json.loads(out)  # raises if there is anything but one JSON document
    assert isinstance(doc, dict) and doc["verdict"] == "partial"
    assert set(doc) == {"file", "profile", "sha256", "verdict", "rows", "findings", "plan"}
    assert set(doc["plan"]) == {"applied", "changes"}  # a processed report's keys of the same names


def test_json_for_several_files_is_an_array(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", VALID, BROKEN]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [d["verdict"] for d in doc] == ["accepted", "partial"]


def test_json_output_is_byte_identical_across_runs() -> None:
    cmd = [sys.executable, "-m", "bwsandbox.cli.main", "validate", "--format", "json", BROKEN]
    code = "import sys; from bwsandbox.cli.main import main; sys.exit(main(sys.argv[1:]))"
    runs = [
        subprocess.run([sys.executable, "-c", code, *cmd[3:]], capture_output=True, check=False)
        for _ in range(2)
    ]
    assert runs[0].returncode == runs[1].returncode == 1
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.count(b'"sha256"') == 1
    assert runs[0].stderr == b""


def test_rejected_file_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", str(FIXTURES / "DELIMITER_SEMICOLON.csv")]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "rejected"


def test_warnings_alone_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FIXTURES / "HEADER_UNKNOWN.csv")]) == 0


def test_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "no/such/file.csv"]) == 2
    err = capsys.readouterr().err
    assert "no/such/file.csv: no such file" in err and "Traceback" not in err


def test_bad_option_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--profile", "nope", VALID])
    assert exc.value.code == 2


def test_stdin_and_context_options(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = b"email,first_name,last_name,cost_center,deactivation_date\na@x.com,A,B,CC,03/04/2027\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    args = ["validate", "--format", "json", "--locale", "en-GB", "--custom-key", "cost_center", "-"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["file"] == "<stdin>"
    assert [f["code"] for f in doc["findings"]] == ["DATE_AMBIGUOUS"]
    assert "2027-04-03" in doc["findings"][0]["message"]


def test_engage_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["validate", "--profile", "engage", "--format", "json", str(FIXTURES / "MOBILE_INVALID.csv")])
        == 1
    )
    assert json.loads(capsys.readouterr().out)["profile"] == "engage"


def test_csv_format_writes_the_error_file(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["validate", "--format", "csv", BROKEN]) == 1
    lines = capsysbinary.readouterr().out.decode().splitlines()
    assert lines[0].endswith(",row,status,errors")
    assert len(lines) == 3 and all("EMAIL_INVALID" in line for line in lines[1:])


def test_csv_format_takes_one_file() -> None:
    assert main(["validate", "--format", "csv", VALID, BROKEN]) == 2


def test_context_file_brings_the_directory_and_licences(capsys: pytest.CaptureFixture[str]) -> None:
    fixture = str(FIXTURES / "LICENSE_LIMIT.csv")
    assert main(["validate", "--format", "json", fixture]) == 0
    capsys.readouterr()
    context = str(FIXTURES / "LICENSE_LIMIT.context.json")
    assert main(["validate", "--format", "json", "--context", context, fixture]) == 1
    codes = {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert codes == {"LICENSE_LIMIT"}


def test_a_bad_context_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text('{"licences": 3}')
    assert main(["validate", "--context", str(bad), VALID]) == 2


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ('{"licenses_available": "ten"}', "licenses_available must be a whole number"),
        ('{"licenses_available": -1}', "licenses_available must be a whole number"),
        ('{"directory": {"users": [{"email": 5}]}}', "email must be a string"),
        ('{"directory": {"users": [{"mail": "a@x.com"}]}}', "directory user needs 'email'"),
        ('{"locale": "fr-FR"}', "locale must be one of en-US, en-GB"),
        ('{"custom_keys": "abc"}', "custom_keys must be a list"),
        ('{"custom_keys": ["Bad Key"]}', "invalid custom key"),
        ('{"profile": "gold"}', "profile must be core or engage"),
        ("[1, 2]", "must be a JSON object"),
        ('{"directory": {"users": [{"email": "a\\ud800@x.com"}]}}', "is not valid Unicode text"),
    ],
)
def test_a_badly_typed_context_is_a_usage_error_that_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: str, says: str
) -> None:
    bad = tmp_path / "c.json"
    bad.write_text(doc)
    assert main(["validate", "--context", str(bad), VALID]) == 2
    assert says in capsys.readouterr().err


def test_a_bad_custom_key_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--custom-key", "Bad Key!", VALID]) == 2
    assert "invalid custom key 'Bad Key!'" in capsys.readouterr().err


def test_a_non_utf8_file_name_keeps_the_json_valid_utf8(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    import os

    path = os.path.join(os.fsencode(tmp_path), b"n\xff.csv")
    with open(path, "wb") as f:
        f.write(Path(VALID).read_bytes())
    assert main(["validate", "--format", "json", os.fsdecode(path)]) == 0
    doc = json.loads(capsysbinary.readouterr().out.decode("utf-8"))  # strict: no lone surrogates
    assert doc["file"].endswith("n\\xff.csv")
