"""The sandbox clock while the server runs: a change applies to every upload
after it, and a stored clock out of range never stops serve or the pickup."""

from __future__ import annotations

import datetime as dt
import json
import signal
import urllib.request
from pathlib import Path

from conftest import SandboxFactory, wait_until
from test_ingest_e2e import HEADER, cli, new_tenant, report_of, upload, wait_done
from test_server_cli import Serve

from bwsandbox import clock as clock_mod
from bwsandbox import control, store
from bwsandbox.config import load
from bwsandbox.server import audit

# `clock set --today 9999-12-31` by an older version, one midnight later.
PAST_THE_CALENDAR = str((dt.datetime(9999, 12, 31, tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)).days + 1)


def test_an_upload_after_a_clock_change_is_received_and_processed_on_the_new_clock(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    h = sandbox_factory(tmp_path / "data", ingest=True)
    account, tenant = new_tenant(h, tmp_path)
    assert cli(h, "clock", "set", "--today", "2027-03-01") == 0  # the server already runs
    since = audit.mark(h.sandbox.audit_path)
    upload(account, "users-1.csv", HEADER + "a@acme.com,A,B,,,,\n")
    row = wait_done(h, tenant, "users-1.csv")
    assert row["received_at"].startswith("2027-03-01T")
    assert report_of(row)["processed_at"].startswith("2027-03-01T")
    # The audit log keeps real UTC time: moving "today" does not move the wire.
    # (Written by the server's loop just after the event: waited for, not assumed.)
    [pickup] = wait_until(
        lambda: [r for r in audit.read(h.sandbox.audit_path, since) if r["event"] == "pickup"]
    )
    stamped = dt.datetime.fromisoformat(str(pickup["ts"]))
    assert abs(stamped - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)

    assert cli(h, "clock", "reset") == 0  # and back, for the next upload
    upload(account, "users-2.csv", HEADER + "a@acme.com,A,B,,,,\n")
    real_today = dt.datetime.now(dt.UTC).date().isoformat()
    assert wait_done(h, tenant, "users-2.csv")["received_at"].startswith(real_today)


def test_a_stored_clock_past_the_calendar_leaves_the_pickup_and_the_api_working(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    h = sandbox_factory(tmp_path / "data", ingest=True)
    account, tenant = new_tenant(h, tmp_path)
    with store.transaction(h.conn):
        store.set_meta(h.conn, clock_mod.OFFSET_KEY, PAST_THE_CALENDAR)
    upload(account, "users-1.csv", HEADER + "a@acme.com,A,B,,,,\n")
    row = wait_done(h, tenant, "users-1.csv")  # recorded, processed: not left in the spool
    assert row["received_at"].startswith(dt.datetime.now(dt.UTC).date().isoformat())
    state = control.clock_state(h.conn)  # GET /clock
    assert state["offset_days"] == 0 and "bwsandbox clock reset" in state["warning"]


def test_serve_starts_with_a_stored_clock_past_the_calendar_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    conn = store.connect(load({"data_dir": data}, env={}).db_path)
    with store.transaction(conn):
        store.set_meta(conn, clock_mod.OFFSET_KEY, PAST_THE_CALENDAR)
    conn.close()
    serve = Serve(data, tmp_path)
    try:
        out = wait_until(lambda: "Follow your uploads" in serve.output() and serve.output(), timeout=10)
        assert "the stored clock is +" in out and "bwsandbox clock reset" in out
        url = "http://{host}:{port}/api/v1/clock".format(**serve.status["http"])
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200 and json.load(reply)["offset_days"] == 0
        out = serve.output()
        assert "internal error" not in out and "Traceback" not in out
    finally:
        assert serve.stop(signal.SIGINT) == 0
