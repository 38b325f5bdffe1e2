"""Drivers for the real SFTP clients (docs/server.md "Connecting with clients").

Each driver uploads one local file to a remote path under one host-key
`Trust` mode and returns a `Result` (exit code and output). Every driver runs
with HOME set to a private folder, so nothing reads or writes the user's
~/.ssh or rclone config. HOME is not enough for PuTTY: psftp uses
$HOME/.putty only once that folder exists, and before that the login user's
real ~/.putty (from the password database) whenever *that* exists (PuTTY
0.78, unix/storage.c). So every driver also sets PUTTYDIR, which
PuTTY takes before anything else, to HOME/.putty (`Account.putty_dir`), and
`psftp_batch` fails if a run changed any of the user's real PuTTY folders.
A missing client is a failure, never a skip: CI installs them all with
scripts/bootstrap.sh.

Trust modes, as each client documents them (docs/server.md "Host keys"):

    STRICT   nothing known, strict/batch checking: the client must refuse
    ACCEPT   accept the key as told (accept-new, a pinned fingerprint, or
             "don't check"); stores it in the client's trust store when it has one
    KNOWN    strict checking against what ACCEPT stored (or the pin it used)

Where ACCEPT stores what, so KNOWN checks a key learned from the server and
never one the harness hands over:

    openssh, lftp   accept-new / `yes` at ssh's prompt -> known_hosts
    psftp           the `-hostkey` pin (PuTTY ignores its cache then)
    psftp-cache     `y` at psftp's prompt -> PUTTYDIR/sshhostkeys (HOME/.putty)
    curl            the `--hostpubsha256` pin (libssh2 never writes known_hosts)
    rclone          never learns: ssh-keyscan fills its known_hosts_file
    paramiko        AutoAddPolicy + save_host_keys -> known_hosts
    asyncssh        never learns: the key it was shown, written to known_hosts
"""

from __future__ import annotations

import asyncio
import base64
import enum
import functools
import hashlib
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable, Sequence
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

    @property
    def putty_dir(self) -> Path:
        """PuTTY's whole folder (sshhostkeys, randomseed, sessions/): PUTTYDIR."""
        return self.home / ".putty"

    def env(self) -> dict[str, str]:
        # PUTTYSSHHOSTKEYS, PUTTYRANDOMSEED and PUTTYSESSIONS would override
        # parts of PUTTYDIR: none of the caller's PUTTY* variables get through.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_", "RCLONE_", "PUTTY"))}
        env.update(
            HOME=str(self.home), PUTTYDIR=str(self.putty_dir), RCLONE_CONFIG=str(self.home / "rclone.conf"),
            LC_ALL="C.UTF-8",
        )
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


def _openssh_args(account: Account, lines: list[str], trust: Trust, extra: list[str] | None) -> list[str]:
    batch = account.home / "sftp.batch"
    batch.write_text("\n".join(lines) + "\n")
    return ["sshpass", "-p", account.password, "sftp", "-o", "BatchMode=no", *_ssh_options(account, trust),
            *(extra or []), "-P", str(account.port), "-b", str(batch), f"{account.username}@{account.host}"]


def openssh_batch(account: Account, lines: list[str], trust: Trust, extra: list[str] | None = None) -> Result:
    return run(_openssh_args(account, lines, trust, extra), account)


