"""All configuration is read here, layered (GUIDE convention 4):

    command-line argument > config file (DATA_DIR/config.json) > environment > default

Environment variables are `BWSANDBOX_<NAME>` for every setting (e.g.
BWSANDBOX_QUEUE_DELAY, BWSANDBOX_HTTP_PORT; the data directory is
BWSANDBOX_HOME or BWSANDBOX_DATA_DIR). Unknown keys in the config file are an error,
so a typo is never silently ignored.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from bwsandbox.errors import ConfigError

DEFAULT_DATA_DIR = ".bwsandbox"
# `serve`'s HTTP API and web UI: beside the SFTP ports 2222/2223, not Mailpit's
# 8025 (integrators often run Mailpit next to the sandbox to catch its emails).
DEFAULT_HTTP_PORT = 2280


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    host: str = "127.0.0.1"
    port: int = 2222  # production listens on 22 (docs/production.md §2); the sandbox on a high port
    eu_port: int = 2223
    # Queue (docs/production.md §5): base delay + per-MB cost + seeded jitter, in seconds.
    queue_delay: float = 0.0
    queue_per_mb: float = 0.0
    queue_jitter: float = 0.0
    queue_seed: int = 0
    smtp: str | None = None  # host:port; None writes .eml files to DATA/outbox
    reports_folder: bool = True  # the /reports folder in the tenant tree
    max_file_bytes: int = 2 * 1024**3
    max_sessions_per_tenant: int = 128  # 100 concurrent sessions are all served
    idle_timeout: float = 600.0
    lockout_attempts: int = 5
    lockout_seconds: float = 300.0
    max_auth_attempts: int = 6  # OpenSSH's MaxAuthTries (docs/server.md "Limits and protection")
    # Connections not yet logged in, per source address, and connections of
    # any kind at once: beyond either, a new connection is closed at once, so
    # idle sockets cannot use up descriptors. OpenSSH starts dropping at 10
    # (MaxStartups 10:30:100); a CI runner logs 100 clients in at once from
    # one address, and each waits at most login_timeout.
    max_startups_per_address: int = 128
    max_connections: int = 1000
    # Open SFTP file and directory handles (each may hold a descriptor): per
    # SSH connection, and in all (at most half the process's RLIMIT_NOFILE);
    # beyond either, OPEN and OPENDIR fail with an SFTP error
    # (bwsandbox/server/handles.py). Real clients hold a handful.
    max_handles_per_session: int = 256
    max_open_handles: int = 4096
    # A closed upload is picked up after this long without further operations
    # on it (rclone sets mtime after close), or when its session ends.
    pickup_quiet_seconds: float = 1.0
    engage_termination_limit: float = 0.20  # docs/production.md §5 safety net, share of users
    # Hostile and broken input (docs/security.md "Limits": what each bounds,
    # and the figures under each attack). The worker also refuses a stored
    # file over max_file_bytes, checked before it is read.
    max_decrypted_bytes: int = 256 * 1024**2  # a PGP upload's plaintext (a compression bomb stops here)
    max_columns: int = 1000  # header cells of a feed (a user file has a few dozen)
    max_json_bytes: int = 128 * 1024**2  # a JSON feed, refused before it is parsed
    max_findings_per_code: int = 1000  # findings of one code in a report; the rest are counted
    max_report_bytes: int = 16 * 1024**2  # a report's JSON (findings are cut further to fit)
    max_error_file_bytes: int = 32 * 1024**2  # the error file (/reports, the store)
    max_attachment_bytes: int = 10 * 1024**2  # the error file as attached to an email
    # A file whose processing was cut off this many times (the server died
    # while it was processing: a crash, an OOM kill) is failed, not retried.
    max_processing_attempts: int = 3
    # Files up to this size are also processed by a second worker lane, so a
    # big file never holds up another tenant's small one; 0: one lane.
    fast_lane_bytes: int = 1024**2
    # A file that met a full disk goes back to the queue after this long,
    # doubling per retry up to 300 s.
    retry_backoff_seconds: float = 5.0
    # The HTTP control plane and web UI (bwsandbox/api): off unless a port is
    # set (`serve` sets DEFAULT_HTTP_PORT; the pytest fixture only when asked).
    http_host: str = "127.0.0.1"
    http_port: int | None = None
    # Required as `Authorization: Bearer TOKEN` when set; `serve` refuses to
    # bind the API beyond loopback without one.
    api_token: str | None = None
    # Tenants (and their seeded users) declared at start, as JSON: a file's
    # path, or the JSON itself (bwsandbox/declare.py says the format).
    tenants_file: str | None = None
    tenants: str | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sandbox.db"


_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, raw: Any) -> Any:
    kind = str(_FIELD_TYPES[name])
    try:
        if "Path" in kind:
            return Path(raw)
        if "bool" in kind:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if "int" in kind and "None" not in kind:
            return int(raw)
        if kind == "int | None":
            return None if raw is None or str(raw).strip().lower() in ("", "off", "none") else int(raw)
        if "float" in kind:
            return float(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value for {name}: {raw!r}") from exc
    return None if raw in (None, "") else str(raw)


def load(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from arguments, config file, environment and defaults."""
    env = os.environ if env is None else env
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    values: dict[str, Any] = {}
    for name in _FIELD_TYPES:
        key = f"BWSANDBOX_{name.upper()}"
        if name == "data_dir" and "BWSANDBOX_HOME" in env:  # the historical name wins
            key = "BWSANDBOX_HOME"
        if key in env:
            values[name] = _coerce(name, env[key])
    data_dir = Path(overrides.get("data_dir", values.get("data_dir", DEFAULT_DATA_DIR)))
    config_file = data_dir / "config.json"
    if config_file.exists() and not config_file.is_file():
        raise ConfigError(f"{config_file}: exists but is not a file")
    if config_file.is_file():
        try:
            from_file = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{config_file}: not valid JSON ({exc})") from exc
        if not isinstance(from_file, dict):
            raise ConfigError(f"{config_file}: expected a JSON object")
        unknown = sorted(set(from_file) - set(_FIELD_TYPES))
        if unknown:
            raise ConfigError(f"{config_file}: unknown setting(s): {', '.join(unknown)}")
        values.update({k: _coerce(k, v) for k, v in from_file.items()})
    values.update({k: _coerce(k, v) for k, v in overrides.items() if k in _FIELD_TYPES})
    values["data_dir"] = data_dir
    settings = replace(Settings(), **values)
    _check(settings)
    return settings


