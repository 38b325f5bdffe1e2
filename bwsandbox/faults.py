"""Faults on demand: what production does to an export job on a bad day,
switched on per tenant (or for a whole endpoint) while the sandbox runs.

A fault is a row in the store, so every surface shares it: the CLI
(`bwsandbox fault add|list|clear`, from another process), the pytest fixture
(`with bwsandbox.fault(...)`) and certify. The server asks `fire()` at each
moment a kind applies to and acts on the fault it gets back.

- `disconnect` (at an upload): the connection drops after `after_bytes`
  bytes of the file;
- `permission-denied` (at an upload): opening the file for writing fails:
  permission denied;
- `disk-full` (at an upload): writes past `after_bytes` fail as a full disk
  does on OpenSSH's server;
- `slow` (at an upload): the file's data is taken at `kbps` kilobytes a
  second at most;
- `refuse-login` (at a login): the right password is refused, as after a
  password rotation;
- `stall` (an endpoint's at each connection, a tenant's at its login): the
  banner (endpoint only), authentication and every reply wait `delay_ms`;
- `host-key` (at a connection): another host key, as a man in the middle
  would present one; the real keys stay as they are;
- `unavailable` (an endpoint's at each connection, a tenant's at its login):
  the connection is closed at once / the login is refused and disconnected.

`times`: the fault fires that many times, then lifts itself (None: until
cleared). `probability` with `seed`: each chance is drawn from a generator
seeded with (seed, draw number), so a flaky run is reproducible. A fault
applies to one tenant or, with no tenant, to a whole endpoint (every tenant
of the region). `stall` and `unavailable` of an endpoint act on each
connection before anyone logs in; a tenant's act at its login. `host-key` is
presented before a user is known: endpoint only.
"""

from __future__ import annotations

import enum
import random
import sqlite3
from dataclasses import dataclass

from bwsandbox.errors import UsageError
from bwsandbox.store import INT_MAX, INT_MIN, fits, transaction


class FaultKind(enum.StrEnum):
    DISCONNECT = "disconnect"
    PERMISSION_DENIED = "permission-denied"
    DISK_FULL = "disk-full"
    SLOW = "slow"
    REFUSE_LOGIN = "refuse-login"
    STALL = "stall"
    HOST_KEY = "host-key"
    UNAVAILABLE = "unavailable"


class Moment(enum.StrEnum):
    """When the server asks: each kind fires at one of these."""

    CONNECTION = "connection"  # a TCP connection arrives (no user known yet)
    LOGIN = "login"  # a user authenticated (or is about to be told yes)
    UPLOAD = "upload"  # a file is opened for writing in the drop folder


_MOMENT_OF: dict[FaultKind, Moment] = {
    FaultKind.DISCONNECT: Moment.UPLOAD,
    FaultKind.PERMISSION_DENIED: Moment.UPLOAD,
    FaultKind.DISK_FULL: Moment.UPLOAD,
    FaultKind.SLOW: Moment.UPLOAD,
    FaultKind.REFUSE_LOGIN: Moment.LOGIN,
    FaultKind.HOST_KEY: Moment.CONNECTION,
}
# An endpoint's stall or unavailability acts on the connection, before anyone
# logs in; a tenant's, at its login (and, for a stall, on the rest of its session).
_BY_SCOPE = frozenset({FaultKind.STALL, FaultKind.UNAVAILABLE})
# The host key is presented before a user is known: endpoint-wide only.
ENDPOINT_ONLY = frozenset({FaultKind.HOST_KEY})


def moment_of(kind: FaultKind, *, endpoint_wide: bool) -> Moment:
    if kind in _BY_SCOPE:
        return Moment.CONNECTION if endpoint_wide else Moment.LOGIN
    return _MOMENT_OF[kind]