def openssh_spawn(
    account: Account, lines: list[str], trust: Trust, extra: list[str] | None = None
) -> subprocess.Popen[str]:
    """The same, left running (sshpass -> sftp -> ssh) for a test to cut off."""
    args = _openssh_args(account, lines, trust, extra)
    require(args[0])
    return subprocess.Popen(
        args, env=account.env(), cwd=account.home, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def children(pid: int) -> list[int]:
    """Direct child processes of `pid`, from /proc (field 4 of stat is the ppid)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def openssh_put(account: Account, local: Path, remote: str, trust: Trust) -> Result:
    return openssh_batch(account, [f"put {local} {remote}"], trust)


# -- PuTTY psftp ---------------------------------------------------------------


def psftp_batch(
    account: Account, lines: list[str], trust: Trust, *, cache: bool = False, trace: Path | None = None
) -> Result:
    """`cache=False`: ACCEPT and KNOWN pin the ed25519 fingerprint with
    `-hostkey` (PuTTY then neither reads nor writes its cache). `cache=True`:
    PuTTY's own trust store, PUTTYDIR/sshhostkeys: ACCEPT answers `y` at
    "Store key in cache?" (psftp reads the answer from stdin), KNOWN is
    `-batch` against what that stored. `trace`: run psftp under
    `strace -f -e trace=file`, its output into that file.

    Fails (AssertionError) if the run changed one of the user's real PuTTY
    folders (`real_putty_dirs`): the test must only ever use PUTTYDIR."""
    script = account.home / "psftp.batch"
    script.write_text("\n".join(lines) + "\n")
    interactive = cache and trust is Trust.ACCEPT
    args = ["psftp", *([] if interactive else ["-batch"]), "-P", str(account.port), "-pw", account.password]
    if not cache and trust is not Trust.STRICT:
        args += ["-hostkey", account.ed25519_sha256]
    args += ["-b", str(script), f"{account.username}@{account.host}"]
    if trace is not None:
        require("psftp")
        args = ["strace", "-f", "-qq", "-s", "4096", "-e", "trace=file", "-o", str(trace), *args]
    real = real_putty_dirs(account)
    before = folder_state(real)
    result = run(args, account, stdin="y\n" if interactive else "")
    after = folder_state(real)
    changed = [folder for folder in before if before[folder] != after[folder]]
    assert not changed, f"psftp changed the real PuTTY folder(s) {changed} (PUTTYDIR ignored?):\n{result.out}"
    return result


def psftp_put(
    account: Account, local: Path, remote: str, trust: Trust, *, cache: bool = False,
    trace: Path | None = None,
) -> Result:
    return psftp_batch(account, [f"put {local} {remote}"], trust, cache=cache, trace=trace)


def putty_cache(account: Account) -> Path:
    return account.putty_dir / "sshhostkeys"


def real_putty_dirs(account: Account) -> list[Path]:
    """The folders PuTTY 0.78 (unix/storage.c) would use without PUTTYDIR
    for the user running the tests, outside the account's private HOME:
    $XDG_CONFIG_HOME/putty (else ~/.config/putty), $HOME/.putty, the passwd
    home's .putty, /.putty."""
    homes = [os.environ.get("HOME", ""), pwd.getpwuid(os.getuid()).pw_dir]
    config = os.environ.get("XDG_CONFIG_HOME") or (f"{homes[0]}/.config" if homes[0] else "")
    candidates = [f"{config}/putty" if config else "", *(f"{h}/.putty" for h in homes if h), "/.putty"]
    private = account.home.resolve()
    found: list[Path] = []
    for c in candidates:
        path = Path(c) if c else None
        if path is not None and path not in found and not path.resolve().is_relative_to(private):
            found.append(path)
    return found


FileState = tuple[int, int, str] | None  # (size, mtime_ns, sha256); None: a folder


def folder_state(folders: Sequence[Path]) -> dict[str, dict[str, FileState] | None]:
    """Everything under each folder (None: the folder does not exist), to
    compare before and after a run. Reads only; symlinks are not followed."""
    state: dict[str, dict[str, FileState] | None] = {}
    for folder in folders:
        if not folder.is_dir():
            state[str(folder)] = None if not folder.exists() else {"": _file_state(folder)}
            continue
        entries: dict[str, FileState] = {}
        for root, dirs, files in os.walk(folder):
            for name in dirs:
                entries[os.path.relpath(os.path.join(root, name), folder)] = None
            for name in files:
                path = Path(root, name)
                entries[str(path.relative_to(folder))] = _file_state(path)
        state[str(folder)] = entries
    return state


def _file_state(path: Path) -> FileState:
    st = path.lstat()
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
    return (st.st_size, st.st_mtime_ns, digest)


def putty_cache_line(known_hosts_line: str) -> str:
    """An ed25519 `[host]:port ssh-ed25519 AAAA…` known_hosts line as PuTTY's
    sshhostkeys stores it: `ssh-ed25519@PORT:HOST 0xX,0xY`, the point's
    affine coordinates (what psftp writes when `y` is answered; FileZilla
    reads the same file)."""
    target, kind, blob = known_hosts_line.split()[:3]
    if kind != "ssh-ed25519":
        raise ValueError(f"only ssh-ed25519 lines are converted, not {kind}")
    host, _, port = target.removeprefix("[").partition("]:")
    raw = base64.b64decode(blob)
    name_len = int.from_bytes(raw[:4], "big")
    key = raw[8 + name_len:]  # string "ssh-ed25519", then string of the 32-byte point
    p = 2**255 - 19
    d = -121665 * pow(121666, -1, p) % p
    encoded = int.from_bytes(key, "little")
    y, sign = encoded & (2**255 - 1), encoded >> 255
    x2 = (y * y - 1) * pow(d * y * y + 1, -1, p) % p  # RFC 8032 §5.1.3
    x = pow(x2, (p + 3) // 8, p)
    if (x * x - x2) % p:
        x = x * pow(2, (p - 1) // 4, p) % p
    if x & 1 != sign:
        x = p - x
    return f"ssh-ed25519@{port or 22}:{host} 0x{x:x},0x{y:x}"


# -- lftp ----------------------------------------------------------------------


def lftp_batch(account: Account, lines: list[str], trust: Trust, *, temp_file: bool = False) -> Result:
    strict = "yes" if trust is not Trust.ACCEPT else "ask"
    connect = (
        f"ssh -a -x -F /dev/null -o UserKnownHostsFile={account.known_hosts}"
        f" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking={strict}"
        " -o PubkeyAuthentication=no"
    )
    commands = [
        # Level 4 shows what ssh says on its pty ("<--- Host key verification
        # failed." and the lines before it); lftp alone prints only the last.
        "debug 4",
        "set cmd:fail-exit yes",
        "set net:max-retries 1",
        "set net:timeout 15",
        f"set sftp:auto-confirm {'yes' if trust is Trust.ACCEPT else 'no'}",
        f"set sftp:connect-program '{connect}'",
        f"set xfer:use-temp-file {'yes' if temp_file else 'no'}",
        *lines,
        "bye",
    ]
    return run(
        ["lftp", "-u", f"{account.username},{account.password}", "-p", str(account.port),
         "-e", "; ".join(commands), f"sftp://{account.host}"],
        account, stdin="",
    )


def lftp_put(
    account: Account, local: Path, remote: str, trust: Trust, *, temp_file: bool = False
) -> Result:
    folder, name = remote.rsplit("/", 1)
    return lftp_batch(account, [f"cd {folder or '/'}", f"put {local} -o {name}"], trust, temp_file=temp_file)


# -- curl (libssh2) -----------------------------------------------------------


def curl_put(
    account: Account, local: Path, remote: str, trust: Trust, *, known_hosts_file: bool = True
) -> Result:
    # curl accepts any key silently when ~/.ssh/known_hosts does not exist;
    # with the file present and the host absent it refuses (exit 60). So
    # every mode creates the (empty) file unless told not to.
    if known_hosts_file:
        curl_known_hosts(account).parent.mkdir(exist_ok=True)
        curl_known_hosts(account).touch()
    args = ["curl", "--silent", "--show-error", "--max-time", "60"]
    args += ["-u", f"{account.username}:{account.password}"]
    if trust is not Trust.STRICT:
        args += ["--hostpubsha256", account.ecdsa_sha256.removeprefix("SHA256:")]
    return run([*args, "-T", str(local), f"sftp://{account.host}:{account.port}{remote}"], account)


def curl_known_hosts(account: Account) -> Path:
    return account.home / ".ssh" / "known_hosts"


# -- rclone --------------------------------------------------------------------


def rclone_put(account: Account, local: Path, remote: str, trust: Trust) -> Result:
    obscured = run(["rclone", "obscure", account.password], account).out.strip()
    opts = [f"host={account.host}", f"port={account.port}", f"user={account.username}", f"pass={obscured}"]
    if trust is Trust.STRICT:
        account.known_hosts.touch()
    if trust is not Trust.ACCEPT:
        opts.append(f"known_hosts_file={account.known_hosts}")
    # ACCEPT: rclone's default is no host key check at all (docs/server.md "Connecting with clients").
    result = run(
        ["rclone", "--retries", "1", "--low-level-retries", "1", "--contimeout", "20s",
         "copyto", str(local), f":sftp,{','.join(opts)}:{remote.lstrip('/')}"],
        account,
    )
    if trust is Trust.ACCEPT and result.ok:
        # rclone cannot learn a key: 1.60 has no accept-new and never writes
        # known_hosts_file; its docs point at OpenSSH's known_hosts. What
        # OpenSSH's accept-new stores (ed25519 only) rclone refuses, as it
        # picks ECDSA ("knownhosts: key mismatch", see the tests), so the
        # file is filled the way rclone users do it: ssh-keyscan records
        # every key the server offers.
        keyscan(account)
    return result


def keyscan(account: Account) -> None:
    scanned = run(["ssh-keyscan", "-T", "20", "-p", str(account.port), account.host], account)
    lines = [ln for ln in scanned.out.splitlines() if ln.startswith(f"[{account.host}]:{account.port} ")]
    assert scanned.ok and lines, scanned.out
    with account.known_hosts.open("a") as f:
        f.writelines(ln + "\n" for ln in lines)


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
    elif trust is Trust.KNOWN and account.known_hosts.exists():
        known_hosts = str(account.known_hosts)
    else:
        known_hosts = asyncssh.import_known_hosts("")
    conn = await asyncssh.connect(
        account.host, account.port, username=account.username, password=account.password,
        known_hosts=known_hosts, client_keys=None, agent_path=None, config=None,
        connect_timeout=20,
    )
    if trust is Trust.ACCEPT:
        # asyncssh cannot learn a key by itself (no accept-new, nothing is
        # written): an application trusting on first use stores the key it
        # was shown, which is what KNOWN then checks.
        _remember(account, conn.get_server_host_key())
    return conn


def _remember(account: Account, key: asyncssh.SSHKey | None) -> None:
    assert key is not None
    line = f"[{account.host}]:{account.port} {key.export_public_key().decode().strip()}\n"
    known = account.known_hosts.read_text() if account.known_hosts.exists() else ""
    if line not in known:
        account.known_hosts.write_text(known + line)


def asyncssh_put(account: Account, local: Path, remote: str, trust: Trust) -> Result:
    async def go() -> None:
        async with await asyncssh_connect(account, trust) as conn, conn.start_sftp_client() as sftp:
            await sftp.put(str(local), remote)

    try:
        asyncio.run(go())
    except (asyncssh.Error, OSError) as exc:
        return Result(1, f"{type(exc).__name__}: {exc}")
    return Result(0, "")


Driver = Callable[[Account, Path, str, Trust], Result]

DRIVERS: dict[str, Driver] = {
    "openssh": openssh_put,
    "psftp": psftp_put,
    "psftp-cache": functools.partial(psftp_put, cache=True),
    "lftp": lftp_put,
    "curl": curl_put,
    "rclone": rclone_put,
    "paramiko": paramiko_put,
    "asyncssh": asyncssh_put,
}
