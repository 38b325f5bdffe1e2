"""The asyncssh front: accounts, host keys, the drop folder, pickup.

Rooms: `hostkeys` (persisted keys, fingerprints), `auth` (password /
keyboard-interactive / public key, lockout, attempt and session limits),
`sftp` (the SFTPServer: permissions, path safety, upload tracking), `pickup`
(hands complete uploads to the Inbox exactly once), `audit` (JSON lines),
`listener` (one asyncssh listener per region), `compat` (the client fixes
asyncssh lacks, for the sandbox's own sessions). The tenant's tree on disk is
`bwsandbox.layout`. `bwsandbox.sandbox.Sandbox` owns their lifecycle.

asyncssh is first imported here, quietly (`bwsandbox.sshlib`), before any
room imports it.
"""

from bwsandbox import sshlib  # noqa: F401  (asyncssh, imported quietly first)
