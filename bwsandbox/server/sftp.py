"""The SFTP session a tenant sees: a chroot with one writable drop folder.

Rules (docs/production.md §1-§2):

- `/` is the tenant root; `/incoming` (core) or `/` itself (engage, docs/production.md §1
  [decided]) is the drop folder, the only place where files may be created,
  written, renamed or removed. Everything else answers SFTP permission denied.
  The drop folder is flat: mkdir is refused everywhere [decided].
- Paths are resolved against `/`, normalised (no `..` above the root), must be
  UTF-8 without NUL, and must resolve inside the root after following links.
  Links cannot be created. Names are case-sensitive, as in production.
- Uploads are tracked from open to close: a close while the channel is
  already closing is a cut-off upload (docs/server.md "Pickup"); a close of a
  final name makes it pending for pickup (see `pickup`); temporary names
  (`*.filepart`, `.in.NAME`, dot-files, `*.tmp`) wait for their rename.
- A v3 RENAME onto an existing name replaces it, like OpenSSH's posix-rename
  (docs/server.md "Pickup"; asyncssh's default refuses, which breaks WinSCP-style
  temp-name uploads that overwrite).
- The hot path (write) is one `pwrite(2)` and no await.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import posixpath
import sqlite3
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import asyncssh
from asyncssh import SFTPAttrs

from bwsandbox import faults, layout
from bwsandbox.config import Settings
from bwsandbox.server import compat
from bwsandbox.server.audit import AuditLog
from bwsandbox.server.handles import Handles
from bwsandbox.server.pickup import Pickup
from bwsandbox.server.session import Session, session_of
from bwsandbox.tenants import Region

MAX_READ = 256 * 1024 - 1024  # OpenSSH's SFTP_MAX_READ_LENGTH
# A file name in the drop folder: at most this many UTF-8 bytes (the
# server's own bookkeeping adds a prefix to it, within the file system's
# 255), and no control character (a CR/LF in a name forges log lines and
# breaks every tool that lists files).
MAX_NAME_BYTES = 200
_WRITE_FLAGS = asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC


def _denied(what: str) -> PermissionError:
    return PermissionError(errno.EACCES, f"Permission denied: {what}")


class _Handle:
    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd


class _Upload(_Handle):
    """A file open for writing in the drop folder."""

    __slots__ = ("local", "name", "size", "failed", "session", "fault", "next_free")

    def __init__(self, fd: int, local: str, name: str, session: Session) -> None:
        super().__init__(fd)
        self.local = local
        self.name = name
        self.size = 0  # high-water mark of the bytes written
        self.failed = ""  # why this upload cannot be complete (a refused write), if it cannot
        self.session = session
        self.fault: faults.Fault | None = None  # an upload fault that fired for this file
        self.next_free = 0.0  # `slow`: when the next byte may be taken (loop time)


class DropEndpoint(Protocol):
    """What an SFTP session reads and tells of its listener (`listener.Endpoint`,
    which opens the session and so sits above it)."""

    region: Region
    settings: Settings
    data_dir: Path
    conn: sqlite3.Connection
    audit: AuditLog
    pickup: Pickup
    open_uploads: dict[str, _Upload]  # by local path: the uploads open on any session
    handles: Handles  # the open handles of every session of the server (server/handles.py)


class SandboxSFTPServer(compat.EndAwareSFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], endpoint: DropEndpoint) -> None:
        self._endpoint = endpoint
        self._session = session_of(chan.get_connection())
        tenant = self._session.tenant
        assert tenant is not None
        self._tenant = tenant
        root = layout.ensure_tree(endpoint.data_dir, tenant, reports_folder=endpoint.settings.reports_folder)
        self._root = os.path.realpath(root)
        self._root_b = os.fsencode(self._root)
        self._drop = layout.drop_folder(tenant)
        drop_local = self._local(self._drop)
        if os.path.islink(drop_local) or not os.path.isdir(drop_local):
            raise _denied("the drop folder is missing")
        self._drop_local = drop_local.rstrip("/") + "/"
        self._max = endpoint.settings.max_file_bytes
        super().__init__(chan, chroot=self._root_b)
        # limits@openssh.com: what this session may open, the server-wide limit if lower
        self.max_open_handles = min(endpoint.handles.per_session, endpoint.handles.total)
        if self._session.stall:  # a `stall` fault: every reply of this session waits
            for name in _REPLIES:
                setattr(self, name, _delayed(getattr(self, name), self._session.stall))
        endpoint.audit.event("sftp-start", session=self._session.id, tenant=tenant.name)

    # -- paths --------------------------------------------------------------

    def _virtual(self, path: bytes) -> str:
        self._session.last_activity = time.monotonic()
        if b"\0" in path:
            raise OSError(errno.EINVAL, "Invalid file name")
        try:
            text = path.decode("utf-8")
        except UnicodeDecodeError:
            raise OSError(errno.EILSEQ, "File names must be UTF-8") from None
        return posixpath.normpath(posixpath.join("/", text))

    def _local(self, vpath: str) -> str:
        local = self._root if vpath == "/" else self._root + vpath
        real = os.path.realpath(local)
        if real != self._root and not real.startswith(self._root + "/"):
            raise _denied("outside your home")
        return local

    def map_path(self, path: bytes) -> bytes:
        return os.fsencode(self._local(self._virtual(path)))

    def _writable(self, path: bytes, what: str) -> tuple[str, str]:
        """Resolve a path that is about to be written: a file directly in the drop folder.

        The drop folder is a real directory inside the root (checked once per
        session) and links cannot be created, so one lstat of the name is
        enough: it must be absent or a regular file."""
        vpath = self._virtual(path)
        parent, name = posixpath.split(vpath)
        if parent != self._drop or name in ("", ".", ".."):
            raise _denied(f"{what} {vpath}: only {self._drop} is writable")
        if len(name.encode()) > MAX_NAME_BYTES:
            raise OSError(errno.ENAMETOOLONG, f"File name too long: at most {MAX_NAME_BYTES} bytes")
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise OSError(errno.EINVAL, "Invalid file name: control characters such as CR or LF are refused")
        local = self._drop_local + name
        try:
            mode = os.lstat(local).st_mode
        except FileNotFoundError:
            return vpath, local
        if not stat.S_ISREG(mode):
            raise _denied(f"{what} {vpath}: not a file")
        return vpath, local

    def format_user(self, uid: int | None) -> str:
        return self._tenant.username

    def format_group(self, gid: int | None) -> str:
        return "betterworks"

    # -- files --------------------------------------------------------------

    def handle_opening(self) -> None:
        # Each open file or directory may hold a descriptor (server/handles.py).
        self._endpoint.handles.acquire(self._session)

    def handles_closed(self, count: int) -> None:
        self._endpoint.handles.release(self._session, count)

    def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> object:
        if not pflags & _WRITE_FLAGS:
            fd = os.open(self.map_path(path), os.O_RDONLY)
            return _Handle(fd)
        vpath, local = self._writable(path, "write")
        self._not_busy(local, vpath)
        fault = self._fault_for_upload(vpath)
        self._endpoint.pickup.take_now(local)  # a reused name: hand the earlier upload over first
        flags = os.O_RDWR if pflags & asyncssh.FXF_READ else os.O_WRONLY
        if pflags & asyncssh.FXF_APPEND:
            flags |= os.O_APPEND
        if pflags & asyncssh.FXF_CREAT:
            flags |= os.O_CREAT
        if pflags & asyncssh.FXF_TRUNC:
            flags |= os.O_TRUNC
        if pflags & asyncssh.FXF_EXCL:
            flags |= os.O_EXCL
        # The client's modes (psftp: 0o100644) are ignored: the mode says
        # whether the server saw a clean close (layout.CLOSED_MODE), which is
        # what start-up recovery trusts after a crash.
        fd = os.open(local, flags, layout.OPEN_MODE)
        os.fchmod(fd, layout.OPEN_MODE)  # an existing file keeps its mode otherwise
        upload = _Upload(fd, local, posixpath.basename(vpath), self._session)
        upload.fault = fault
        if not pflags & asyncssh.FXF_TRUNC:
            upload.size = os.fstat(fd).st_size
        self._endpoint.open_uploads[local] = upload
        self._endpoint.audit.event(
            "open", session=self._session.id, tenant=self._tenant.name, path=vpath, flags=pflags
        )
        return upload

    def _fault_for_upload(self, vpath: str) -> faults.Fault | None:
        """The tenant's upload fault that fires for this file, if any; a
        `permission-denied` one refuses the open here."""
        endpoint = self._endpoint
        fault = faults.fire(endpoint.conn, moment=faults.Moment.UPLOAD, region=str(endpoint.region),
                            tenant=self._tenant.name)
        if fault is None:
            return None
        endpoint.audit.event("fault", kind=str(fault.kind), fault=fault.id, session=self._session.id,
                             tenant=self._tenant.name, path=vpath)
        if fault.kind is faults.FaultKind.PERMISSION_DENIED:
            raise _denied(f"write {vpath}")
        return fault

    def _not_busy(self, local: str, vpath: str) -> None:
        """Another session is still writing `local`: writing, replacing or
        removing it too would mix two uploads into one and lose one of them,
        so this session waits its turn."""
        busy = self._endpoint.open_uploads.get(local)
        if busy is not None and busy.session is not self._session:
            raise asyncssh.SFTPFailure(f"{vpath} is being uploaded by another session; try again later")

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        assert isinstance(file_obj, _Handle)
        # OpenSSH's sftp-server answers at most 256 KiB - 1 KiB per READ; a
        # shorter answer is what the protocol allows, and clients read on.
        return os.pread(file_obj.fd, min(size, MAX_READ), offset)

    def write(self, file_obj: object, offset: int, data: bytes) -> int | Awaitable[int]:
        # Hot path: no await, no logging, one system call (unless a fault is on).
        assert isinstance(file_obj, _Upload)
        end = offset + len(data)
        if end > self._max:
            file_obj.failed = f"the file went over the {self._max}-byte limit"
            raise asyncssh.SFTPFailure(
                f"File too large: the sandbox accepts at most {self._max} bytes per file"
            )
        if file_obj.fault is not None:
            return self._faulty_write(file_obj, offset, data)
        written = os.pwrite(file_obj.fd, data, offset)
        if end > file_obj.size:
            file_obj.size = end
        file_obj.session.last_activity = time.monotonic()
        return written

    def _faulty_write(self, upload: _Upload, offset: int, data: bytes) -> int | Awaitable[int]:
        """A write under an upload fault (bwsandbox/faults.py)."""
        fault = upload.fault
        assert fault is not None
        end = offset + len(data)
        if fault.kind is faults.FaultKind.DISK_FULL and end > fault.after_bytes:
            upload.failed = f"a write failed: no space left on device (fault disk-full #{fault.id})"
            raise OSError(errno.ENOSPC, "No space left on device")  # what OpenSSH's server answers
        if fault.kind is faults.FaultKind.DISCONNECT and end > fault.after_bytes:
            keep = max(0, fault.after_bytes - offset)
            if keep:
                os.pwrite(upload.fd, data[:keep], offset)
                upload.size = max(upload.size, offset + keep)
            upload.failed = (f"the connection was dropped after {fault.after_bytes} bytes "
                             f"(fault disconnect #{fault.id})")
            self._session.conn.abort()  # the TCP connection goes, as a network drop would
            return len(data)
        if fault.kind is faults.FaultKind.SLOW:
            return self._slow_write(upload, offset, data, fault.kbps * 1024)
        upload.fault = None  # nothing more this fault does to this file
        return self.write(upload, offset, data)

    async def _slow_write(self, upload: _Upload, offset: int, data: bytes, rate: float) -> int:
        """At most `rate` bytes a second through this file, however many
        writes the client has in flight (each takes its turn in time)."""
        loop = asyncio.get_running_loop()
        start = max(loop.time(), upload.next_free)
        upload.next_free = start + len(data) / rate
        await asyncio.sleep(upload.next_free - loop.time())
        written = os.pwrite(upload.fd, data, offset)
        upload.size = max(upload.size, offset + len(data))
        upload.session.last_activity = time.monotonic()
        return written

    def close(self, file_obj: object) -> None:
        assert isinstance(file_obj, _Handle)
        if not isinstance(file_obj, _Upload):
            os.close(file_obj.fd)
            return
        # A cut-off upload (docs/server.md "Pickup"): asyncssh also closes the files of a client that
        # vanished (its channel closing) or ended its session (EOF: the
        # OpenSSH sftp process killed leaves ssh to send it) with files open.
        aborted = self.session_over or self._chan.is_closing()
        if not aborted and not file_obj.failed:
            os.fchmod(file_obj.fd, layout.CLOSED_MODE)
        os.close(file_obj.fd)
        endpoint = self._endpoint
        if endpoint.open_uploads.get(file_obj.local) is file_obj:
            del endpoint.open_uploads[file_obj.local]
        endpoint.audit.event(
            "close", session=self._session.id, tenant=self._tenant.name, name=file_obj.name,
            bytes=file_obj.size, aborted=aborted,
        )
        if aborted or file_obj.failed:
            endpoint.pickup.incomplete(
                self._tenant, file_obj.name, file_obj.local, file_obj.size,
                file_obj.failed or "the connection ended before the client closed the file",
            )
        elif not layout.is_temporary(file_obj.name):
            endpoint.pickup.complete(self._tenant, file_obj.name, file_obj.local, self._session)

    def fstat(self, file_obj: object) -> os.stat_result:
        assert isinstance(file_obj, _Handle)
        return os.fstat(file_obj.fd)

    def fsetstat(self, file_obj: object, attrs: SFTPAttrs) -> None:
        assert isinstance(file_obj, _Handle)
        if not isinstance(file_obj, _Upload):
            raise _denied("file opened read-only")
        if attrs.size is not None:  # lftp sends the final size: truncate
            self._size_allowed(attrs.size)
            os.ftruncate(file_obj.fd, attrs.size)
            file_obj.size = attrs.size
        if attrs.atime is not None and attrs.mtime is not None:
            os.utime(file_obj.fd, (attrs.atime, attrs.mtime))
        self._endpoint.audit.event(
            "fsetstat", session=self._session.id, tenant=self._tenant.name, name=file_obj.name,
            size=attrs.size, mtime=attrs.mtime,
        )

    def _size_allowed(self, size: int) -> None:
        """A size set by (f)setstat counts against `max_file_bytes` as writes do."""
        if size > self._max:
            raise asyncssh.SFTPFailure(
                f"File too large: the sandbox accepts at most {self._max} bytes per file"
            )

    def setstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        vpath = self._virtual(path)
        local = self._local(vpath)
        if os.path.isdir(local):
            return  # directory times (WinSCP) are accepted and ignored
        vpath, local = self._writable(path, "setstat")
        if attrs.size is not None:
            self._not_busy(local, vpath)  # a truncate would cut another session's upload
        if attrs.size is not None:
            self._size_allowed(attrs.size)
            os.truncate(local, attrs.size)
        if attrs.atime is not None and attrs.mtime is not None:
            os.utime(local, (attrs.atime, attrs.mtime))
        self._endpoint.pickup.touch(local)
        self._endpoint.audit.event(
            "setstat", session=self._session.id, tenant=self._tenant.name, path=vpath,
            size=attrs.size, mtime=attrs.mtime,
        )

    def lsetstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        self.setstat(path, attrs)

    # -- names --------------------------------------------------------------

    def remove(self, path: bytes) -> None:
        vpath, local = self._writable(path, "remove")
        self._not_busy(local, vpath)
        # A complete upload not picked up yet was production's to take the
        # moment it was closed; removing it (lftp's temp-file overwrite removes
        # the old NAME before its rename) hands it over instead of losing it.
        if self._endpoint.pickup.take_now(local):
            picked = True
        else:
            picked = False
            os.remove(local)
        self._endpoint.audit.event(
            "remove", session=self._session.id, tenant=self._tenant.name, path=vpath, picked_up=picked
        )

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename(oldpath, newpath, "rename")

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename(oldpath, newpath, "posix-rename")

    def _rename(self, oldpath: bytes, newpath: bytes, how: str) -> None:
        old_v, old = self._writable(oldpath, "rename")
        new_v, new = self._writable(newpath, "rename to")
        self._not_busy(old, old_v)
        self._not_busy(new, new_v)
        if not os.path.isfile(old):
            raise FileNotFoundError(errno.ENOENT, f"No such file: {old_v}")
        if old == new:
            return
        pickup = self._endpoint.pickup
        # Replacing a complete upload not yet picked up: hand it over first.
        pickup.take_now(new)
        was_pending = pickup.cancel(old) is not None
        os.replace(old, new)
        name = posixpath.basename(new_v)
        upload = self._endpoint.open_uploads.pop(old, None)
        if upload is not None:  # renamed while still open: close() decides
            upload.local, upload.name = new, name
            self._endpoint.open_uploads[new] = upload
        elif not layout.is_temporary(name):
            pickup.complete(self._tenant, name, new, self._session)
        self._endpoint.audit.event(
            how, session=self._session.id, tenant=self._tenant.name, old=old_v, new=new_v,
            pending=was_pending,
        )

    def mkdir(self, path: bytes, attrs: SFTPAttrs) -> None:
        raise _denied(f"mkdir {self._virtual(path)}: folders cannot be created")

    def rmdir(self, path: bytes) -> None:
        raise _denied(f"rmdir {self._virtual(path)}: folders cannot be removed")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise _denied("links cannot be created")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise _denied("links cannot be created")

    def readlink(self, path: bytes) -> bytes:
        self.map_path(path)
        raise OSError(errno.EINVAL, "Not a link")

    def exit(self) -> None:
        self._endpoint.audit.event("sftp-end", session=self._session.id, tenant=self._tenant.name)


# The requests a `stall` fault slows down: every one asyncssh lets return an
# awaitable (directory listings, served by an async iterator, go unslowed).
_REPLIES = (
    "realpath", "stat", "lstat", "fstat", "setstat", "fsetstat", "lsetstat", "open", "close", "read",
    "write", "remove", "rename", "posix_rename", "mkdir", "rmdir", "readlink", "symlink", "link",
)


def _delayed(method: Callable[..., Any], delay: float) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def waiting(*args: Any) -> Any:
        await asyncio.sleep(delay)
        result = method(*args)
        if isinstance(result, Awaitable):
            result = await result
        return result

    return waiting
