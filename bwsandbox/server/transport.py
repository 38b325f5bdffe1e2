"""The SSH connection's hot path, tuned from profiles (see README "Benchmarks").

Each function is applied per connection (or once per process) from
`SandboxSSHServer.connection_made` / the listener, changes no bytes a
client could rely on, and is a no-op if asyncssh's insides change:

- `quick_acks`: no ~40 ms delayed-ACK stall behind OpenSSH's Nagle;
- `skip_ignore_padding`: no empty SSH_MSG_IGNORE before every packet
  (it doubled the send(2) calls and encryption work of each SFTP reply);
- `speed_up_chacha20`: a cheaper ChaCha20 call for chacha20-poly1305;
- `lazy_debug_logging`: no debug text built for messages nobody logs.
"""

from __future__ import annotations

import contextlib
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
