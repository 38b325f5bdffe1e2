"""The sandbox clock's one range rule (bwsandbox/clock.py), as every setter
applies it, and a stored clock outside it read safely (never a crash at the
next midnight, as `clock set --today 9999-12-31` once made)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bwsandbox import clock as clock_mod
from bwsandbox import store, tenants
from bwsandbox.cli.main import main
from bwsandbox.clock import MAX_OFFSET_DAYS, Clock, ClockRangeError
from bwsandbox.config import load
from bwsandbox.ingest.queue import Inbox

REAL = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
EDGE = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)


def stored(data: Path, raw: str) -> None:
    """A clock offset as an older version (or a hand edit) left it."""
    conn = store.connect(load({"data_dir": data}, env={}).db_path)
    with store.transaction(conn):
        store.set_meta(conn, clock_mod.OFFSET_KEY, raw)
    conn.close()


@pytest.mark.parametrize("today", ["9999-12-31", "0001-01-01", "2200-01-01"])
def test_clock_set_outside_the_range_is_refused_with_the_allowed_dates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], today: str
) -> None:
    assert main(["clock", "set", "--today", today, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    first, last = clock_mod.allowed_dates()
    assert f"today {today} is " in err and f"{first} to {last}" in err and "Traceback" not in err
    assert main(["clock", "show", "--data-dir", str(tmp_path)]) == 0
    assert "(offset +0 days)" in capsys.readouterr().out  # nothing was stored


def test_the_range_is_the_same_for_set_advance_and_the_stored_value() -> None:
    base = Clock(fixed=REAL)
    last = (REAL + dt.timedelta(days=MAX_OFFSET_DAYS)).date()
    assert clock_mod.offset_for(last.isoformat(), base) == MAX_OFFSET_DAYS
    with pytest.raises(ClockRangeError, match="at most 36500 days either way"):
        clock_mod.offset_for((last + dt.timedelta(days=1)).isoformat(), base)
    at_edge = Clock(offset_days=MAX_OFFSET_DAYS, fixed=REAL)
    with pytest.raises(ClockRangeError, match=r"moved by \+1 days is \+36501 days"):
        clock_mod.advanced(at_edge, 1)
    assert clock_mod.advanced(at_edge, -2 * MAX_OFFSET_DAYS) == -MAX_OFFSET_DAYS


@pytest.mark.parametrize("raw", [str((EDGE - dt.datetime.now(dt.UTC)).days + 1), "-800000", "soon"])
def test_a_stored_clock_out_of_range_reads_as_the_real_date_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: str
) -> None:
    """raw 1: `clock set --today 9999-12-31` by an older version, a day later."""
    stored(tmp_path, raw)
    assert main(["clock", "show", "--data-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert f"today is {dt.datetime.now(dt.UTC).date()} (offset +0 days)" in out
    assert "bwsandbox: warning: the stored clock" in err and "bwsandbox clock reset" in err
    assert "OverflowError" not in err
    assert main(["clock", "advance", "1", "--data-dir", str(tmp_path)]) == 0  # from the real date
    assert "(offset +1 days)" in capsys.readouterr().out
    assert main(["clock", "show", "--data-dir", str(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().err  # the move replaced it


def test_an_upload_is_recorded_while_the_stored_clock_is_out_of_range(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stored(data, str((EDGE - dt.datetime.now(dt.UTC)).days + 1))
    conn = store.connect(load({"data_dir": data}, env={}).db_path)
    with store.transaction(conn):
        tenant = tenants.add(conn, name="acme", username="acme", password="pw",
                             created_at="2026-01-01T00:00:00+00:00")
    spool = tmp_path / "spool.csv"
    spool.write_text("email,first_name,last_name\na@acme.com,A,B\n")
    file_id = Inbox(conn, data, Clock(fixed=REAL)).received(tenant, "users.csv", spool)
    row = conn.execute("SELECT received_at FROM files WHERE id = ?", (file_id,)).fetchone()
    assert row["received_at"] == REAL.isoformat(timespec="seconds")
    conn.close()
