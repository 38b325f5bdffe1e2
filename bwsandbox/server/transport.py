"""The SSH connection's hot path, tuned from profiles (see README "Benchmarks").

Each function is applied per connection (or once per process) from
`SandboxSSHServer.connection_made` / the listener, changes no bytes a
client could rely on, and is a no-op if asyncssh's insides change:

- `quick_acks`: no ~40 ms delayed-ACK stall behind OpenSSH's Nagle;
- `feed_in_pieces`: a large read handed to asyncssh a packet's worth at a
  time, so its input buffer is not copied over and over;
- `skip_ignore_padding`: no empty SSH_MSG_IGNORE before every packet
  (it doubled the send(2) calls and encryption work of each SFTP reply);
- `speed_up_chacha20`: a cheaper ChaCha20 call for chacha20-poly1305;
- `lazy_debug_logging`: no debug text built for messages nobody logs;
- `seal_small_packets`: chacha20-poly1305 of a small packet in one C call
  (these three process-wide, once per process: `install_speed_ups`).
"""

from __future__ import annotations

import contextlib
import functools
import socket
from typing import Any

import asyncssh.constants

_EMPTY_IGNORE = (b"\0\0\0\0",)  # String(b""), what asyncssh sends before each packet


def skip_ignore_padding(conn: Any) -> None:
    """Stop asyncssh's automatic empty SSH_MSG_IGNORE before every packet.

    RFC 4253 §11.2: implementations must accept IGNORE messages, none is
    required to send them; OpenSSH's sshd does not send one per packet. For
    the sandbox (a local test endpoint) they only double the packets, the
    encryption work and the padding bytes of every SFTP reply. asyncssh calls
    `self.send_packet(MSG_IGNORE, ...)` on the instance, so an instance
    attribute in front of it filters exactly those calls; every other packet
    goes through unchanged."""
    original = getattr(conn, "send_packet", None)
    if original is None:
        return

    def send_packet(pkttype: int, *args: bytes, handler: Any = None) -> None:
        if pkttype == asyncssh.constants.MSG_IGNORE and args == _EMPTY_IGNORE:
            return
        original(pkttype, *args, handler=handler)

    conn.send_packet = send_packet


def quick_acks(conn: Any) -> None:
    """ACK every segment at once (TCP_QUICKACK after each read).

    OpenSSH's client does not set TCP_NODELAY for sftp, so after key exchange
    it holds its second small packet (Nagle) until the server ACKs the first;
    Linux delays that ACK by ~40 ms when the server has nothing to send. That
    stall was ~40 of the ~60 ms of a connect+login+put. Quick ACKs remove it.
    The flag is not sticky in Linux, hence re-armed on every read."""
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or quickack is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    original = conn.data_received

    def data_received(data: bytes, datatype: Any = None) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        original(data, datatype)

    conn.data_received = data_received


# About one bulk SSH packet (32 KiB of SFTP data plus headers and MAC).
PIECE = 36 * 1024


def feed_in_pieces(conn: Any) -> None:
    """Hand asyncssh a large read in pieces of about one SSH packet.

    asyncssh keeps its input in a `bytes` and cuts each packet off the front
    (`self._inpbuf = self._inpbuf[rem:]`), which copies everything behind it:
    a 256 KiB read of eight 32 KiB packets was copied ~3.5 times over, ~10 %
    of the server's CPU in a bulk upload. Fed a piece at a time, the buffer
    never holds much more than a packet. TCP may cut the stream anywhere, so
    asyncssh already handles any split; what it does with the bytes is the same.
    Once a piece closed the connection (asyncssh drops its transport), the
    rest of the read is not fed: a closed connection reads nothing more."""
    original = conn.data_received

    def data_received(data: bytes, datatype: Any = None) -> None:
        if len(data) <= PIECE:
            original(data, datatype)
            return
        view = memoryview(data)
        for start in range(0, len(data), PIECE):
            if start and getattr(conn, "_transport", True) is None:
                return  # closed by what came before: nothing more is read
            original(view[start : start + PIECE], datatype)

    conn.data_received = data_received


def speed_up_chacha20() -> bool:
    """Give asyncssh's chacha20-poly1305 a 5x cheaper ChaCha20 call.

    asyncssh builds a `Cipher(...).encryptor()` for each of the ~6 ChaCha20
    uses per SSH packet (length, Poly1305 key, payload, both directions); the
    Python wrappers cost ~10 us a call, ~25 % of the server's CPU per small
    SFTP request (chacha20-poly1305 is OpenSSH's first choice). Creating the
    context straight from cryptography's binding costs ~2 us. Installed only
    if it gives byte-identical output to asyncssh's own function; returns
    whether it was installed. Process-wide, and harmless: same bytes."""
    try:
        from asyncssh.crypto import chacha
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl
        from cryptography.hazmat.primitives.ciphers.algorithms import ChaCha20
    except ImportError:
        return False
    original = getattr(chacha, "chacha20", None)
    if original is None or getattr(original, "_bwsandbox", False):
        return original is not None
    create = rust_openssl.ciphers.create_encryption_ctx
    ctr0, ctr1 = (0).to_bytes(8, "little"), (1).to_bytes(8, "little")

    def chacha20(key: bytes, data: bytes, nonce: bytes, ctr: int) -> bytes:
        return bytes(create(ChaCha20(key, (ctr1 if ctr else ctr0) + nonce), None).update(data))

    probe = (bytes(range(32)), bytes(range(100)), bytes(range(8)))
    try:
        same = all(chacha20(*probe, ctr) == original(*probe, ctr) for ctr in (0, 1))
    except Exception:
        same = False
    if not same:
        return False
    chacha20._bwsandbox = True  # type: ignore[attr-defined]
    chacha.chacha20 = chacha20
    return True


