"""`bwsandbox fault add|list|clear` (bwsandbox/faults.py): faults switched from
another process, every bad request a one-line usage error (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bwsandbox.cli.main import main


@pytest.fixture
def data(tmp_path: Path) -> Path:
    assert main(["tenant", "add", "acme", "--username", "acme", "--password", "pw",
                 "--data-dir", str(tmp_path)]) == 0
    return tmp_path


def _listed(data: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["fault", "list", "--format", "json", "--data-dir", str(data)]) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return rows


def test_add_list_and_clear(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(data)]
    assert main(["fault", "add", "disconnect", "--after-bytes", "64", "--times", "2", *d]) == 0
    assert "disconnect: drop the connection after 64 bytes of an upload; tenant acme; 2 more time(s)" in (
        capsys.readouterr().out
    )  # the only tenant, without --tenant
    assert main(["fault", "add", "host-key", *d]) == 0  # an endpoint's: us by default
    assert main(["fault", "add", "stall", "--region", "eu", "--delay-ms", "250", *d]) == 0
    rows = _listed(data, capsys)
    assert [(r["kind"], r["tenant"], r["region"], r["times"]) for r in rows] == [
        ("disconnect", "acme", "us", 2), ("host-key", None, "us", None), ("stall", None, "eu", None),
    ]
    assert main(["fault", "clear", "--tenant", "acme", *d]) == 0
    assert "1 fault(s) cleared" in capsys.readouterr().out
    assert main(["fault", "clear", "--all", *d]) == 0
    assert _listed(data, capsys) == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["host-key", "--tenant", "acme"], "applies to a whole endpoint"),
        (["slow"], "slow needs a bandwidth"),
        (["stall", "--tenant", "acme"], "stall needs a delay"),
        (["refuse-login", "--tenant", "nobody"], "no tenant 'nobody'"),
        (["refuse-login", "--probability", "1.5"], "probability must be"),
        (["refuse-login", "--times", "0"], "times must be at least 1"),
        (["disconnect", "--tenant", "acme", "--region", "us"], "not both"),
    ],
)
def test_bad_requests_are_usage_errors(
    data: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    assert main(["fault", "add", *argv, "--data-dir", str(data)]) == 2
    assert says in capsys.readouterr().err
    assert _listed(data, capsys) == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--times", "99999999999999999999"],
         "argument --times: cannot be above 9223372036854775807: 99999999999999999999"),
        (["--seed", "-99999999999999999999"],
         "argument --seed: cannot be below -9223372036854775808: -99999999999999999999"),
        (["--kbps", "99999999999999999999"], "argument --kbps: cannot be above 9223372036854775807"),
        (["--times", "-1"], "argument --times: cannot be below 0: -1"),
    ],
)
def test_a_number_past_the_stores_integer_is_an_argument_error(
    data: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse's usage error, not "internal error: OverflowError"
        main(["fault", "add", "disconnect", *argv, "--data-dir", str(data)])
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
    assert _listed(data, capsys) == []


def test_a_number_the_store_cannot_hold_is_refused_and_an_id_past_it_is_no_fault(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bwsandbox import faults, store
    from bwsandbox.errors import UsageError

    conn = store.connect(data / "sandbox.db")
    try:
        for number, says in [({"times": 2**63}, "times must be at most 9223372036854775807"),
                             ({"kbps": 2**63}, "kbps must be 0-9223372036854775807"),
                             ({"seed": -(2**63) - 1}, "seed must be -9223372036854775808 to")]:
            with pytest.raises(UsageError, match=says):  # the rule itself, for every caller
                faults.add(conn, kind="slow", region="us", tenant="acme",
                           created_at="2026-01-01T00:00:00+00:00", **{"kbps": 1, **number})
    finally:
        conn.close()
    assert main(["fault", "add", "disconnect", "--seed", str(2**63 - 1), "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert main(["fault", "clear", "--id", "99999999999999999999", "--data-dir", str(data)]) == 0
    assert "0 fault(s) cleared" in capsys.readouterr().out
    assert len(_listed(data, capsys)) == 1
