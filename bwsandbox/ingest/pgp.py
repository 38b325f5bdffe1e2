"""PGP: each tenant's sandbox key, and decrypting uploads with it (docs/production.md §1).

Engage production requires files encrypted with the vendor's public key
[doc]; the sandbox plays the vendor with one key per tenant, generated on
demand and kept in DATA/tenants/<region>/<tenant>/pgp/ (secret key 0600).
`bwsandbox pgp export-key --tenant T` prints the public key integrators
encrypt to. In the core profile `.pgp`/`.gpg` uploads are decrypted when the
tenant has a key [decided].

The library is pysequoia (Python bindings of Sequoia-PGP, a maintained
OpenPGP implementation in Rust): key generation, encryption and decryption,
no gpg-agent or keyring state to manage.

Decryption is bounded (docs/security.md "Compression bombs"): an 8 MB
upload can hold a compressed packet that inflates to gigabytes, and
pysequoia's `decrypt()` returns the whole plaintext at once. Its streaming
call, `decrypt_file(input, output)`, holds the GIL while it writes, so it
cannot feed a reader thread of this process. So the decryption runs in a
child Python (`sys.executable -I -c _CHILD`): the ciphertext goes in on its
stdin, the plaintext comes out on its stdout as Sequoia inflates it, and
the parent counts it; the moment it passes `max_decrypted_bytes` the child
is killed and the file is rejected (`PGP_TOO_LARGE`). Memory stays at the
limit plus Sequoia's buffers, whatever the compression ratio. The child runs
isolated (`-I`: no current directory, user site or PYTHON* variables on its
path) and is handed the directory this process imported pysequoia from.

Sequoia's `decrypt` also passes through a message that is not encrypted at
all (`gpg --store`, `gpg --sign`), and pysequoia does not say whether a key
was used. So before decrypting, `_envelope` reads the message's first packet
headers (tag and length, RFC 9580 §4.2; format parsing, no cryptography):
only session-key packets followed by an encrypted data packet go on to the
child, and one of them must be a PKESK to the tenant's key (or to an
anonymous recipient). Without passwords, Sequoia can then only decrypt with
that key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

import pysequoia
from pysequoia.packet import Packet, PacketPile

from bwsandbox import layout
from bwsandbox.tenants import Tenant

PGP_SUFFIXES = (".pgp", ".gpg")


def export_key_command(tenant: Tenant) -> str:
    """The command that prints the key a tenant's files must be encrypted to."""
    return f"bwsandbox pgp export-key --tenant {tenant.name}"


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


DEFAULT_MAX_DECRYPTED = 256 * 1024**2  # the max_decrypted_bytes setting's default

# The child: ciphertext on stdin, plaintext on stdout, streamed by Sequoia;
# on failure the first line of the error on stderr, exit 3.
# argv: the secret key, the directory holding the parent's pysequoia.
_CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
import pysequoia
key = pysequoia.Tsk.from_bytes(open(sys.argv[1], "rb").read())
try:
    pysequoia.decrypt_file("/dev/stdin", "/dev/stdout", decryptor=key.decryptor())
except Exception as exc:
    sys.stderr.write((str(exc).splitlines() or [type(exc).__name__])[0])
    sys.exit(3)
