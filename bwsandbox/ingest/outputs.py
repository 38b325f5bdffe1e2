"""What a processed file leaves besides the directory's changes: its state,
report, error file and email, then the published copies of its report.

`finish` runs inside the transaction that applies the file (the worker hands
it to `process.process` as its `finalize`), so after `kill -9` the file is
`done` with its report and its email recorded, or none of it. `publish`
runs after the commit and marks the file published once its copies are
written, so a restart (`Worker.recover`) republishes only what was missed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

from bwsandbox import layout
from bwsandbox import tenants as tenants_mod
from bwsandbox.clock import Clock
from bwsandbox.config import Settings
from bwsandbox.ingest import files, notify, reports
from bwsandbox.ingest.process import Processed
from bwsandbox.store import transaction

log = logging.getLogger("bwsandbox.ingest")


def finish(
    conn: sqlite3.Connection, done: Processed, *,
    file_id: int, tenant: tenants_mod.Tenant, file_name: str, clock: Clock,
) -> None:
    """The file's final row, its error file and the Technical Contact's email
    (recorded, sent after the commit), in the caller's transaction."""
    report = done.report
    files.finish(conn, file_id, verdict=done.verdict, report_json=json.dumps(report),
                 counts_json=json.dumps(reports.counts(report)))
    conn.execute(
        "INSERT OR REPLACE INTO file_outputs (file_id, errors_csv, published) VALUES (?, ?, 0)",
        (file_id, done.errors_csv),
    )
    if done.errors_csv is not None:
        msg = notify.build_message(
            to=tenant.contact, tenant=tenant.name, file_name=file_name,
            report=report, attachment=done.attachment or done.errors_csv, names=done.names,
        )
        notify.record(conn, tenant=tenant.name, file_id=file_id, at=clock.iso(), msg=msg)


def publish(conn: sqlite3.Connection, settings: Settings, file_id: int) -> None:
    """Copies kept with the stored file and, if enabled, in the tenant's /reports."""
    out = files.outputs(conn, file_id)
    if out is None or out.report_json is None:
        return
    report = json.loads(out.report_json)
    errors = out.errors_csv
    try:
        stored = Path(out.stored_path)
        reports.publish(stored.parent, stored.name, report, errors)
        tenant = tenants_mod.get(conn, out.tenant)
        if tenant is not None and settings.reports_folder:
            folder = layout.reports_dir(settings.data_dir, tenant)
            reports.publish(folder, layout.fit_name(out.name, reports.NAME_ROOM), report, errors)
    except OSError:
        log.exception("publishing the report of file #%d failed", file_id)
        return
    with transaction(conn):
        conn.execute("UPDATE file_outputs SET published = 1 WHERE file_id = ?", (file_id,))
