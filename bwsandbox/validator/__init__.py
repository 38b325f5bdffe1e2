"""The validator: bytes in, findings out (docs/production.md §3, §4; docs/validation.md). PURE: no sockets,
no asyncio, no rich. It never raises on bad input.

Public API:
    validate(data: bytes, context: Context, *, name: str) -> Validation
    error_csv(validation) -> bytes      the error file for the Technical Contact
    report_json(report) -> str          the deterministic JSON report

Heavy libraries (numpy, polars) are imported on first use, so importing this
package stays cheap for the CLI.
"""

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
