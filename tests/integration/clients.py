"""Drivers for the real SFTP clients (CLIENTS.md "Non-interactive recipes").

Each driver uploads one local file to a remote path under one host-key
`Trust` mode and returns a `Result` (exit code and output). Every driver runs
with HOME set to a private folder, so nothing reads or writes the user's
~/.ssh, ~/.putty or rclone config. A missing client is a failure, never a
skip: CI installs them all with scripts/bootstrap.sh.

Trust modes, as each client documents them (CLIENTS.md "Host keys"):

    STRICT   nothing known, strict/batch checking: the client must refuse
    ACCEPT   accept the key as told (accept-new, a pinned fingerprint, or
             "don't check"); stores it in the client's trust store when it has one
    KNOWN    strict checking against what ACCEPT stored (or the pin it used)
"""

from __future__ import annotations

import asyncio
import enum
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import paramiko


class Trust(enum.Enum):
    STRICT = "strict"
    ACCEPT = "accept"
    KNOWN = "known"


@dataclass(frozen=True, slots=True)
class Result:
    rc: int
    out: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass(slots=True)
class Account:
    """Where and how a client logs in, plus its private HOME and trust files."""

    host: str
    port: int
    username: str
    password: str
    home: Path
    ed25519_sha256: str = ""  # what psftp pins (PuTTY prefers ed25519)
    ecdsa_sha256: str = ""  # what curl pins (libssh2 prefers ECDSA)
    known_hosts_lines: list[str] = field(default_factory=list)  # `bwsandbox hostkey known-hosts`

    @property
    def known_hosts(self) -> Path:
        return self.home / "known_hosts"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_", "RCLONE_"))}
        env.update(HOME=str(self.home), RCLONE_CONFIG=str(self.home / "rclone.conf"), LC_ALL="C.UTF-8")
        return env


def require(program: str) -> str:
    path = shutil.which(program)
    if path is None:  # never a silent skip: CI installs every client
        raise AssertionError(f"{program} is not installed: run scripts/bootstrap.sh --test")
    return path


def run(args: list[str], account: Account, *, timeout: float = 60, stdin: str | None = None) -> Result:
    require(args[0])
    proc = subprocess.run(
        args, env=account.env(), input=stdin, capture_output=True, text=True, timeout=timeout,
        cwd=account.home,
    )
    return Result(proc.returncode, proc.stdout + proc.stderr)


def _ssh_options(account: Account, trust: Trust) -> list[str]:
    strict = {Trust.STRICT: "yes", Trust.ACCEPT: "accept-new", Trust.KNOWN: "yes"}[trust]
    return [
        "-F", "/dev/null",
        "-o", f"UserKnownHostsFile={account.known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", f"StrictHostKeyChecking={strict}",
        "-o", "PubkeyAuthentication=no",
        "-o", "PreferredAuthentications=password,keyboard-interactive",
        "-o", "ConnectTimeout=20",
    ]


# -- OpenSSH sftp -------------------------------------------------------------


def openssh_batch(account: Account, lines: list[str], trust: Trust, extra: list[str] | None = None) -> Result:
    batch = account.home / "sftp.batch"
    batch.write_text("\n".join(lines) + "\n")
    return run(
        ["sshpass", "-p", account.password, "sftp", "-o", "BatchMode=no", *_ssh_options(account, trust),
         *(extra or []), "-P", str(account.port), "-b", str(batch), f"{account.username}@{account.host}"],
        account,
    )


def openssh_put(account: Account, local: Path, remote: str, trust: Trust) -> Result:
    return openssh_batch(account, [f"put {local} {remote}"], trust)


# -- PuTTY psftp ---------------------------------------------------------------


def psftp_batch(account: Account, lines: list[str], trust: Trust) -> Result:
    script = account.home / "psftp.batch"
    script.write_text("\n".join(lines) + "\n")
    args = ["psftp", "-batch", "-P", str(account.port), "-pw", account.password]
    if trust is not Trust.STRICT:
        args += ["-hostkey", account.ed25519_sha256]
    return run([*args, "-b", str(script), f"{account.username}@{account.host}"], account)


def psftp_put(account: Account, local: Path, remote: str, trust: Trust) -> Result:
    return psftp_batch(account, [f"put {local} {remote}"], trust)


# -- lftp ----------------------------------------------------------------------