# Delays, limits and timeouts: a negative (or NaN/infinite) value is never
# meant, and would surface later as an OverflowError or a silent no-op.
_NON_NEGATIVE = (
    "queue_delay", "queue_per_mb", "queue_jitter", "max_file_bytes", "max_sessions_per_tenant",
    "idle_timeout", "lockout_attempts", "lockout_seconds", "max_auth_attempts",
    "max_startups_per_address", "max_connections", "max_handles_per_session", "max_open_handles",
    "pickup_quiet_seconds", "engage_termination_limit",
    "max_decrypted_bytes", "max_columns", "max_json_bytes", "max_findings_per_code", "max_report_bytes",
    "max_error_file_bytes", "max_attachment_bytes", "max_processing_attempts", "fast_lane_bytes",
    "retry_backoff_seconds",
)

# Lower bounds beyond 0: (at least, what it means).
_AT_LEAST = {
    "max_columns": (1, "a feed has at least one column"),
    "max_findings_per_code": (1, "at least one finding of each code is shown"),
    "max_processing_attempts": (1, "a file is processed at least once"),
    "max_report_bytes": (64 * 1024, "64 KiB at least: the report's counts and first findings"),
    "max_error_file_bytes": (4096, "4 KiB at least: the header and a first row"),
    "max_attachment_bytes": (4096, "4 KiB at least: the header and a first row"),
}


# Upper bounds of settings that are also checked as _NON_NEGATIVE: (at most, what it means).
_AT_MOST = {
    "engage_termination_limit": (1, "a share of users, 0-1"),
}


def _check(settings: Settings) -> None:
    """Range checks, whichever layer a value came from: a bad value is a
    one-line ConfigError at startup, not a traceback in the server later."""
    for name in ("port", "eu_port", "http_port"):
        port = getattr(settings, name)
        if port is not None and not 0 <= port <= 65535:
            raise ConfigError(f"invalid value for {name}: {port} (a port is 0-65535; 0 picks a free one)")
    for name in _NON_NEGATIVE:
        value = getattr(settings, name)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"invalid value for {name}: {value!r} (must be a number >= 0)")
    for name, (most, hint) in _AT_MOST.items():
        value = getattr(settings, name)
        if value > most:
            raise ConfigError(f"invalid value for {name}: {value!r} ({hint})")
    for name, (least, hint) in _AT_LEAST.items():
        value = getattr(settings, name)
        if value < least:
            raise ConfigError(f"invalid value for {name}: {value!r} ({hint})")
    if settings.smtp is not None:
        parse_smtp(settings.smtp)


def parse_smtp(value: str) -> tuple[str, int]:
    """`host:port` with a port 1-65535 (docs/production.md §1 delivery of Technical Contact
    emails); a ConfigError otherwise."""
    host, _, port = value.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):  # [::1]:25
        host = host[1:-1]
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"invalid value for smtp: {value!r} (expected HOST:PORT, port 1-65535)")
    return host, int(port)
