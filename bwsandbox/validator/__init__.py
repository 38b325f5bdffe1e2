"""The validator: bytes in, findings out (SPEC §3, §4, §6). PURE: no sockets,
no asyncio, no rich. It never raises on bad input.

Public API:
    validate(data: bytes, context: Context, *, name: str) -> Validation
    error_csv(validation) -> bytes      the error file for the Technical Contact
    report_json(report) -> str          the deterministic JSON report

Heavy libraries (numpy, polars) are imported on first use, so importing this
package stays cheap for the CLI.
"""

import os as _os

# polars allocates through its own jemalloc, which by default keeps freed pages
# for ~10 s: reading a big feed part by part then holds every part at once.
# Returning pages at once keeps a 1M-row validation under 400 MB (issue #2) at
# a small cost in speed. Only effective if polars is not imported yet; set the
# variable yourself to choose otherwise (README "Benchmarks -> Validator").
_os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

from bwsandbox.validator.engine import validate
from bwsandbox.validator.errorfile import error_csv, report_json
from bwsandbox.validator.model import (
    ApplicableRow,
    Context,
    DirectorySnapshot,
    ExistingUser,
    Finding,
    Report,
    Validation,
    Verdict,
)

__all__ = [
    "ApplicableRow",
    "Context",
    "DirectorySnapshot",
    "ExistingUser",
    "Finding",
    "Report",
    "Validation",
    "Verdict",
    "error_csv",
    "report_json",
    "validate",
]
