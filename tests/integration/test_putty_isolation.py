"""psftp keeps to the test's own folders (docs/server.md "Connecting with clients").

PuTTY 0.78 picks its folder (trust store `sshhostkeys`, `randomseed`,
`sessions/`) as the first that exists of $XDG_CONFIG_HOME/putty,
$HOME/.putty, the passwd home's .putty and /.putty, unless PUTTYDIR is set.
With only HOME pointing at a fresh folder, a machine where PuTTY ran once
(a real ~/.putty) had the tests read its trust store (a stale key there
fails the "unknown key" checks) and write into it. The drivers set PUTTYDIR
(`clients.Account.env`); here strace shows what psftp opens, and a cache
seeded in PUTTYDIR is what psftp trusts or refuses.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import asyncssh
import pytest
from clients import (
    Account,
    Trust,
    folder_state,
    psftp_put,
    putty_cache,
    putty_cache_line,
    require,
)
from conftest import Harness, tenant_of

# A file syscall of `strace -f -e trace=file`: "PID name(args) = result".
_CALL = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_WRITES = ("mkdir", "rename", "unlink", "rmdir", "link", "symlink", "creat", "truncate", "chmod", "chown",
           "utime", "setxattr", "removexattr", "mknod")
_WRITE_FLAGS = re.compile(r"\bO_(WRONLY|RDWR|CREAT|TRUNC|APPEND)\b")


@pytest.fixture(scope="module")
def strace() -> str:
    path = require("strace")  # installed by scripts/bootstrap.sh --test: missing is a failure
    probe = subprocess.run([path, "-f", "-qq", "-o", os.devnull, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here (ptrace refused?): {probe.stderr.strip()}")
    return path


def _inside(path: str, folder: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(folder.resolve())


def _file_calls(trace: Path, cwd: Path) -> list[tuple[str, str, bool]]:
    """(syscall, path, wrote) for every path argument in the trace; `wrote`:
    a call that changes the file system and succeeded (PuTTY creates its
    folder's parents one by one: mkdir /tmp fails with EEXIST, harmlessly).
    Relative paths are taken from `cwd` (psftp's working directory)."""
    calls = []
    for line in trace.read_text(errors="replace").splitlines():
        match = _CALL.match(line)
        if not match or match.group(1) == "execve":  # argv strings, not paths opened
            continue
        name, args, ret = match.groups()
        writes = name.startswith(_WRITES) or (name.startswith("open") and bool(_WRITE_FLAGS.search(args)))
        writes = writes and ret != "-1"
        for raw in _QUOTED.findall(args):
            if raw:
                calls.append((name, raw if raw.startswith("/") else str(cwd / raw), writes))
    return calls


def test_psftp_opens_putty_files_only_in_puttydir(
    strace: str, sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    """Every psftp mode the client tests use, traced: each path PuTTY names
    (`putty` in it) and each path written is inside the test's tmp_path."""
    local = tmp_path / "feed.csv"
    local.write_bytes(b"x" * 1_000)
    runs = [("strict", Trust.STRICT, True, 1), ("accept", Trust.ACCEPT, True, 0),
            ("known", Trust.KNOWN, True, 0), ("pinned", Trust.KNOWN, False, 0)]
    seen: set[str] = set()
    for label, trust, cache, rc in runs:
        trace = tmp_path / f"psftp-{label}.strace"
        result = psftp_put(account, local, f"/incoming/{label}.csv", trust, cache=cache, trace=trace)
        assert result.rc == rc, f"psftp {label}: exit {result.rc}\n{result.out}"
        calls = _file_calls(trace, account.home)
        assert calls, f"strace recorded nothing for psftp {label}"
        putty_outside = sorted({p for _, p, _ in calls if "putty" in p.lower() and not _inside(p, tmp_path)})
        assert putty_outside == [], f"psftp {label} looked for PuTTY files outside the test: {putty_outside}"
        written_outside = sorted({
            f"{name} {p}" for name, p, writes in calls
            if writes and not _inside(p, tmp_path) and not p.startswith("/dev/")
        })
        assert written_outside == [], f"psftp {label} wrote outside the test: {written_outside}"
        seen.update(p for _, p, _ in calls)
    # The trace did follow psftp into its store: PUTTYDIR's trust store and seed.
    assert str(putty_cache(account)) in seen
    assert str(account.putty_dir / "randomseed") in seen
    rows = sandbox.wait_files(tenant_of(account), 3)
    assert sorted(r["name"] for r in rows) == ["accept.csv", "known.csv", "pinned.csv"]


def test_psftp_trusts_the_key_seeded_in_puttydir_and_refuses_another(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    """Pre-seeding PuTTY's trust store (as for FileZilla, docs/server.md "Connecting
    with clients"): the server's key in PUTTYDIR/sshhostkeys passes
    `-batch`; a different key there under the same name is the
    "POTENTIAL SECURITY BREACH" refusal, so psftp reads this file and no other."""
    (ed25519,) = [line for line in account.known_hosts_lines if " ssh-ed25519 " in line]
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    wrong = f"[{account.host}]:{account.port} {other}"
    local = tmp_path / "feed.csv"
    local.write_bytes(b"y" * 500)

    account.putty_dir.mkdir()
    putty_cache(account).write_text(putty_cache_line(wrong) + "\n")
    refused = psftp_put(account, local, "/incoming/wrong.csv", Trust.KNOWN, cache=True)
    assert refused.rc == 1 and "WARNING - POTENTIAL SECURITY BREACH!" in refused.out, refused.out

    putty_cache(account).write_text(putty_cache_line(ed25519) + "\n")
    trusted = psftp_put(account, local, "/incoming/seeded.csv", Trust.KNOWN, cache=True)
    assert trusted.ok, trusted.out
    rows = sandbox.wait_files(tenant_of(account), 1)
    assert [(r["name"], r["bytes"]) for r in rows] == [("seeded.csv", 500)]
    # psftp stored nothing new: the seeded line was enough.
    assert putty_cache(account).read_text() == putty_cache_line(ed25519) + "\n"


def test_putty_cache_line_matches_what_psftp_stores(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    local = tmp_path / "feed.csv"
    local.write_bytes(b"z" * 10)
    assert psftp_put(account, local, "/incoming/learned.csv", Trust.ACCEPT, cache=True).ok
    (ed25519,) = [line for line in account.known_hosts_lines if " ssh-ed25519 " in line]
    assert putty_cache(account).read_text().splitlines() == [putty_cache_line(ed25519)]


def test_folder_state_sees_every_change(tmp_path: Path) -> None:
    """The guard `psftp_batch` runs around psftp on the user's real PuTTY
    folders, tried on folders of the test's own."""
    present, absent = tmp_path / "present", tmp_path / "absent"
    (present / "sessions").mkdir(parents=True)
    (present / "sshhostkeys").write_text("ssh-ed25519@2222:127.0.0.1 0x1,0x2\n")
    before = folder_state([present, absent])
    assert before == folder_state([present, absent])
    assert before[str(absent)] is None

    (present / "sshhostkeys").write_text("ssh-ed25519@2222:127.0.0.1 0x1,0x3\n")  # same size
    assert folder_state([present, absent]) != before
    before = folder_state([present, absent])
    (present / "randomseed").write_bytes(b"\0" * 128)
    assert folder_state([present, absent]) != before
    before = folder_state([present, absent])
    absent.mkdir()
    assert folder_state([present, absent]) != before