# What each kind needs, and the upper bounds of its numbers (a week of delay,
# 2 GiB after-bytes) so a typo is an error, not a hung test.
MAX_DELAY_MS = 7 * 24 * 3600 * 1000
MAX_BYTES = 2**31


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    id: int
    region: str
    tenant: str | None  # None: every tenant of the region's endpoint
    kind: FaultKind
    after_bytes: int = 0
    times: int | None = None  # how many more times it fires; None: until cleared
    delay_ms: int = 0
    kbps: int = 0
    probability: float = 1.0
    seed: int = 0
    fired: int = 0
    created_at: str = ""

    def describe(self) -> str:
        """One line a person reads: what it does, to whom, how often."""
        what = {
            FaultKind.DISCONNECT: f"drop the connection after {self.after_bytes} bytes of an upload",
            FaultKind.PERMISSION_DENIED: "refuse to open files for writing (permission denied)",
            FaultKind.DISK_FULL: f"fail writes past {self.after_bytes} bytes as a full disk does",
            FaultKind.SLOW: f"accept upload data at {self.kbps} KB/s at most",
            FaultKind.REFUSE_LOGIN: "refuse the right password",
            FaultKind.STALL: (f"delay the banner, authentication and each reply by {self.delay_ms} ms"
                              if self.tenant is None
                              else f"delay authentication and each reply by {self.delay_ms} ms"),
            FaultKind.HOST_KEY: "present another host key (a man in the middle)",
            FaultKind.UNAVAILABLE: "close connections at once" if self.tenant is None
            else "refuse logins and disconnect",
        }[self.kind]
        who = f"tenant {self.tenant}" if self.tenant else f"every tenant on the {self.region} endpoint"
        how = "until cleared" if self.times is None else f"{self.times} more time(s)"
        if self.probability < 1:
            how += f", each with probability {self.probability:g} (seed {self.seed})"
        return f"#{self.id} {self.kind}: {what}; {who}; {how}"

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "region": self.region, "tenant": self.tenant, "kind": str(self.kind),
            "after_bytes": self.after_bytes, "times": self.times, "delay_ms": self.delay_ms,
            "kbps": self.kbps, "probability": self.probability, "seed": self.seed,
            "fired": self.fired, "created_at": self.created_at, "description": self.describe(),
        }


def _from_row(row: sqlite3.Row) -> Fault:
    return Fault(
        id=row["id"], region=row["region"], tenant=row["tenant"], kind=FaultKind(row["kind"]),
        after_bytes=row["after_bytes"], times=row["times"], delay_ms=row["delay_ms"], kbps=row["kbps"],
        probability=row["probability"], seed=row["seed"], fired=row["fired"], created_at=row["created_at"],
    )


def add(
    conn: sqlite3.Connection,
    *,
    kind: FaultKind | str,
    region: str,
    tenant: str | None,
    created_at: str,
    after_bytes: int = 0,
    times: int | None = None,
    delay_ms: int = 0,
    kbps: int = 0,
    probability: float = 1.0,
    seed: int = 0,
) -> Fault:
    """Record a fault; a UsageError says what is wrong with the request."""
    try:
        kind = FaultKind(kind)
    except ValueError:
        raise UsageError(
            f"unknown fault kind {kind!r}; one of: {', '.join(k.value for k in FaultKind)}"
        ) from None
    if kind in ENDPOINT_ONLY and tenant is not None:
        raise UsageError(
            f"{kind} acts before anyone logs in, so it applies to a whole endpoint: "
            "give --region instead of --tenant"
        )
    if times is not None and times < 1:
        raise UsageError(f"times must be at least 1 (or left out: until cleared), not {times}")
    if times is not None and times > INT_MAX:
        raise UsageError(f"times must be at most {INT_MAX} (or left out: until cleared), not {times}")
    if not 0 <= after_bytes <= MAX_BYTES:
        raise UsageError(f"after_bytes must be 0-{MAX_BYTES}, not {after_bytes}")
    if not 0 <= delay_ms <= MAX_DELAY_MS:
        raise UsageError(f"delay_ms must be 0-{MAX_DELAY_MS}, not {delay_ms}")
    if kind is FaultKind.STALL and delay_ms <= 0:
        raise UsageError("stall needs a delay: --delay-ms D (milliseconds, more than 0)")
    if kind is FaultKind.SLOW and kbps <= 0:
        raise UsageError("slow needs a bandwidth: --kbps R (kilobytes a second, more than 0)")
    if not 0 <= kbps <= INT_MAX:
        raise UsageError(f"kbps must be 0-{INT_MAX}, not {kbps}")
    if not fits(seed):
        raise UsageError(f"seed must be {INT_MIN} to {INT_MAX}, not {seed}")
    if not 0 < probability <= 1:
        raise UsageError(f"probability must be more than 0 and at most 1, not {probability}")
    with transaction(conn):
        if tenant is not None:
            row = conn.execute("SELECT region FROM tenants WHERE name = ?", (tenant,)).fetchone()
            if row is None:
                raise UsageError(f"no tenant {tenant!r}")
            region = row["region"]
        cur = conn.execute(
            "INSERT INTO faults (region, tenant, kind, after_bytes, times, delay_ms, kbps, probability,"
            " seed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (region, tenant, str(kind), after_bytes, times, delay_ms, kbps, probability, seed, created_at),
        )
        fault_id = cur.lastrowid
    row = conn.execute("SELECT * FROM faults WHERE id = ?", (fault_id,)).fetchone()
    return _from_row(row)


