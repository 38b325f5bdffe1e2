"""bwsandbox must not change the process it is installed into: an
integrator's suite also uses asyncio, asyncssh, cryptography and the csv
module for its own code. Each check runs in a fresh interpreter, so nothing
this session already imported (the plugin, other tests' sandbox) hides it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
CSV_DEFAULT_FIELD_SIZE_LIMIT = 131072  # CPython's _csv default

# Imports one module; reports whether asyncssh got imported (and from where,
# the bwsandbox frames of the first import's stack) and csv.field_size_limit
# (with who set it).
PROBE = r"""
import csv, importlib, json, sys, traceback

def bwsandbox_frames():
    return [f"{f.filename.split('site-packages/')[-1]}:{f.lineno} {f.name}"
            for f in traceback.extract_stack()[:-2] if "bwsandbox" in f.filename]

first_asyncssh_import = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "asyncssh" and not first_asyncssh_import:
            first_asyncssh_import.append(bwsandbox_frames())
        return None

sys.meta_path.insert(0, Watch())
limit_setters = []
real_limit = csv.field_size_limit

def field_size_limit(*args):
    if args:
        limit_setters.append(bwsandbox_frames())
    return real_limit(*args)

csv.field_size_limit = field_size_limit
importlib.import_module(sys.argv[1])
import _csv
print(json.dumps({
    "asyncssh": "asyncssh" in sys.modules,
    "asyncssh_imported_from": first_asyncssh_import[0] if first_asyncssh_import else [],
    "field_size_limit": _csv.field_size_limit(),
    "limit_set_from": limit_setters,
}))
"""


def probe(module: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, module], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"importing {module} failed:\n{proc.stderr}"
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("module", ["bwsandbox", "bwsandbox.testing", "bwsandbox.pytest_plugin"])
def test_importing_does_not_import_asyncssh(module: str) -> None:
    got = probe(module)
    where = " <- ".join(reversed(got["asyncssh_imported_from"])) or "outside bwsandbox's frames"
    assert got["asyncssh"] is False, f"asyncssh imported by {module}: {where}"


@pytest.mark.parametrize("module", ["bwsandbox", "bwsandbox.testing", "bwsandbox.pytest_plugin"])
def test_importing_leaves_the_csv_field_size_limit(module: str) -> None:
    got = probe(module)
    where = "; ".join(" <- ".join(reversed(frames)) for frames in got["limit_set_from"]) or "?"
    assert got["field_size_limit"] == CSV_DEFAULT_FIELD_SIZE_LIMIT, (
        f"csv.field_size_limit() is {got['field_size_limit']} after importing {module}"
        f" (default {CSV_DEFAULT_FIELD_SIZE_LIMIT}), set by {where}"
    )


def test_a_sandbox_serving_an_upload_leaves_asyncssh_asyncio_cryptography_unchanged() -> None:
    proc = subprocess.run(
        [sys.executable, str(HERE / "sandbox_side_effects.py")],
        capture_output=True, text=True, timeout=180, check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("{"), f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(lines[-1])
    assert result["report_verdict"] == "accepted", result
    differ = {k: result[k] for k in ("changed", "removed", "added") if result[k]}
    assert not differ, f"attributes that differ after the sandbox ran: {json.dumps(differ, indent=1)}"
    assert proc.returncode == 0, proc.stderr
