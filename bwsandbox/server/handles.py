"""Open SFTP handles: at most so many per session, and in all.

Every open file holds a file descriptor of the server process, and so may a
directory handle (asyncssh's listing keeps its directory open between two
READDIRs). Descriptors are what the process has least of (RLIMIT_NOFILE,
often 1,024): once they are gone, no connection can be accepted (every
tenant is locked out), and the worker cannot open a received file to hash it.

OpenSSH's sftp-server runs one process per session, so its handles are
bounded by that process's own descriptor limit (limits@openssh.com reports
it less 5 as `max-open-handles`). Here every session shares one process, so
the server counts them (docs/server.md "Limits and protection"):

- `max_handles_per_session` (256): the file and directory handles of one SSH
  connection (all its SFTP channels); real clients hold a handful.
- `max_open_handles` (4,096): those of every session of the server (both
  listeners), and never more than half the process's descriptor limit, so
  connections, the store and the worker keep the other half.

Past either, OPEN and OPENDIR answer an SFTP failure saying which limit and
what to do; handles already open keep working, and a close frees a slot.
A close frees one only once asyncssh has really dropped the handle (server/
compat.py), and when a connection ends whatever its sessions still count is
given back at once (`session_ended`), their files being closed just after.
"""

from __future__ import annotations

import asyncssh

from bwsandbox.server.session import Session


def descriptor_limit() -> int | None:
    """The process's soft limit on open file descriptors (None: no limit known)."""
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else soft


def total_limit(setting: int, descriptors: int | None) -> int:
    """`max_open_handles`, and at most half the descriptor limit."""
    return setting if descriptors is None else min(setting, descriptors // 2)


class Handles:
    """The open handles of one server, shared by the sessions of its listeners."""

    def __init__(self, per_session: int, total: int) -> None:
        self.per_session = per_session
        self.total = total
        self.open = 0

    def acquire(self, session: Session) -> None:
        """Count one more handle of `session`, or refuse it (asyncssh.SFTPFailure)."""
        if session.handles_given_back:  # a request still queued as its connection ended
            raise asyncssh.SFTPFailure("The session has ended")
        if session.handles >= self.per_session:
            raise asyncssh.SFTPFailure(
                f"Too many open files in this session (limit {self.per_session}): close some first"
            )
        if self.open >= self.total:
            raise asyncssh.SFTPFailure(
                f"Too many open files on this server (limit {self.total} for all sessions): "
                "close some, or try again later"
            )
        session.handles += 1
        self.open += 1

    def release(self, session: Session, count: int = 1) -> None:
        """`count` handles of `session` were closed (by the client, or as its session ended)."""
        if session.handles_given_back:  # its connection ended and gave back its whole count
            return
        if not 0 <= count <= session.handles:  # a close counted twice: the cap could be passed
            raise RuntimeError(f"{count} handles closed, but session {session.id} counts {session.handles}")
        session.handles -= count
        self.open -= count

    def session_ended(self, session: Session) -> None:
        """`session`'s connection is gone: give back whatever it still counts.

        asyncssh closes the handles left open just after (its SFTP channels end
        on their own task), and tells of them through `release`, ignored from
        now on; that a count was wrong cannot outlive the connection."""
        self.release(session, session.handles)
        session.handles_given_back = True
