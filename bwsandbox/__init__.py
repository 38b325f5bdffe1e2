"""bwsandbox: a local, faithful stand-in for the Betterworks SFTP user feed.

The public API (docs/python-api.md); every other module is private to the package:

    SandboxServer, SandboxHandle,   a sandbox inside your own tests or scripts
    TenantConfig, DirectoryUser     (bwsandbox.testing; the pytest plugin wraps them)
    Settings                        the sandbox's settings (bwsandbox.config)
    validate                        one file in, a Judgement out: its findings and plan against
                                    the directory a Context gives (or an empty one); never
                                    raises on bad input
    Judgement, Report, Finding,     what validate returns, and what a finding is
    Severity, Context
    BwsandboxError                  the base of every error bwsandbox raises on purpose

Importing `bwsandbox` loads none of them: each name is imported when it is
first read (a module `__getattr__`, PEP 562), so the package stays a light
guest in an integrator's process (no server, asyncssh, numpy or polars until
they are used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from bwsandbox._version import __version__

if TYPE_CHECKING:
    from bwsandbox.config import Settings
    from bwsandbox.errors import BwsandboxError
    from bwsandbox.ingest.plan import Judgement, validate
    from bwsandbox.spec.codes import Severity
    from bwsandbox.testing import DirectoryUser, SandboxHandle, SandboxServer, TenantConfig
    from bwsandbox.validator import Context, Finding, Report

# Each public name and the module that defines it.
_HOMES = {
    "SandboxServer": "bwsandbox.testing",
    "SandboxHandle": "bwsandbox.testing",
    "TenantConfig": "bwsandbox.testing",
    "DirectoryUser": "bwsandbox.testing",
    "Settings": "bwsandbox.config",
    "validate": "bwsandbox.ingest.plan",
    "Judgement": "bwsandbox.ingest.plan",
    "Report": "bwsandbox.validator",
    "Finding": "bwsandbox.validator",
    "Context": "bwsandbox.validator",
    "Severity": "bwsandbox.spec.codes",
    "BwsandboxError": "bwsandbox.errors",
}

__all__ = [
    "BwsandboxError",
    "Context",
    "DirectoryUser",
    "Finding",
    "Judgement",
    "Report",
    "SandboxHandle",
    "SandboxServer",
    "Settings",
    "Severity",
    "TenantConfig",
    "__version__",
    "validate",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bwsandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
