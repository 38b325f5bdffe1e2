"""The upload queue's one owner: the `files` table, its states and every
statement over it. Nothing else in the package writes SQL over `files`
(tests/unit/test_files_owner.py keeps it so), so a reader finds here, in one
place, what each state means and which moves between them exist:

    incomplete                  cut off mid-upload: kept for inspection, never processed
    waiting                     an engage data file whose `.done` marker has not arrived
    queued -> processing        claimed by the worker (one file per tenant at a time)
    processing -> done          applied, report stored, in one transaction
    processing -> failed        refused, an internal error, or cut off by too many crashes
    processing -> queued        a full disk (a retry later) or a crash (at the next start)
    waiting -> queued           its marker arrived
    done                        also an engage `.done` marker itself (detail `marker`)

Each function takes the caller's connection and runs inside the caller's
transaction, if any: what belongs together (claiming a file and reading its
tenant, applying a file and marking it done) stays one commit, decided by the
caller. Rows come back as frozen records, never as `sqlite3.Row`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FileState(StrEnum):
    """A stored upload's state. The values are what the store holds and what
    `bwsandbox files --format json` and the HTTP API show: never rename one."""

    INCOMPLETE = "incomplete"
    WAITING = "waiting"
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


# Nothing more will happen to a file in one of these (a waiter may stop).
FINAL: frozenset[FileState] = frozenset({FileState.DONE, FileState.FAILED, FileState.INCOMPLETE})
# The worker still owes these an answer (in a fixed order: SQL parameters).
_PENDING_ORDER = (FileState.QUEUED, FileState.PROCESSING)
PENDING: frozenset[FileState] = frozenset(_PENDING_ORDER)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRecord:
    """One row of `files`: an upload as received, and what became of it."""

    id: int
    tenant: str
    name: str
    bytes: int
    sha256: str
    received_at: str
    state: FileState
    verdict: str | None = None
    stored_path: str | None = None
    due_at: str | None = None
    detail: str = ""
    report_json: str | None = None
    counts_json: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload(FileRecord):
    """A file as the control surfaces list it: with whether it has an error file."""

    has_errors_csv: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Outputs:
    """What publishing a processed file needs: its report and its error file."""

    tenant: str
    name: str
    stored_path: str
    report_json: str | None
    errors_csv: bytes | None


def _record(row: sqlite3.Row) -> FileRecord:
    return FileRecord(**_fields(row))


def _fields(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": int(row["id"]), "tenant": str(row["tenant"]), "name": str(row["name"]),
        "bytes": int(row["bytes"]), "sha256": str(row["sha256"]), "received_at": str(row["received_at"]),
        "state": FileState(row["state"]), "verdict": row["verdict"], "stored_path": row["stored_path"],
        "due_at": row["due_at"], "detail": str(row["detail"] or ""), "report_json": row["report_json"],
        "counts_json": row["counts_json"],
    }


def _records(rows: Iterable[sqlite3.Row]) -> list[FileRecord]:
    return [_record(r) for r in rows]


# -- recording an upload (the Inbox) ----------------------------------------------

def insert(
    conn: sqlite3.Connection, *, tenant: str, name: str, size: int, sha256: str, received_at: str,
    state: FileState, detail: str,
) -> int:
    """A new upload's row; returns its id."""
    cur = conn.execute(
        "INSERT INTO files (tenant, name, bytes, sha256, received_at, state, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (tenant, name, size, sha256, received_at, state.value, detail),
    )
    return int(cur.lastrowid or 0)


def set_stored(conn: sqlite3.Connection, file_id: int, *, stored_path: str, due_at: str | None) -> None:
    """Where the upload is kept, and when it may be processed."""
    conn.execute("UPDATE files SET stored_path = ?, due_at = ? WHERE id = ?", (stored_path, due_at, file_id))


def stored_paths(conn: sqlite3.Connection, tenant: str, name: str) -> list[str]:
    """Where this tenant's uploads called `name` are kept (recovering the spool)."""
    return [str(r[0]) for r in conn.execute(
        "SELECT stored_path FROM files WHERE tenant = ? AND name = ? AND stored_path IS NOT NULL",
        (tenant, name),
    )]


def names_with_detail(conn: sqlite3.Connection, tenant: str, *, detail: str, like: str) -> list[str]:
    """Names (matching the LIKE pattern) of the tenant's files noted `detail`."""
    return [str(r[0]) for r in conn.execute(
        "SELECT name FROM files WHERE tenant = ? AND detail = ? AND name LIKE ?", (tenant, detail, like)
    )]


def received_names(conn: sqlite3.Connection, tenant: str, *, like: str, except_detail: str) -> list[str]:
    """Names (matching the LIKE pattern) of the tenant's complete uploads not noted `except_detail`."""
    return [str(r[0]) for r in conn.execute(
        "SELECT name FROM files WHERE tenant = ? AND state != ? AND detail != ? AND name LIKE ?",
        (tenant, FileState.INCOMPLETE.value, except_detail, like),
    )]


