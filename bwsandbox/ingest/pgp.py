"""PGP: each tenant's sandbox key, and decrypting uploads with it (SPEC §1).

Engage production requires files encrypted with the vendor's public key
[doc]; the sandbox plays the vendor with one key per tenant, generated on
demand and kept in DATA/tenants/<region>/<tenant>/pgp/ (secret key 0600).
`bwsandbox pgp export-key --tenant T` prints the public key integrators
encrypt to. In the core profile `.pgp`/`.gpg` uploads are decrypted when the
tenant has a key [decided].

The library is pysequoia (Python bindings of Sequoia-PGP, a maintained
OpenPGP implementation in Rust): key generation, encryption and decryption
in-process, no gpg-agent or keyring state to manage.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pysequoia

from bwsandbox import layout
from bwsandbox.tenants import Tenant

PGP_SUFFIXES = (".pgp", ".gpg")


class PgpProblem(Exception):
    """Why an upload could not be decrypted; the message goes into the report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def key_dir(data_dir: Path, tenant: Tenant) -> Path:
    return layout.tenant_home(data_dir, tenant) / "pgp"


def has_key(data_dir: Path, tenant: Tenant) -> bool:
    return (key_dir(data_dir, tenant) / "secret.asc").is_file()


def ensure_key(data_dir: Path, tenant: Tenant) -> pysequoia.Tsk:
    """The tenant's secret key, generated the first time it is needed."""
    folder = key_dir(data_dir, tenant)
    secret = folder / "secret.asc"
    if secret.is_file():
        return pysequoia.Tsk.from_bytes(secret.read_bytes())
    folder.mkdir(parents=True, exist_ok=True)
    tsk = pysequoia.Tsk.generate(f"bwsandbox {tenant.name} <{tenant.name}@bwsandbox.invalid>")
    tmp = folder / f"secret.asc.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(str(tsk))
    try:
        # link() fails if the key exists: when the worker and `pgp export-key`
        # race, the first key wins and both hand out that one.
        os.link(tmp, secret)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return pysequoia.Tsk.from_bytes(secret.read_bytes())


def public_key(data_dir: Path, tenant: Tenant) -> str:
    """The armored public key integrators encrypt to."""
    return str(ensure_key(data_dir, tenant).extract_certificate())


def is_pgp_name(name: str) -> bool:
    return name.lower().endswith(PGP_SUFFIXES)


def plain_name(name: str) -> str:
    return name[:-4] if is_pgp_name(name) else name


def looks_encrypted(data: bytes) -> bool:
    """ASCII armor, or a binary OpenPGP packet header (bit 7 set)."""
    head = data.lstrip()[:64]
    return head.startswith(b"-----BEGIN PGP MESSAGE-----") or (bool(data) and data[0] & 0x80 != 0)


def decrypt(data: bytes, data_dir: Path, tenant: Tenant, name: str) -> bytes:
    """Decrypt an upload with the tenant's sandbox key, or raise PgpProblem."""
    if not looks_encrypted(data):
        raise PgpProblem(
            "PGP_NOT_ENCRYPTED",
            f"{name} is named like an encrypted file but is not PGP-encrypted. Encrypt it with the "
            f"tenant's public key (bwsandbox pgp export-key --tenant {tenant.name}).",
        )
    tsk = ensure_key(data_dir, tenant)
    try:
        result = pysequoia.decrypt(data, decryptor=tsk.decryptor())
    except Exception as exc:  # pysequoia raises RuntimeError with a Rust backtrace
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "no key" in reason.lower():
            raise PgpProblem(
                "PGP_WRONG_KEY",
                f"{name} is encrypted, but not to this tenant's sandbox key (fingerprint "
                f"{tsk.extract_certificate().fingerprint}). Encrypt it with the key from "
                f"`bwsandbox pgp export-key --tenant {tenant.name}`.",
            ) from exc
        raise PgpProblem("PGP_INVALID", f"{name} could not be decrypted: {reason}.") from exc
    return result.bytes or b""


def encrypt_for(data: bytes, public_armored: str, *, armor: bool = False) -> bytes:
    """What an integrator's job does (tests and examples)."""
    cert = pysequoia.Cert.from_bytes(public_armored.encode())
    return pysequoia.encrypt(data, recipients=[cert], armor=armor)