"""
_CHUNK = 1 << 20
_PYSEQUOIA_HOME = str(Path(pysequoia.__file__).resolve().parent.parent)


def decrypt(
    data: bytes, data_dir: Path, tenant: Tenant, name: str, *, max_bytes: int = DEFAULT_MAX_DECRYPTED,
    create_key: bool = True,
) -> bytes:
    """Decrypt an upload with the tenant's sandbox key, or raise PgpProblem
    (`PGP_TOO_LARGE` as soon as the plaintext passes `max_bytes`). Without
    `create_key` (a plan, which writes nothing) a tenant with no key yet
    cannot have had a file encrypted to it: PGP_WRONG_KEY, as an upload
    then says once it has made the key."""
    if not looks_encrypted(data):
        raise PgpProblem(
            "PGP_NOT_ENCRYPTED",
            f"{name} is named like an encrypted file but is not PGP-encrypted. Encrypt it with the "
            f"tenant's public key ({export_key_command(tenant)}).",
        )
    export = f"`{export_key_command(tenant)}`"
    try:
        sessions, first = _envelope(data)
    except ValueError as exc:
        raise PgpProblem("PGP_INVALID", f"{name} is not a valid OpenPGP message: {exc}.") from None
    if not sessions:
        what = _NOT_ENCRYPTED.get(first, f"its first packet is of type {first}, not an encrypted message")
        raise PgpProblem(
            "PGP_NOT_ENCRYPTED",
            f"{name} is a PGP file but not encrypted ({what}): the sandbox takes only files encrypted "
            f"to the tenant's key from {export}.",
        )
    if first not in _ENCRYPTED_DATA:
        raise PgpProblem(
            "PGP_INVALID",
            f"{name} is not a valid OpenPGP message: its session keys are followed by "
            + ("nothing" if first is None else f"a packet of type {first}, not encrypted data") + ".",
        )
    recipients = [body for tag, body in sessions if tag == _PKESK]
    if not recipients:
        raise PgpProblem(
            "PGP_WRONG_KEY",
            f"{name} is encrypted with a passphrase, not to the tenant's key. Encrypt it to the key "
            f"from {export} (gpg -e -r, not gpg -c).",
        )
    if not create_key and not has_key(data_dir, tenant):
        raise PgpProblem(
            "PGP_WRONG_KEY",
            f"{name} is encrypted, but not to this tenant's sandbox key: the tenant has none yet. "
            f"Run {export} (it makes the key) and encrypt to it.",
        )
    tsk = ensure_key(data_dir, tenant)
    keys = [p for p in PacketPile.from_bytes(bytes(tsk.extract_certificate())) if p.key_id]
    if not any(_addressed_to(body, keys) for body in recipients):
        raise PgpProblem(
            "PGP_WRONG_KEY",
            f"{name} is encrypted, but not to this tenant's sandbox key (fingerprint "
            f"{tsk.extract_certificate().fingerprint}). Encrypt it with the key from {export}.",
        )
    try:
        return _decrypt_bounded(data, key_dir(data_dir, tenant) / "secret.asc", max_bytes)
    except _TooLarge:
        raise PgpProblem(
            "PGP_TOO_LARGE",
            f"{name} decrypts to more than {max_bytes:,} bytes (max_decrypted_bytes); the sandbox "
            "stopped there, so nothing in it was processed. A compressed packet that inflates this "
            "much is not a user file; send the export uncompressed or in parts.",
        ) from None
    except _Failed as exc:  # Sequoia's words, first line
        reason = str(exc)
        if "no key" in reason.lower():
            raise PgpProblem(
                "PGP_WRONG_KEY",
                f"{name} is encrypted, but not to this tenant's sandbox key (fingerprint "
                f"{tsk.extract_certificate().fingerprint}). Encrypt it with the key from {export}.",
            ) from exc
        reason = reason.replace('Reading "/dev/stdin": ', "reading it: ")  # the child reads a pipe
        raise PgpProblem("PGP_INVALID", f"{name} could not be decrypted: {reason}.") from exc


# Packet tags (RFC 9580 §5).
_PKESK, _SKESK, _MARKER = 1, 3, 10
_ENCRYPTED_DATA = (9, 18, 20)  # SED, SEIPD, OCB (AEAD) encrypted data
_NOT_ENCRYPTED = {
    2: "only a signature", 4: "only signed",
    8: "compressed, signed or literal data only", 11: "literal data only",
    None: "no packets",
}


# What an envelope may hold before its encrypted data: a real message has a
# session-key packet per recipient, each well under a kilobyte (a post-quantum
# one under two), so these bound the work a hostile upload can ask for.
_MAX_SESSION_PACKETS = 64
_MAX_SESSION_PACKET_BYTES = 16 * 1024
# Armor decoded to read the envelope: more than the largest envelope allowed above.
_ARMOR_CHARS_READ = 2 * 1024 * 1024


def _envelope(data: bytes) -> tuple[list[tuple[int, bytes]], int | None]:
    """The session-key packets (tag, body) the message opens with, and the tag
    of the packet after them (None at the end). Reads headers only; ValueError
    if they are not OpenPGP, or if they are more or larger than a real
    message's (`_MAX_SESSION_PACKETS`, `_MAX_SESSION_PACKET_BYTES`)."""
    raw = _dearmor(data)
    sessions: list[tuple[int, bytes]] = []
    at = packets = 0
    while at < len(raw):
        packets += 1
        if packets > _MAX_SESSION_PACKETS:
            raise ValueError(f"it opens with more than {_MAX_SESSION_PACKETS} session key packets")
        octet = raw[at]
        if not octet & 0x80:
            raise ValueError(f"byte {at} is not a packet header")
        new_format = bool(octet & 0x40)
        tag = octet & 0x3F if new_format else (octet >> 2) & 0x0F
        if tag not in (_PKESK, _SKESK, _MARKER):
            return sessions, tag
        at, size = _length(raw, at + 1, new_format, octet & 0x03)
        if size > _MAX_SESSION_PACKET_BYTES:
            raise ValueError(f"a session key packet of {size:,} bytes is larger than any real one")
        if at + size > len(raw):
            raise ValueError("it is cut short")
        if tag != _MARKER:  # a marker packet is ignored (RFC 9580 §5.8)
            sessions.append((tag, raw[at:at + size]))
        at += size
    return sessions, None