def waiting(conn: sqlite3.Connection, tenant: str) -> list[FileRecord]:
    """The tenant's files waiting for their marker, oldest first."""
    return _records(conn.execute(
        "SELECT * FROM files WHERE tenant = ? AND state = ? ORDER BY id", (tenant, FileState.WAITING.value)
    ))


def release(conn: sqlite3.Connection, file_id: int, *, due_at: str, detail: str) -> None:
    """A waiting file's marker arrived: it joins the queue."""
    conn.execute(
        "UPDATE files SET state = ?, due_at = ?, detail = ? WHERE id = ?",
        (FileState.QUEUED.value, due_at, detail, file_id),
    )


def last_due(conn: sqlite3.Connection) -> str | None:
    """The latest due time of a file the worker still owes an answer."""
    row = conn.execute(
        "SELECT MAX(due_at) FROM files WHERE state IN (?, ?)", tuple(s.value for s in _PENDING_ORDER)
    ).fetchone()
    return str(row[0]) if row[0] else None


# The latest earlier upload of the same name or content (indexes files_name,
# files_sha256); [True]: before a given file id. Markers (`except_detail`) and
# cut-off uploads are no precedent.
_REPEAT = (
    "SELECT * FROM files WHERE tenant = ? AND (name = ? OR sha256 = ?)"
    f" AND state NOT IN ('{FileState.INCOMPLETE.value}') AND detail != ?"
)
REPEAT_SQL = {
    False: _REPEAT + " ORDER BY id DESC LIMIT 1",
    True: _REPEAT + " AND id < ? ORDER BY id DESC LIMIT 1",
}


def latest_repeat(
    conn: sqlite3.Connection, tenant: str, name: str, sha256: str, *, except_detail: str,
    before: int | None = None,
) -> FileRecord | None:
    """The tenant's latest upload with this name or this content (before file `before`)."""
    params: tuple[object, ...] = (tenant, name, sha256, except_detail)
    if before is not None:
        params += (before,)
    row = conn.execute(REPEAT_SQL[before is not None], params).fetchone()
    return _record(row) if row is not None else None


# -- the worker ----------------------------------------------------------------------

def in_state(conn: sqlite3.Connection, state: FileState) -> list[FileRecord]:
    """Every file in `state`, in arrival order."""
    return _records(conn.execute("SELECT * FROM files WHERE state = ? ORDER BY id", (state.value,)))


def tenants_in_state(conn: sqlite3.Connection, state: FileState) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT DISTINCT tenant FROM files WHERE state = ?",
                                            (state.value,))}


def pending_count(conn: sqlite3.Connection) -> int:
    """How many files are queued or being processed."""
    row = conn.execute(
        "SELECT COUNT(*) FROM files WHERE state IN (?, ?)", tuple(s.value for s in _PENDING_ORDER)
    ).fetchone()
    return int(row[0])


def claim(conn: sqlite3.Connection, file_id: int) -> str | None:
    """queued -> processing, unless another file of its tenant is being
    processed (a tenant's files go one at a time, in arrival order). Returns
    the file's tenant when claimed, else None. Run it in a transaction."""
    claimed = conn.execute(
        "UPDATE files SET state = ? WHERE id = ? AND state = ?"
        " AND NOT EXISTS (SELECT 1 FROM files o WHERE o.tenant = files.tenant AND o.state = ?)",
        (FileState.PROCESSING.value, file_id, FileState.QUEUED.value, FileState.PROCESSING.value),
    ).rowcount
    if not claimed:
        return None
    row = conn.execute("SELECT tenant FROM files WHERE id = ?", (file_id,)).fetchone()
    return str(row[0])


def finish(
    conn: sqlite3.Connection, file_id: int, *, verdict: str, report_json: str, counts_json: str
) -> None:
    """processing -> done, with the report (in the transaction that applied the file)."""
    conn.execute(
        "UPDATE files SET state = ?, verdict = ?, report_json = ?, counts_json = ? WHERE id = ?",
        (FileState.DONE.value, verdict, report_json, counts_json, file_id),
    )


def fail(conn: sqlite3.Connection, file_id: int, detail: str) -> None:
    """-> failed, saying why."""
    conn.execute("UPDATE files SET state = ?, detail = ? WHERE id = ?",
                 (FileState.FAILED.value, detail, file_id))


def requeue(conn: sqlite3.Connection, file_id: int, *, due_at: str | None = None) -> bool:
    """processing -> queued (a full disk, a crash); `due_at` None keeps the
    due time. False when the file was not being processed."""
    return conn.execute(
        "UPDATE files SET state = ?, due_at = COALESCE(?, due_at) WHERE id = ? AND state = ?",
        (FileState.QUEUED.value, due_at, file_id, FileState.PROCESSING.value),
    ).rowcount > 0


def unpublished(conn: sqlite3.Connection) -> list[int]:
    """Files whose report copies were not published (a crash, a full disk)."""
    return [int(r[0]) for r in conn.execute(
        "SELECT f.id FROM files f JOIN file_outputs o ON o.file_id = f.id WHERE o.published = 0"
    )]


