"""Host keys: generated once, persisted, reused; rotated only on purpose (docs/production.md §2).

Layout of DATA_DIR/hostkeys/:

    ssh_host_ed25519_key  ssh_host_ecdsa_key  ssh_host_rsa_key   the keys in use
    next/                 keys announced by `hostkey rotate --announce`, not yet in use
    retired/<stamp>/      keys a rotation replaced (kept aside, never deleted)
    <key>.corrupt-<stamp> a key file no longer readable, set aside by `hostkey rotate`
                          (next-<key>.corrupt-<stamp> when it was a staged one)

A key file that cannot be read (emptied, overwritten, encrypted) is never
guessed at or replaced silently: every command names it and says what to do
(`CorruptHostKey`), and only `hostkey rotate` sets it aside and makes new keys.

Offer order is ed25519, ECDSA P-256, RSA: OpenSSH, PuTTY, FileZilla and paramiko
then show the ed25519 fingerprint and curl/libssh2 the ECDSA one, as in
production (docs/server.md "Host keys"). RSA signs with rsa-sha2-512 so OpenSSH
accepts the hostkeys-prove-00@openssh.com proof of announced keys.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from bwsandbox.errors import ServerError

KEY_FILES: tuple[tuple[str, str, dict[str, int]], ...] = (
    ("ssh_host_ed25519_key", "ssh-ed25519", {}),
    ("ssh_host_ecdsa_key", "ecdsa-sha2-nistp256", {}),
    ("ssh_host_rsa_key", "ssh-rsa", {"key_size": 3072}),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostKeyInfo:
    """One public host key and its fingerprints in every client's format."""

    type: str  # e.g. ssh-ed25519
    bits: int  # PuTTY's bit count: ed25519 is 255 there (OpenSSH says 256)
    sha256: str  # OpenSSH: SHA256:<base64 without padding>
    md5: str  # OpenSSH: MD5:aa:bb:...
    public: str  # "ssh-ed25519 AAAA..." as in known_hosts / authorized_keys

    @property
    def putty(self) -> str:
        """As PuTTY and FileZilla show it: `ssh-ed25519 255 SHA256:...`."""
        return f"{self.type} {self.bits} {self.sha256}"

    @property
    def curl_sha256(self) -> str:
        """curl's --hostpubsha256 wants the base64 without the prefix."""
        return self.sha256.removeprefix("SHA256:")

    @property
    def curl_md5(self) -> str:
        """curl's --hostpubmd5 wants 32 hex digits."""
        return self.md5.removeprefix("MD5:").replace(":", "")

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "sha256": self.sha256, "md5": self.md5}


def keys_dir(data_dir: Path) -> Path:
    return data_dir / "hostkeys"


def _bits(key: asyncssh.SSHKey) -> int:
    algorithm = key.get_algorithm()
    if algorithm == "ssh-ed25519":
        return 255
    if algorithm.startswith("ecdsa-sha2-nistp"):
        return int(algorithm.removeprefix("ecdsa-sha2-nistp"))
    # RSA: the modulus size, from the public key's wire form.
    data = key.public_data
    pos = 0
    parts = []
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        parts.append(data[pos + 4 : pos + 4 + length])
        pos += 4 + length
    return int.from_bytes(parts[-1], "big").bit_length()


def describe(key: asyncssh.SSHKey) -> HostKeyInfo:
    public = key.export_public_key("openssh").decode().split()
    return HostKeyInfo(
        type=key.get_algorithm(),
        bits=_bits(key),
        sha256=key.get_fingerprint("sha256"),
        md5=key.get_fingerprint("md5"),
        public=f"{public[0]} {public[1]}",
    )