def lftp_put(
    account: Account, local: Path, remote: str, trust: Trust, *, temp_file: bool = False
) -> Result:
    strict = "yes" if trust is not Trust.ACCEPT else "ask"
    connect = (
        f"ssh -a -x -F /dev/null -o UserKnownHostsFile={account.known_hosts}"
        f" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking={strict}"
        " -o PubkeyAuthentication=no"
    )
    folder, name = remote.rsplit("/", 1)
    commands = [
        "set cmd:fail-exit yes",
        "set net:max-retries 1",
        "set net:timeout 15",
        f"set sftp:auto-confirm {'yes' if trust is Trust.ACCEPT else 'no'}",
        f"set sftp:connect-program '{connect}'",
        f"set xfer:use-temp-file {'yes' if temp_file else 'no'}",
        f"cd {folder or '/'}",
        f"put {local} -o {name}",
        "bye",
    ]
    return run(
        ["lftp", "-u", f"{account.username},{account.password}", "-p", str(account.port),
         "-e", "; ".join(commands), f"sftp://{account.host}"],
        account, stdin="",
    )


# -- curl (libssh2) -----------------------------------------------------------


def curl_put(account: Account, local: Path, remote: str, trust: Trust) -> Result:
    ssh_dir = account.home / ".ssh"
    ssh_dir.mkdir(exist_ok=True)
    # curl accepts any key silently when ~/.ssh/known_hosts does not exist;
    # with the file present and the host absent it refuses (exit 60).
    (ssh_dir / "known_hosts").touch()
    args = ["curl", "--silent", "--show-error", "--max-time", "60"]
    args += ["-u", f"{account.username}:{account.password}"]
    if trust is not Trust.STRICT:
        args += ["--hostpubsha256", account.ecdsa_sha256.removeprefix("SHA256:")]
    return run([*args, "-T", str(local), f"sftp://{account.host}:{account.port}{remote}"], account)


# -- rclone --------------------------------------------------------------------


def rclone_put(account: Account, local: Path, remote: str, trust: Trust) -> Result:
    obscured = run(["rclone", "obscure", account.password], account).out.strip()
    opts = [f"host={account.host}", f"port={account.port}", f"user={account.username}", f"pass={obscured}"]
    if trust is Trust.STRICT:
        account.known_hosts.touch()
        opts.append(f"known_hosts_file={account.known_hosts}")
    elif trust is Trust.KNOWN:
        pinned = account.home / "rclone_known_hosts"
        pinned.write_text("\n".join(account.known_hosts_lines) + "\n")
        opts.append(f"known_hosts_file={pinned}")
    # ACCEPT: rclone's default is no host key check at all (CLIENTS.md).
    return run(
        ["rclone", "--retries", "1", "--low-level-retries", "1", "--contimeout", "20s",
         "copyto", str(local), f":sftp,{','.join(opts)}:{remote.lstrip('/')}"],
        account,
    )


# -- paramiko --------------------------------------------------------------------


def paramiko_client(account: Account, trust: Trust) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    if trust is Trust.ACCEPT:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    else:
        if account.known_hosts.exists():
            client.load_host_keys(str(account.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        account.host, account.port, username=account.username, password=account.password,
        allow_agent=False, look_for_keys=False, timeout=20,
    )
    if trust is Trust.ACCEPT:
        client.save_host_keys(str(account.known_hosts))
    return client


def paramiko_put(account: Account, local: Path, remote: str, trust: Trust) -> Result:
    try:
        client = paramiko_client(account, trust)
    except (paramiko.SSHException, OSError) as exc:
        return Result(1, f"{type(exc).__name__}: {exc}")
    try:
        sftp = client.open_sftp()
        # paramiko sends the relative path (`incoming/x`) and stats after close.
        sftp.put(str(local), remote.lstrip("/"))
        sftp.close()
        return Result(0, "")
    except (paramiko.SSHException, OSError) as exc:
        return Result(1, f"{type(exc).__name__}: {exc}")
    finally:
        client.close()


# -- asyncssh client -------------------------------------------------------------


async def asyncssh_connect(account: Account, trust: Trust) -> asyncssh.SSHClientConnection:
    known_hosts: object
    if trust is Trust.ACCEPT:
        known_hosts = None  # "don't check", as asyncssh documents
    elif trust is Trust.KNOWN:
        known_hosts = asyncssh.import_known_hosts("\n".join(account.known_hosts_lines) + "\n")
    else:
        known_hosts = asyncssh.import_known_hosts("")
    return await asyncssh.connect(
        account.host, account.port, username=account.username, password=account.password,
        known_hosts=known_hosts, client_keys=None, agent_path=None, config=None,
        connect_timeout=20,
    )


def asyncssh_put(account: Account, local: Path, remote: str, trust: Trust) -> Result:
    async def go() -> None:
        async with await asyncssh_connect(account, trust) as conn, conn.start_sftp_client() as sftp:
            await sftp.put(str(local), remote)

    try:
        asyncio.run(go())
    except (asyncssh.Error, OSError) as exc:
        return Result(1, f"{type(exc).__name__}: {exc}")
    return Result(0, "")


DRIVERS = {
    "openssh": openssh_put,
    "psftp": psftp_put,
    "lftp": lftp_put,
    "curl": curl_put,
    "rclone": rclone_put,
    "paramiko": paramiko_put,
    "asyncssh": asyncssh_put,
}
