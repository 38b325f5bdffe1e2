"""The upload queue has one owner: bwsandbox/ingest/files.py holds the
`files` table's states and every statement over it, and the ingest layer
never imports the sandbox that runs it."""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

import pytest

import bwsandbox
from bwsandbox import store
from bwsandbox.ingest import files
from bwsandbox.ingest.files import FileState

PACKAGE = Path(bwsandbox.__file__).parent
OWNER = PACKAGE / "ingest" / "files.py"

# SQL that reads or writes the table (`files_name`, `file_outputs` are other names).
FILES_SQL = re.compile(r"\b(?:FROM|UPDATE|INTO|JOIN)\s+\"?files\b")
# A state spelled as an SQL literal next to the column or a statement.
STATE_SQL = re.compile(
    r"\b(?:state|SELECT|UPDATE|INSERT|WHERE|CHECK)\b.*'(?:" + "|".join(s.value for s in FileState) + ")'"
)


def _hits(pattern: re.Pattern[str], *, also_allowed: tuple[Path, ...] = ()) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != OWNER and path not in also_allowed
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]


def test_the_patterns_catch_what_they_are_for() -> None:
    """Each pattern flags the statement it exists to forbid (else the tests below prove nothing)."""
    for sql in ("SELECT * FROM files WHERE id = ?", 'DELETE FROM "files"', "UPDATE files SET x = 1",
                "INSERT INTO files (id)", "SELECT 1 FROM dir_history h JOIN files f ON f.id = h.file_id"):
        assert FILES_SQL.search(sql), sql
    for sql in ("FROM file_outputs", "INDEX files_name ON files (name)", "the uploaded files"):
        assert not FILES_SQL.search(sql), sql
    assert STATE_SQL.search("UPDATE x SET state = 'done' WHERE id = ?")
    assert STATE_SQL.search("WHERE state IN ('queued', 'processing')")
    assert not STATE_SQL.search("state TEXT NOT NULL DEFAULT 'pending'")


def test_only_the_owner_writes_sql_over_files() -> None:
    assert _hits(FILES_SQL) == [], "SQL over `files` belongs in bwsandbox/ingest/files.py"
    assert FILES_SQL.search(OWNER.read_text(encoding="utf-8"))  # the owner is where they went


def test_no_state_is_an_sql_literal_outside_the_owner() -> None:
    # The schema's CHECK is the one mirror, checked against the enum below.
    store_schema = PACKAGE / "store.py"
    assert _hits(STATE_SQL, also_allowed=(store_schema,)) == [], (
        "use FileState (bwsandbox/ingest/files.py), not a literal state"
    )


def test_the_stored_states_are_the_enum_and_unchanged(tmp_path: Path) -> None:
    """Stored data and JSON output keep their values; the schema's CHECK
    (spelled out in store.py, the layer below) lists exactly the enum's."""
    assert [s.value for s in FileState] == ["incomplete", "waiting", "queued", "processing", "done", "failed"]
    [table] = [sql for sql in store.SCHEMA if "CREATE TABLE IF NOT EXISTS files (" in sql]
    check = re.search(r"CHECK \(state IN\s*\(([^)]*)\)\)", table)
    assert check is not None
    assert re.findall(r"'([a-z]+)'", check.group(1)) == [s.value for s in FileState]
    conn = store.connect(tmp_path / "s.db")
    conn.execute("INSERT INTO tenants (name, region, profile, username, password_hash, created_at)"
                 " VALUES ('t', 'us', 'core', 't', 'x', 'now')")
    for state in FileState:
        files.insert(conn, tenant="t", name=f"{state}.csv", size=1, sha256="h", received_at="now",
                     state=state, detail="")
    assert {r.name: r.state for r in files.listing(conn, "t")} == {f"{s}.csv": s for s in FileState}
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO files (tenant, name, bytes, sha256, received_at, state)"
                     " VALUES ('t', 'x', 1, 'h', 'now', 'lost')")
    conn.close()


HIGHER = ("bwsandbox.sandbox", "bwsandbox.parts", "bwsandbox.cli", "bwsandbox.api", "bwsandbox.certify",
          "bwsandbox.testing", "bwsandbox.pytest_plugin", "bwsandbox.control")


def _imports(source: str) -> set[str]:
    """Every module `source` imports, TYPE_CHECKING blocks and function bodies included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_ingest_layer_never_imports_the_layers_above_it() -> None:
    """The worker is a service of the sandbox, not its client: it sees its
    host through a protocol of its own (`worker.Host`), even for type hints."""
    hint_only = "if TYPE_CHECKING:\n    from bwsandbox.sandbox import Sandbox\n"
    assert "bwsandbox.sandbox" in _imports(hint_only)  # a type hint's import counts
    wrong = sorted(
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in (PACKAGE / "ingest").rglob("*.py")
        for module in _imports(path.read_text(encoding="utf-8"))
        if any(module == h or module.startswith(h + ".") for h in HIGHER)
    )
    assert wrong == []
