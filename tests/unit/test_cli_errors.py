"""Bad input at the command line ends in one clear line and an exit code,
never a traceback or an 'internal error' (the project's standard)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bwsandbox.cli", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=60, stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("make_args", "code", "says"),
    [
        (lambda t: ["template", "--output", str(t / "a-file")], 2, "cannot write templates"),
        (lambda t: ["validate", str(t)], 2, ""),
        (lambda t: ["validate", str(t / "missing.csv")], 2, "missing.csv"),
        (lambda t: ["hostkey", "show", "--data-dir", str(t / "a-file")], 1, "a-file"),
        (lambda t: ["files", "--data-dir", str(t / "a-file")], 2, "a-file"),
        (lambda t: ["files", "--data-dir", str(t / "typo")], 2, "no sandbox in"),
        (lambda t: ["tenant", "list", "--data-dir", str(t / "typo")], 2, "no sandbox in"),
    ],
)
def test_bad_paths_give_one_clear_line(tmp_path: Path, make_args: object, code: int, says: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    result = _run(*make_args(tmp_path))  # type: ignore[operator]
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert result.stderr.startswith("bwsandbox: error:") or result.stderr.startswith("usage:")
    assert says in result.stderr


def test_a_terminal_that_cannot_encode_the_output_gets_escapes(tmp_path: Path) -> None:
    feed = tmp_path / "accents.csv"
    feed.write_text("email,first_name,last_name\r\nzoe@x.com,Zoë,Åberg\r\nbad,Zoë,Åberg\r\n")
    result = _run("validate", str(feed), env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert "EMAIL_INVALID" in result.stdout


def test_validate_refuses_a_file_over_max_file_bytes_before_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "users.csv"
    with huge.open("wb") as fh:
        fh.truncate(3 * 2**30)  # sparse: 3 GiB on paper, read whole before the fix
    result = _run("validate", str(huge), env={"BWSANDBOX_HOME": str(tmp_path),
                                              "BWSANDBOX_MAX_FILE_BYTES": str(2 * 2**30)})  # the default
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"bwsandbox: error: {huge}: 3,221,225,472 bytes, over max_file_bytes (2,147,483,648), the largest "
        "upload the sandbox accepts: not checked (split the file, or raise max_file_bytes)\n")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_validate_reads_an_endless_file_only_to_one_byte_past_the_limit(tmp_path: Path) -> None:
    env = {"BWSANDBOX_MAX_FILE_BYTES": "1000000", "BWSANDBOX_HOME": str(tmp_path)}
    result = _run("validate", "/dev/zero", env=env)  # was read until the OOM killer came (23 GB)
    assert result.returncode == 2, result.stderr
    assert "/dev/zero: more than 1,000,000 bytes, over max_file_bytes (1,000,000)" in result.stderr
    piped = subprocess.run(
        [sys.executable, "-m", "bwsandbox.cli", "validate", "-"], input=b"x" * 1_000_001,
        capture_output=True, env={**os.environ, **env}, timeout=60)
    assert piped.returncode == 2 and b"standard input: more than 1,000,000 bytes" in piped.stderr
    assert b"Traceback" not in piped.stderr


_UNDER_AS_LIMIT = (
    "import resource, sys\n"
    "soft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
    "resource.setrlimit(resource.RLIMIT_AS, (1_500_000 * 1024, hard))  # ulimit -v 1500000\n"
    "from bwsandbox.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS bounds the address space on Linux")
def test_validate_of_a_small_file_fits_in_a_small_address_space(tmp_path: Path) -> None:
    resource = pytest.importorskip("resource")
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY and hard < 1_500_000 * 1024:
        pytest.skip("the hard RLIMIT_AS is already lower")
    feed = tmp_path / "users.csv"
    csv = "email,first_name,last_name\r\nann@x.com,Ann,Lee\r\n"
    feed.write_text(csv)
    env = {**os.environ, "BWSANDBOX_HOME": str(tmp_path)}  # max_file_bytes: the default 2 GiB
    for args, given in (([str(feed)], None), (["-"], csv)):  # was "internal error: MemoryError"
        result = subprocess.run([sys.executable, "-c", _UNDER_AS_LIMIT, "validate", *args],
                                input=given, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "MemoryError" not in result.stderr
