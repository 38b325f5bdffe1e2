"""Tenants declared at start, so the sandbox runs as a CI service container
with nothing to write first:

    BWSANDBOX_TENANTS_FILE=tenants.json      (setting tenants_file)
    BWSANDBOX_TENANTS='[{"name": "acme", "password": "s3cret"}]'   (setting tenants)

Either holds a JSON list of tenants, or {"tenants": [...]}. Each tenant takes
the keys of `POST /api/v1/tenants`: name (required), username (default: the
name), password (generated when omitted, and printed), region, profile,
licenses, contact, locale, custom_keys, authorized_keys, and users (existing
users to seed, as an admin's upload). A tenant that already exists is kept
as it is (a restart changes nothing); an unknown key or a bad value is a
ConfigError naming the tenant, before anything listens.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bwsandbox import control
from bwsandbox import tenants as tenants_mod
from bwsandbox.config import Settings
from bwsandbox.errors import ConfigError, UsageError

_KEYS = {f.name for f in dataclasses.fields(control.TenantSpec)} | {"users"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Declared:
    name: str
    created: bool
    password: str | None  # only for a tenant created now


def declared(settings: Settings) -> list[dict[str, Any]]:
    """The tenant declarations of both settings, checked for shape."""
    found: list[dict[str, Any]] = []
    sources: list[tuple[str, str]] = []
    if settings.tenants_file:
        path = Path(settings.tenants_file)
        try:
            sources.append((str(path), path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"tenants_file {path}: cannot read ({exc.strerror or exc})") from exc
    if settings.tenants:
        sources.append(("BWSANDBOX_TENANTS", settings.tenants))
    for where, text in sources:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc})") from exc
        if isinstance(data, dict) and set(data) == {"tenants"}:
            data = data["tenants"]
        if not isinstance(data, list):
            raise ConfigError(f"{where}: expected a JSON list of tenants, or {{\"tenants\": [...]}}")
        for index, entry in enumerate(data):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ConfigError(f"{where}: tenant #{index} needs at least a \"name\"")
            unknown = sorted(set(entry) - _KEYS)
            if unknown:
                raise ConfigError(f"{where}: tenant {entry['name']!r}: unknown key(s) {', '.join(unknown)}; "
                                  f"keys are {', '.join(sorted(_KEYS))}")
            found.append(entry)
    return found


def apply(conn: sqlite3.Connection, settings: Settings) -> list[Declared]:
    """Create every declared tenant that does not exist yet, and seed its users."""
    out = []
    for entry in declared(settings):
        name = entry["name"]
        if tenants_mod.get(conn, name) is not None:
            out.append(Declared(name=name, created=False, password=None))
            continue
        fields = {k: v for k, v in entry.items() if k != "users"}
        try:
            tenant, password = control.create_tenant(conn, settings, control.TenantSpec(**fields))
        except (UsageError, TypeError) as exc:
            raise ConfigError(f"declared tenant {name!r}: {exc}") from exc
        users = entry.get("users") or []
        try:
            control.seed_users(conn, settings, tenant, users)
        except UsageError as exc:
            control.delete_tenant(conn, settings, tenant)
            raise ConfigError(f"declared tenant {name!r}: {exc}") from exc
        out.append(Declared(name=name, created=True, password=None if entry.get("password") else password))
    return out