def listing(conn: sqlite3.Connection, *, tenant: str | None = None, region: str | None = None) -> list[Fault]:
    """Active faults: a tenant's (its own and its endpoint's), or all."""
    sql, args = "SELECT * FROM faults", list[object]()
    if tenant is not None:
        sql += (" WHERE tenant = ?"
                " OR (tenant IS NULL AND region = (SELECT region FROM tenants WHERE name = ?))")
        args = [tenant, tenant]
    elif region is not None:
        sql += " WHERE region = ?"
        args = [region]
    return [_from_row(r) for r in conn.execute(sql + " ORDER BY id", args)]


def clear(
    conn: sqlite3.Connection, *, tenant: str | None = None, region: str | None = None,
    fault_id: int | None = None,
) -> int:
    """Remove faults (one by id, a tenant's own, an endpoint's, or all); returns how many."""
    sql, args = "DELETE FROM faults", list[object]()
    if fault_id is not None and not fits(fault_id):
        return 0  # beyond any id the store can hold: no such fault
    if fault_id is not None:
        sql, args = sql + " WHERE id = ?", [fault_id]
    elif tenant is not None:
        sql, args = sql + " WHERE tenant = ?", [tenant]
    elif region is not None:
        sql, args = sql + " WHERE region = ?", [region]
    with transaction(conn):
        return conn.execute(sql, args).rowcount


def fire(
    conn: sqlite3.Connection, *, moment: Moment, region: str, tenant: str | None,
    kinds: frozenset[FaultKind] | None = None,
) -> Fault | None:
    """The fault that fires now, if any: the oldest active one for this
    moment, tenant and endpoint whose chance comes up. Counts it (and lifts
    it when its times are used up) in the same transaction, so two
    connections never both take the last time. Without any fault recorded,
    one indexed read."""
    if conn.execute("SELECT 1 FROM faults WHERE region = ? LIMIT 1", (region,)).fetchone() is None:
        return None
    with transaction(conn):
        rows = conn.execute(
            "SELECT * FROM faults WHERE region = ? AND (tenant IS NULL OR tenant = ?) ORDER BY id",
            (region, tenant),
        ).fetchall()
        for row in rows:
            fault = _from_row(row)
            if moment_of(fault.kind, endpoint_wide=fault.tenant is None) is not moment:
                continue
            if kinds is not None and fault.kind not in kinds:
                continue
            draw = row["draws"]
            if fault.probability < 1:
                chance = random.Random(f"{fault.seed}:{draw}").random()
                conn.execute("UPDATE faults SET draws = draws + 1 WHERE id = ?", (fault.id,))
                if chance >= fault.probability:
                    continue
            if fault.times is not None and fault.times <= 1:
                conn.execute("DELETE FROM faults WHERE id = ?", (fault.id,))
            else:
                conn.execute(
                    "UPDATE faults SET fired = fired + 1, times = times - 1 WHERE id = ?", (fault.id,)
                )
            return fault
    return None
