"""The on-disk layout of each tenant: the chroot the SFTP server shows (docs/production.md §1, §2),
shared by the server and the ingest side (neither owns it).

    DATA_DIR/tenants/<region>/<tenant>/root/     what the client sees as `/`
        incoming/     core profile: the drop folder, the only writable place
        reports/      read-only for the client; the ingest side writes here
                      (reports_folder setting)

The engage profile drops into the home folder itself (docs/production.md §1 [decided]), so
there `/` is the writable drop folder. The ingest side finds the tree with
`tenant_root()` and writes reports with `reports_dir()`; the client only reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from bwsandbox.spec.fields import Profile

if TYPE_CHECKING:
    from bwsandbox.tenants import Tenant

INCOMING = "incoming"
REPORTS = "reports"

# Names clients use while a transfer is in progress, renamed at the end
# (docs/server.md "Pickup": WinSCP `*.filepart`, lftp `.in.NAME`; dot-files; `*.tmp`).
# Never picked up: the final name is.
TEMP_SUFFIXES = (".filepart", ".part", ".partial", ".tmp", ".temp")

# An upload's mode on disk: OPEN_MODE while the client writes it, CLOSED_MODE
# once the server saw it closed cleanly (complete). After a crash, start-up
# recovery picks up the closed ones and records the others as incomplete.
OPEN_MODE = 0o600
CLOSED_MODE = 0o644


def tenant_home(data_dir: Path, tenant: Tenant) -> Path:
    """Everything the sandbox keeps for one tenant: its SFTP tree (`root/`),
    received files, PGP key."""
    return data_dir / "tenants" / str(tenant.region) / tenant.name


def tenant_root(data_dir: Path, tenant: Tenant) -> Path:
    """The directory the tenant sees as `/`."""
    return tenant_home(data_dir, tenant) / "root"


def drop_dir(data_dir: Path, tenant: Tenant) -> Path:
    """The drop folder on disk."""
    return tenant_root(data_dir, tenant) / drop_folder(tenant).lstrip("/")


def reports_dir(data_dir: Path, tenant: Tenant) -> Path:
    """Where the ingest side writes reports the tenant may download."""
    return tenant_root(data_dir, tenant) / REPORTS


def drop_folder(tenant: Tenant) -> str:
    """The client-visible drop folder: `/incoming` (core) or `/` (engage)."""
    return "/" if tenant.profile is Profile.ENGAGE else "/" + INCOMING


def ensure_tree(data_dir: Path, tenant: Tenant, *, reports_folder: bool) -> Path:
    root = tenant_root(data_dir, tenant)
    root.mkdir(parents=True, exist_ok=True)
    if tenant.profile is Profile.CORE:
        (root / INCOMING).mkdir(exist_ok=True)
    if reports_folder:
        (root / REPORTS).mkdir(exist_ok=True)
    return root


def is_temporary(name: str) -> bool:
    """A name a client uploads under before renaming it (never picked up)."""
    return name.startswith(".") or name.lower().endswith(TEMP_SUFFIXES)


NAME_MAX = 255  # bytes in one file name (ext4, xfs, btrfs, tmpfs, APFS)


def fit_name(name: str, room: int) -> str:
    """`name` as a file name that leaves `room` bytes for a prefix or suffix
    the sandbox adds (a spool stamp, `.report.json`): unchanged when it fits,
    else its start, a hash of the whole name and its last extension, so two
    long names never meet and `.csv` stays visible. Whoever needs the real
    name keeps it (the store; the spool's `names/` sidecars)."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) + room <= NAME_MAX:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    dot = name.rfind(".")
    suffix = name[dot:] if dot > 0 and len(name) - dot <= 16 else ""
    keep = NAME_MAX - room - len(digest) - 2 - len(suffix.encode("utf-8", "surrogateescape"))
    head = raw[: max(keep, 0)].decode("utf-8", "ignore")  # never half a character
    return f"{head}~{digest}~{suffix}"