def lazy_debug_logging() -> bool:
    """Build asyncssh's debug text only when it is logged. Process-wide.

    asyncssh turns every argument of every debug message into text before
    `logging` asks whether DEBUG is enabled, and names and sizes each packet
    it sends or receives for a packet dump it writes only at debug level 3:
    ~3 % of the server's time per small SFTP request went to text no one
    reads. Both wrappers ask first, exactly as `logging` and asyncssh's own
    `packet()` would, so whatever is logged is unchanged. Returns whether
    they were installed."""
    from asyncssh import logging as ssh_logging
    from asyncssh import packet as ssh_packet

    logger_cls = getattr(ssh_logging, "SSHLogger", None)
    packet_cls = getattr(ssh_packet, "SSHPacketLogger", None)
    log = getattr(logger_cls, "log", None)
    log_packet = getattr(packet_cls, "_log_packet", None)
    if log is None or log_packet is None or not hasattr(logger_cls, "_debug_level"):
        return False
    if getattr(log, "_bwsandbox", False):
        return True

    def lazy_log(self: Any, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            log(self, level, msg, *args, **kwargs)

    def lazy_log_packet(self: Any, *args: Any) -> None:
        if logger_cls._debug_level >= 3:  # type: ignore[union-attr]
            log_packet(self, *args)

    lazy_log._bwsandbox = True  # type: ignore[attr-defined]
    logger_cls.log = lazy_log  # type: ignore[union-attr]
    packet_cls._log_packet = lazy_log_packet  # type: ignore[union-attr]
    return True


# Up to this payload size (a 2 KiB WRITE with its headers included; beyond
# ~5 KiB OpenSSL wins) a packet is sealed and opened by `_sshcrypt.c`
# (one call); bigger ones by OpenSSL's vectorised ChaCha20 through asyncssh.
SMALL_PACKET = 4096


def seal_small_packets() -> bool:
    """chacha20-poly1305@openssh.com of small packets in one C call. Process-wide.

    asyncssh seals a packet with four calls into cryptography, each wrapped in
    Python (~19 us to seal, ~13 us to open a small SFTP request or reply).
    `_sshcrypt.c` does the whole construction in one call; bulk packets stay
    with OpenSSL, whose vectorised ChaCha20 is faster on long data. Installed
    only if its output is byte-identical to asyncssh's own on a range of
    sizes, keys and nonces, wrong tags included; returns whether it was."""
    import os

    try:
        from asyncssh.crypto import chacha

        from bwsandbox.server import _sshcrypt
    except ImportError:
        return False
    cls = getattr(chacha, "ChachaCipher", None)
    methods = ("encrypt_and_sign", "decrypt_header", "verify_and_decrypt")
    if cls is None or not all(hasattr(cls, m) for m in methods):
        return False
    if getattr(cls.encrypt_and_sign, "_bwsandbox", False):
        return True
    seal, open_header, open_packet = cls.encrypt_and_sign, cls.decrypt_header, cls.verify_and_decrypt

    def key_of(self: Any) -> bytes:
        key: bytes | None = self.__dict__.get("_bwsandbox_key")
        if key is None:
            key = self._bwsandbox_key = self._key + self._adkey
        return key

    def encrypt_and_sign(self: Any, header: bytes, data: bytes, nonce: bytes) -> tuple[bytes, bytes]:
        if len(data) > SMALL_PACKET or len(header) != 4:
            return seal(self, header, data, nonce)  # type: ignore[no-any-return]
        return _sshcrypt.seal(key_of(self), header, data, nonce)

    def decrypt_header(self: Any, header: bytes, nonce: bytes) -> bytes:
        return _sshcrypt.open_header(key_of(self), header, nonce)

    def verify_and_decrypt(self: Any, header: bytes, data: bytes, nonce: bytes, tag: bytes) -> bytes | None:
        if len(data) > SMALL_PACKET or len(header) != 4 or len(tag) != 16:
            return open_packet(self, header, data, nonce, tag)  # type: ignore[no-any-return]
        return _sshcrypt.open(key_of(self), header, data, nonce, tag)

    try:
        for size in (0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 500, 1000, SMALL_PACKET):
            cipher = cls(os.urandom(64))
            header, data, nonce = os.urandom(4), os.urandom(size), os.urandom(8)
            sealed = seal(cipher, header, data, nonce)
            if encrypt_and_sign(cipher, header, data, nonce) != sealed:
                return False
            if decrypt_header(cipher, sealed[0][:4], nonce) != open_header(cipher, sealed[0][:4], nonce):
                return False
            body, tag = sealed[0][4:], sealed[1]
            if verify_and_decrypt(cipher, sealed[0][:4], body, nonce, tag) != data:
                return False
            bad = bytes([tag[0] ^ 1]) + tag[1:]
            if verify_and_decrypt(cipher, sealed[0][:4], body, nonce, bad) is not None:
                return False
    except Exception:
        return False
    encrypt_and_sign._bwsandbox = True  # type: ignore[attr-defined]
    cls.encrypt_and_sign, cls.decrypt_header, cls.verify_and_decrypt = (
        encrypt_and_sign, decrypt_header, verify_and_decrypt
    )
    return True


@functools.cache
def install_speed_ups() -> None:
    """The three process-wide patches above, tried once per process (each
    checks asyncssh's insides, the sealing one by sealing 14 packets)."""
    speed_up_chacha20()
    lazy_debug_logging()
    seal_small_packets()
