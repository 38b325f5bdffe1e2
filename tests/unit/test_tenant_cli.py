"""`tenant add`: custom keys (docs/production.md §3) and every value checked
before the tenant is stored, as a one-line usage error (exit 2)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from bwsandbox import control, store
from bwsandbox.cli.main import main
from bwsandbox.config import load

ADD = ["tenant", "add", "acme", "--username", "acme", "--password", "pw"]


def _tenants(data: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    if not (data / "sandbox.db").exists():
        return []  # refused before the store was even created
    assert main(["tenant", "list", "--data-dir", str(data), "--format", "json"]) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return rows


def test_custom_keys_are_stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*ADD, "--data-dir", str(tmp_path), "--custom-key", "cost_center", "--custom-key", "site2"]
    assert main(argv) == 0
    assert _tenants(tmp_path, capsys)[0]["custom_keys"] == ["cost_center", "site2"]


def test_a_valid_authorized_key_and_contact_are_accepted(tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    argv = [*ADD, "--data-dir", str(tmp_path), "--authorized-key", key, "--contact", "it@acme.com"]
    assert main(argv) == 0


@pytest.mark.parametrize(
    "extra",
    [
        ["--custom-key", "Cost-Center"],
        ["--licenses", str(2**63)],
        ["--licenses", "-1"],
        ["--contact", "not an email"],
        ["--authorized-key", "ssh-ed25519 garbage"],
    ],
)
def test_bad_values_are_usage_errors_and_nothing_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse-level checks exit 2 themselves
        raise SystemExit(main([*ADD, "--data-dir", str(tmp_path), *extra]))
    assert exited.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
    assert _tenants(tmp_path, capsys) == []


@pytest.mark.parametrize("flag", ["--username", "--password"])
def test_an_empty_username_or_password_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    argv = [*ADD, "--data-dir", str(tmp_path), flag, ""]
    assert main(argv) == 2
    assert "empty" in capsys.readouterr().err


# -- the name: tenants.name_problem, the rule the API applies too -----------------------------------

def _add_named(data: Path, name: str, username: str = "u") -> int:
    return main(["tenant", "add", name, "--username", username, "--password", "pw", "--data-dir", str(data)])


def test_a_name_too_long_for_the_file_system_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _add_named(tmp_path, "ü" + "x" * 5000) == 2
    err = capsys.readouterr().err
    assert "5002 bytes in UTF-8 (5001 characters); the limit is 100 bytes" in err
    assert err.count("\n") == 1 and "x" * 200 not in err  # one line, without echoing the name
    assert _tenants(tmp_path, capsys) == []
    assert _add_named(tmp_path, "é" * 50 + "x") == 2  # 101 bytes, 51 characters
    assert _add_named(tmp_path, "é" * 50) == 0  # 100 bytes
    assert [t["name"] for t in _tenants(tmp_path, capsys)] == ["é" * 50]
    assert (tmp_path / "tenants" / "us" / ("é" * 50) / "root" / "incoming").is_dir()  # made with it


@pytest.mark.parametrize("name", ["a/b", ".hidden", "nul\0byte"])
def test_a_name_that_is_no_folder_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert _add_named(tmp_path, name) == 2
    assert "invalid tenant name" in capsys.readouterr().err
    assert _tenants(tmp_path, capsys) == []


def test_a_tenant_whose_folder_cannot_be_made_is_not_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _add_named(tmp_path, "kept", "kept") == 0
    blocker = tmp_path / "tenants" / "us" / "blocked"
    blocker.write_text("not a folder")  # where the tenant's folder should go
    assert _add_named(tmp_path, "blocked", "blocked") == 1
    err = capsys.readouterr().err
    assert f"cannot make the folders of tenant 'blocked' ({blocker / 'root'})" in err
    assert "Traceback" not in err
    assert [t["name"] for t in _tenants(tmp_path, capsys)] == ["kept"]  # rolled back; the other kept
    assert blocker.read_text() == "not a folder"
    assert (tmp_path / "tenants" / "us" / "kept" / "root" / "incoming").is_dir()
    blocker.unlink()
    assert _add_named(tmp_path, "blocked", "blocked") == 0


def test_a_tenant_whose_commit_fails_leaves_no_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folders are made before the COMMIT; if that fails, they go too."""
    settings = load({"data_dir": tmp_path})
    conn = store.connect(settings.db_path)

    @contextlib.contextmanager
    def commit_fails(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("ROLLBACK")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "transaction", commit_fails)
    with pytest.raises(sqlite3.OperationalError):
        control.create_tenant(conn, settings, control.TenantSpec(name="acme"))
    conn.close()
    assert not (tmp_path / "tenants" / "us" / "acme").exists()