def outputs(conn: sqlite3.Connection, file_id: int) -> Outputs | None:
    """What publishing file `file_id`'s report needs; None before it was processed."""
    row = conn.execute(
        "SELECT f.tenant, f.name, f.stored_path, f.report_json, o.errors_csv FROM files f"
        " JOIN file_outputs o ON o.file_id = f.id WHERE f.id = ?",
        (file_id,),
    ).fetchone()
    if row is None:
        return None
    return Outputs(
        tenant=str(row["tenant"]), name=str(row["name"]), stored_path=str(row["stored_path"]),
        report_json=row["report_json"],
        errors_csv=bytes(row["errors_csv"]) if row["errors_csv"] is not None else None,
    )


# -- reading (CLI, API, tests' fixtures, certify) -------------------------------------

def get(conn: sqlite3.Connection, file_id: int, *, tenant: str | None = None) -> FileRecord | None:
    """File `file_id` (of `tenant`, when given)."""
    where, params = (" AND tenant = ?", (tenant,)) if tenant is not None else ("", ())
    row = conn.execute("SELECT * FROM files WHERE id = ?" + where, (file_id, *params)).fetchone()
    return _record(row) if row is not None else None


def state_of(conn: sqlite3.Connection, file_id: int) -> FileState | None:
    row = conn.execute("SELECT state FROM files WHERE id = ?", (file_id,)).fetchone()
    return FileState(row[0]) if row is not None else None


def latest(conn: sqlite3.Connection, name: str, *, tenant: str | None = None) -> FileRecord | None:
    """The newest upload called `name` (of `tenant`, when given)."""
    where, params = ("tenant = ? AND ", (tenant,)) if tenant is not None else ("", ())
    row = conn.execute(
        f"SELECT * FROM files WHERE {where}name = ? ORDER BY id DESC LIMIT 1", (*params, name)
    ).fetchone()
    return _record(row) if row is not None else None


def listing(conn: sqlite3.Connection, tenant: str | None = None) -> list[FileRecord]:
    """Every upload (of `tenant`, when given), oldest first."""
    if tenant is None:
        return _records(conn.execute("SELECT * FROM files ORDER BY id"))
    return _records(conn.execute("SELECT * FROM files WHERE tenant = ? ORDER BY id", (tenant,)))


def recent(conn: sqlite3.Connection, limit: int) -> list[FileRecord]:
    """The `limit` newest uploads of every tenant, newest first."""
    return _records(conn.execute("SELECT * FROM files ORDER BY id DESC LIMIT ?", (limit,)))


def since(conn: sqlite3.Connection, after_id: int) -> list[FileRecord]:
    """Uploads recorded after file `after_id`, oldest first."""
    return _records(conn.execute("SELECT * FROM files WHERE id > ? ORDER BY id", (after_id,)))


def last_id(conn: sqlite3.Connection) -> int:
    """The newest file's id, 0 when there is none: a mark to read `since`."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM files").fetchone()[0])


def names(conn: sqlite3.Connection, tenant: str | None = None) -> list[str]:
    """Every distinct upload name (of `tenant`, when given)."""
    if tenant is None:
        return [str(r[0]) for r in conn.execute("SELECT DISTINCT name FROM files")]
    return [str(r[0]) for r in conn.execute("SELECT DISTINCT name FROM files WHERE tenant = ?", (tenant,))]


def tenants_named(conn: sqlite3.Connection, name: str) -> set[str]:
    """The tenants that uploaded a file called `name`."""
    return {str(r[0]) for r in conn.execute("SELECT DISTINCT tenant FROM files WHERE name = ?", (name,))}


_UPLOAD_SQL = (
    "SELECT f.*, o.errors_csv IS NOT NULL AS has_errors FROM files f"
    " LEFT JOIN file_outputs o ON o.file_id = f.id WHERE f.tenant = ?"
)


def _upload(row: sqlite3.Row) -> Upload:
    return Upload(**_fields(row), has_errors_csv=bool(row["has_errors"]))


def uploads(conn: sqlite3.Connection, tenant: str) -> list[Upload]:
    """Every upload of the tenant, newest first, incomplete ones included."""
    return [_upload(r) for r in conn.execute(_UPLOAD_SQL + " ORDER BY f.id DESC", (tenant,))]


def latest_upload(conn: sqlite3.Connection, tenant: str, name: str, *, after: int = 0) -> Upload | None:
    """The tenant's newest upload called `name` with an id above `after`."""
    row = conn.execute(
        _UPLOAD_SQL + " AND f.name = ? AND f.id > ? ORDER BY f.id DESC LIMIT 1", (tenant, name, after)
    ).fetchone()
    return _upload(row) if row is not None else None


def upload(conn: sqlite3.Connection, tenant: str, file_id: int) -> Upload | None:
    row = conn.execute(_UPLOAD_SQL + " AND f.id = ?", (tenant, file_id)).fetchone()
    return _upload(row) if row is not None else None


def purge_tenant(conn: sqlite3.Connection, tenant: str) -> None:
    """Forget the tenant's uploads and their outputs (in the caller's transaction)."""
    conn.execute(
        "DELETE FROM file_outputs WHERE file_id IN (SELECT id FROM files WHERE tenant = ?)", (tenant,)
    )
    conn.execute("DELETE FROM files WHERE tenant = ?", (tenant,))

