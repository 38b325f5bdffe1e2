"""The asyncssh front (issue #3): accounts, host keys, the drop folder, pickup.

Rooms: `hostkeys` (persisted keys, fingerprints), `tree` (each tenant's chroot
on disk), `auth` (password / keyboard-interactive / public key, lockout,
attempt and session limits), `sftp` (the SFTPServer: permissions, path
safety, upload tracking), `pickup` (hands complete uploads to the Inbox
exactly once), `audit` (JSON lines), `listener` (one asyncssh listener per
region). `bwsandbox.sandbox.Sandbox` owns their lifecycle.
"""
