"""The one exception tree of bwsandbox, and the CLI exit code of each branch.

    BwsandboxError            exit 1  any failure the user can act on
    +-- UsageError            exit 2  bad arguments, unknown tenant, bad config
    +-- ConfigError           exit 2  a config file or environment value is wrong
    +-- StoreError            exit 1  the data directory or SQLite store is unusable
    +-- ServerError           exit 1  a listener could not start or stopped badly
    +-- IngestError           exit 1  a file could not be queued or applied

The validator never raises for bad *input*: bad input is findings (GUIDE §1).
These exceptions are for the tool's own failures; the CLI turns each into a
one-line message and its exit code, never a traceback.
"""

from __future__ import annotations


class BwsandboxError(Exception):
    """Base of every error bwsandbox raises on purpose."""

    exit_code = 1


class UsageError(BwsandboxError):
    exit_code = 2


class ConfigError(BwsandboxError):
    exit_code = 2


class StoreError(BwsandboxError):
    exit_code = 1


class ServerError(BwsandboxError):
    exit_code = 1


class IngestError(BwsandboxError):
    exit_code = 1