def _generate(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for filename, algorithm, options in KEY_FILES:
        path = folder / filename
        if path.exists():
            continue
        key = asyncssh.generate_private_key(algorithm, **options)  # type: ignore[arg-type]
        tmp = path.with_suffix(".tmp")
        key.write_private_key(str(tmp))
        os.chmod(tmp, 0o600)
        key.write_public_key(str(path) + ".pub")
        os.replace(tmp, path)  # never a half-written key under the real name


class CorruptHostKey(ServerError):
    """A host key file exists but holds no private key asyncssh can read."""

    def __init__(self, path: Path, reason: str, remedy: str) -> None:
        super().__init__(f"the host key {path} cannot be read ({reason}): {remedy}")
        self.path = path


def _remedy(data_dir: Path, *, staged: bool) -> str:
    rotate = f"bwsandbox hostkey rotate --data-dir {shlex.quote(str(data_dir))}"
    if staged:
        return (f"run `{rotate} --announce` to stage new keys (the corrupt one is kept aside), "
                "or restore it from a backup")
    return (f"restore it from a backup, or run `{rotate}` to make new keys (the corrupt one is "
            "kept aside; clients will see a new host key)")


def _read(path: Path) -> asyncssh.SSHKey | str:
    """The key in `path`, or why it cannot be read. An unreadable file
    (permissions) stays an OSError, which names the file itself."""
    try:
        return asyncssh.read_private_key(str(path))
    except ValueError as exc:  # asyncssh.KeyImportError, or bytes it cannot even decode
        if path.stat().st_size == 0:
            return "the file is empty"
        return f"not an OpenSSH private key: {exc}"


def _load(folder: Path, remedy: str) -> list[asyncssh.SSHKey]:
    keys = []
    for filename, _algorithm, _options in KEY_FILES:
        path = folder / filename
        if path.exists():
            key = _read(path)
            if isinstance(key, str):
                raise CorruptHostKey(path, key, remedy)
            keys.append(key)
    return keys


def impostors() -> list[asyncssh.SSHKeyPair]:
    """A fresh set of the same key types, kept nowhere: what a man in the
    middle would present (the `host-key` fault)."""
    keys = [asyncssh.generate_private_key(alg, **options) for _, alg, options in KEY_FILES]  # type: ignore[arg-type]
    return keypairs(keys)


def keypairs(keys: list[asyncssh.SSHKey]) -> list[asyncssh.SSHKeyPair]:
    """Key pairs for the listener; RSA signs rsa-sha2-512 (see module doc)."""
    pairs = list(asyncssh.load_keypairs(keys))
    for pair in pairs:
        if pair.algorithm == b"ssh-rsa":
            pair.set_sig_algorithm(b"rsa-sha2-512")
    return pairs


def ensure(data_dir: Path) -> list[asyncssh.SSHKey]:
    """The keys in use, generated on the first call and reused ever after."""
    _generate(keys_dir(data_dir))
    return _load(keys_dir(data_dir), _remedy(data_dir, staged=False))


def announced(data_dir: Path) -> list[asyncssh.SSHKey]:
    """Keys staged by `rotate --announce`: offered in hostkeys-00 only."""
    folder = keys_dir(data_dir) / "next"
    return _load(folder, _remedy(data_dir, staged=True)) if folder.is_dir() else []


def set_aside_corrupt(data_dir: Path) -> list[tuple[Path, Path]]:
    """Move each key file, in use or staged, that cannot be read out of the
    way: hostkeys/<name>.corrupt-<stamp> (next-<name>... for a staged one),
    never deleted. Returns (where it was, where it is now)."""
    folder = keys_dir(data_dir)
    stamp = _stamp()
    moved = []
    for source, prefix in ((folder, ""), (folder / "next", "next-")):
        for filename, _algorithm, _options in KEY_FILES:
            path = source / filename
            if path.is_file() and isinstance(_read(path), str):
                aside = folder / f"{prefix}{filename}.corrupt-{stamp}"
                os.replace(path, aside)
                moved.append((path, aside))
    return moved


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotation:
    """What `rotate` did."""

    keys: list[HostKeyInfo]  # the new keys
    active: bool  # in use from the next start (False: staged, announced)
    set_aside: list[tuple[Path, Path]]  # unreadable key files: (where it was, where it is now)
    remade: list[Path]  # with announce: keys in use that were unreadable, made new at once


def rotate(data_dir: Path, *, announce: bool = False) -> Rotation:
    """Simulate production changing its host keys.

    Without `announce` the new keys are used at the next start (clients see a
    changed key). With `announce` new keys are staged in next/: the server
    keeps using the current ones and announces both sets to OpenSSH clients
    (UpdateHostKeys); a later plain `rotate` promotes the staged keys.
    A key file that cannot be read (current or staged) is first set aside
    (`set_aside_corrupt`), so rotating is the way out of a corrupt key; with
    `announce`, a current one is made new at once, with no announce period.
    """
    folder = keys_dir(data_dir)
    staged = folder / "next"
    aside = set_aside_corrupt(data_dir)
    if announce:
        ensure(data_dir)
        if staged.exists():
            shutil.rmtree(staged)
        _generate(staged)
        new = [describe(k) for k in _load(staged, _remedy(data_dir, staged=True))]
        remade = [was for was, _now in aside if was.parent == folder]
        return Rotation(keys=new, active=False, set_aside=aside, remade=remade)
    retired = folder / "retired" / _stamp()
    for filename, _algorithm, _options in KEY_FILES:
        for name in (filename, filename + ".pub"):
            if (folder / name).exists():
                retired.mkdir(parents=True, exist_ok=True)
                os.replace(folder / name, retired / name)
    if staged.is_dir():
        for name in os.listdir(staged):
            os.replace(staged / name, folder / name)
        staged.rmdir()
    _generate(folder)  # every key a staged set lacked (or all of them)
    new = [describe(k) for k in _load(folder, _remedy(data_dir, staged=False))]
    return Rotation(keys=new, active=True, set_aside=aside, remade=[])


def known_hosts_line(host: str, port: int, info: HostKeyInfo) -> str:
    """A known_hosts line as OpenSSH writes it (`[host]:port` unless port 22)."""
    target = host if port == 22 else f"[{host}]:{port}"
    return f"{target} {info.public}"
