"""The validator: bytes in, findings out (SPEC §3, §4, §6). PURE: no sockets,
no asyncio, no rich. It never raises on bad input.

Public API:
    validate(data: bytes, context: Context, *, name: str) -> Validation
"""

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
]