def _length(raw: bytes, at: int, new_format: bool, old_type: int) -> tuple[int, int]:
    """Where a session-key packet's body starts, and its length (§4.2.1,
    §4.2.2); those packets have a definite length."""
    if new_format:
        first = _octets(raw, at, 1)
        if first < 192:
            return at + 1, first
        if first < 224:
            return at + 2, ((first - 192) << 8) + _octets(raw, at + 1, 1) + 192
        if first == 255:
            return at + 5, _octets(raw, at + 1, 4)
        raise ValueError("a session key packet has a partial length")
    if old_type == 3:
        raise ValueError("a session key packet has no length")
    n = 1 << old_type
    return at + n, _octets(raw, at, n)


def _octets(raw: bytes, at: int, n: int) -> int:
    if at + n > len(raw):
        raise ValueError("it is cut short")
    return int.from_bytes(raw[at:at + n], "big")


def _dearmor(data: bytes) -> bytes:
    """The binary message inside ASCII armor (RFC 9580 §6.2); binary as is."""
    text = data.lstrip()
    if not text.startswith(b"-----BEGIN PGP MESSAGE-----"):
        return data
    body = []
    chars = 0
    for line in text.splitlines()[1:]:
        line = line.strip()
        if line.startswith(b"-----END"):
            break
        if line and b":" not in line and not line.startswith(b"="):  # not a header or the checksum
            body.append(line)
            chars += len(line)
            if chars >= _ARMOR_CHARS_READ:  # the envelope is in here: the rest is the data
                break
    joined = b"".join(body)
    if chars >= _ARMOR_CHARS_READ:
        joined = joined[: len(joined) - len(joined) % 4]  # whole base64 quanta only
    try:
        return base64.b64decode(joined, validate=True)
    except binascii.Error:
        raise ValueError("its ASCII armor is not base64") from None


def _addressed_to(pkesk: bytes, keys: list[Packet]) -> bool:
    """Whether a PKESK body names one of the tenant's keys (the key packets of
    its certificate), or no key (an anonymous recipient, which Sequoia tries
    every key on). v3: key ID; v6: key version and fingerprint (RFC 9580 §5.1)."""
    if pkesk[:1] == b"\x03" and len(pkesk) >= 9:
        named = pkesk[1:9].hex()
        return named == "0" * 16 or any(p.key_id == named for p in keys)
    if pkesk[:1] == b"\x06" and len(pkesk) >= 2:
        size = pkesk[1]
        named = pkesk[3:2 + size].hex()
        return size == 0 or any(p.fingerprint == named for p in keys)
    return True  # a version this reader does not know: Sequoia decides


class _TooLarge(Exception):
    pass


class _Failed(Exception):
    pass


def _decrypt_bounded(data: bytes, secret: Path, max_bytes: int) -> bytes:
    """The plaintext, from the child (see the module docstring)."""
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            [sys.executable, "-I", "-c", _CHILD, str(secret), _PYSEQUOIA_HOME],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
        )
        assert child.stdin is not None and child.stdout is not None
        feeder = threading.Thread(target=_feed, args=(child.stdin, data), daemon=True)
        feeder.start()
        chunks: list[bytes] = []
        total = 0
        try:
            while chunk := child.stdout.read(_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise _TooLarge()
                chunks.append(chunk)
        finally:
            if child.poll() is None and total > max_bytes:
                child.kill()
            child.stdout.close()
            code = child.wait()
            feeder.join()
        if code != 0:
            err.seek(0)
            reason = err.read(2000).decode("utf-8", "replace").strip()
            raise _Failed(reason or f"the decryption stopped (exit {code})")
    return b"".join(chunks)


def _feed(pipe: IO[bytes], data: bytes) -> None:
    try:
        pipe.write(data)
    except (BrokenPipeError, ValueError):
        pass  # the child stopped reading: it failed, or was stopped at the limit
    finally:
        with contextlib.suppress(BrokenPipeError):
            pipe.close()


def encrypt_for(data: bytes, public_armored: str, *, armor: bool = False) -> bytes:
    """What an integrator's job does (tests and examples)."""
    cert = pysequoia.Cert.from_bytes(public_armored.encode())
    return pysequoia.encrypt(data, recipients=[cert], armor=armor)
