"""`bwsandbox directory --format json|csv` and the API's users listing stream
a tenant's users: memory stays bounded whatever the directory's size, and the
output is byte for byte what the whole-list listing printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bwsandbox import store, tenants
from bwsandbox.cli.main import main
from bwsandbox.config import load
from bwsandbox.ingest import directory

# Runs the command as the `bwsandbox` script does, then reports the process's
# own peak resident memory (ru_maxrss: KiB on Linux) on stderr.
RUNNER = """
import atexit, resource, sys
from bwsandbox.cli.main import run
atexit.register(lambda: sys.stderr.write(
    f"\\npeak_rss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n"))
sys.argv = ["bwsandbox", *sys.argv[1:]]
run()
"""


def _user(i: int) -> dict[str, str]:
    return {
        "email": f"user{i:07d}@acme.example", "first_name": "Ann", "last_name": f"Lee {i}",
        "employee_id": f"{i:07d}", "manager_email": "user0000001@acme.example" if i > 1 else "",
        "department_name": "Engineering", "title": "Engineer", "deactivation_date": "",
        "location": "Rome", **({"cost_center": f"CC{i % 7}"} if i % 2 else {}),
    }


def _seeded(data_dir: Path, users: int) -> Path:
    """A data directory whose tenant `acme` has `users` users, written straight
    into the store's own table (applying a file of that size would take the
    test's whole budget)."""
    settings = load({"data_dir": data_dir}, env={})
    conn = store.connect(settings.db_path)
    with store.transaction(conn):
        tenants.add(conn, name="acme", username="acme", password="pw", created_at="2026-01-01T00:00:00+00:00")
    with store.transaction(conn):
        conn.executemany(
            "INSERT INTO dir_users (tenant, uid, email_key, active, fields_json) VALUES (?, ?, ?, ?, ?)",
            (("acme", i, f"user{i:07d}@acme.example", i % 5 != 0, json.dumps(_user(i)))
             for i in range(1, users + 1)),
        )
    conn.close()
    return settings.data_dir


def _list(data_dir: Path, users: int) -> int:
    """Peak RSS (KiB) of `bwsandbox directory --format json` listing the
    seeded users; checks every user came out, in order, as JSON."""
    with subprocess.Popen(
        [sys.executable, "-c", RUNNER, "directory", "--tenant", "acme", "--format", "json",
         "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == "[\n"
        emails = 0
        first = last = ""
        for line in proc.stdout:  # read as it comes: the test holds no more than the command
            if line.startswith('    "email": '):
                emails += 1
                first = first or line
                last = line
        err = proc.stderr.read()
        assert proc.wait(300) == 0, err
    assert emails == users
    assert (json.loads(first.strip().rstrip(",").split(": ", 1)[1]),
            json.loads(last.strip().rstrip(",").split(": ", 1)[1])) == (
        "user0000001@acme.example", f"user{users:07d}@acme.example")
    return int(err.rsplit("peak_rss_kib=", 1)[1])


@pytest.mark.slow
def test_listing_200000_users_peaks_near_listing_1000(tmp_path: Path) -> None:
    # Measured against a small listing in the same conditions (same Python,
    # same imports), so what is compared is what the size of the directory
    # costs: held in a list, 200,000 users cost ~700 MB more; streamed, a
    # batch of them.
    small = _list(_seeded(tmp_path / "small", 1_000), 1_000)
    big = _list(_seeded(tmp_path / "big", 200_000), 200_000)
    assert big - small < 60 * 1024, f"peak RSS {big} KiB for 200,000 users, {small} KiB for 1,000"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    # More than two batches, so the seams between them are in the output.
    return _seeded(tmp_path / "data", 2 * directory.LISTING_BATCH + 7)


def test_the_streamed_json_is_what_the_whole_list_printed(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["directory", "--tenant", "acme", "--format", "json", "--data-dir", str(data)]) == 0
    conn = store.connect(data / "sandbox.db")
    users = directory.users_listing(conn, "acme")
    conn.close()
    columns = ["email", "first_name", "last_name", "employee_id", "manager_email", "department_name",
               "title", "status", "deactivation_date", "cost_center", "location"]
    expected = json.dumps([{c: u.get(c, "") for c in columns} for u in users], indent=2) + "\n"
    assert capsys.readouterr().out == expected


def test_an_empty_directory_is_still_an_empty_json_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _seeded(tmp_path / "empty", 0)
    assert main(["directory", "--tenant", "acme", "--format", "json", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out == "[]\n"
    assert main(["directory", "--tenant", "acme", "--format", "csv", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.splitlines() == [",".join(
        ("email", "first_name", "last_name", "employee_id", "manager_email", "department_name",
         "title", "status", "deactivation_date"))]


def test_the_api_streams_the_bytes_a_whole_list_response_had(data: Path) -> None:
    from bwsandbox.api.routes.directory import _users_json

    conn = store.connect(data / "sandbox.db")
    users = directory.users_listing(conn, "acme")
    conn.close()
    sandbox = SimpleNamespace(connect=lambda: store.connect(data / "sandbox.db"))
    streamed = b"".join(_users_json(sandbox, "acme"))  # type: ignore[arg-type]
    # FastAPI's JSON for a list[dict[str, str]] response: compact, UTF-8.
    assert streamed == json.dumps(users, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert b"".join(_users_json(sandbox, "nobody")) == b"[]"  # type: ignore[arg-type]
