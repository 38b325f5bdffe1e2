"""Run as a script in a fresh interpreter (test_side_effects.py does):
does a sandbox that served an upload leave asyncssh, asyncio and
cryptography as it found them?

Snapshot: for every loaded module named asyncssh, asyncio or cryptography
(or a submodule of one), each value in the module's __dict__ and, for each
class defined in that module, each value in the class's __dict__. Values
are held, so identity is compared with no id reused. Between two snapshots
bwsandbox.testing is imported, a sandbox started, one upload sent with
paramiko and processed, and the sandbox stopped.

What the libraries change by themselves when used is not bwsandbox's doing,
so the same upload is first served by a plain asyncssh SFTP server (the
control) and what that changes (a connection counter, say) is reported
apart, not as a difference. Also not differences: a module imported later
(new as a whole), a submodule bound to its package by its import, and
cryptography's deprecation wrapper caching an attribute of the module it
wraps (the same object, now also in the wrapper's __dict__).

Prints one JSON object: {"changed": [...], "removed": [...], "added":
[...], "control": [...], "new_modules": N, "report_verdict": ...}; exit 1
if any of the first three is not empty.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import asyncssh
import cryptography  # noqa: F401  (loaded before the first snapshot)
import paramiko

PREFIXES = ("asyncssh", "asyncio", "cryptography")
DATA = b"email,first_name,last_name\r\nada@example.com,Ada,Lovelace\r\n"
NAME = "users_20261125.csv"

Snapshot = dict[str, object]


def watched(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PREFIXES)


def snapshot() -> Snapshot:
    """Every watched module's and class's attribute values, by name:
    `module:attr` and `module:Class.attr`. A module that
    cryptography.utils wraps (deprecations) is also read through the
    wrapper, as `module[real]:...`."""
    values: Snapshot = {}
    for name, module in list(sys.modules.items()):
        if module is None or not watched(name):
            continue
        spaces = [(name, vars(module))]
        real = vars(module).get("_module")
        if isinstance(real, types.ModuleType) and real is not module and real.__name__ == name:
            spaces.append((f"{name}[real]", vars(real)))
        for label, namespace in spaces:
            for attr, value in list(namespace.items()):
                values[f"{label}:{attr}"] = value
                if isinstance(value, type) and value.__module__ == name:
                    for class_attr, class_value in list(vars(value).items()):
                        values[f"{label}:{attr}.{class_attr}"] = class_value
    return values


def _cache_fill(key: str, after: Snapshot) -> bool:
    """An attribute of a wrapped module that the wrapper cached: the same
    object as the wrapped module's (or one of its class's entries)."""
    module, _, rest = key.partition(":")
    attr = rest.split(".", 1)[0]
    real = f"{module}[real]:{attr}"
    return real in after and after.get(f"{module}:{attr}") is after[real]


def compare(before: Snapshot, after: Snapshot, modules_before: set[str]) -> dict[str, list[str]]:
    changed = sorted(k for k in before.keys() & after.keys() if before[k] is not after[k])
    removed = sorted(before.keys() - after.keys())
    added = sorted(
        k for k in after.keys() - before.keys()
        if k.split(":")[0].removesuffix("[real]") in modules_before  # a later module is new as a whole
        and not isinstance(after[k], types.ModuleType)  # `import a.b` binds b on a
        and not _cache_fill(k, after)
    )
    return {"changed": changed, "removed": removed, "added": added}


def paramiko_put(host: str, port: int, username: str, password: str, known_hosts: Path, path: str) -> None:
    client = paramiko.SSHClient()  # RejectPolicy: the host key must be in known_hosts
    client.load_host_keys(str(known_hosts))
    client.connect(host, port, username=username, password=password, allow_agent=False,
                   look_for_keys=False, timeout=20)
    with client, client.open_sftp() as sftp, sftp.open(path, "wb") as fh:
        fh.write(DATA)


async def plain_asyncssh_upload(folder: Path) -> None:
    """The control: the same upload served by asyncssh alone."""
    key = asyncssh.generate_private_key("ssh-ed25519")

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return password == "control"

    root = folder / "root"
    root.mkdir()
    server = await asyncssh.listen(
        "127.0.0.1", 0, server_factory=Server, server_host_keys=[key],
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=os.fsencode(root)),
    )
    port = server.sockets[0].getsockname()[1]
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {key.export_public_key().decode()}")
    try:
        await asyncio.to_thread(paramiko_put, "127.0.0.1", port, "user", "control", known_hosts, f"/{NAME}")
    finally:
        server.close()
        await server.wait_closed()
    assert (root / NAME).read_bytes() == DATA


def sandbox_upload(folder: Path) -> dict[str, Any]:
    from bwsandbox.testing import SandboxServer

    server = SandboxServer(folder).start()
    try:
        handle = server.reset()
        paramiko_put(handle.host, handle.port, handle.username, handle.password, handle.known_hosts,
                     f"{handle.drop_folder.rstrip('/')}/{NAME}")
        report: dict[str, Any] = handle.wait_processed(NAME)
        server.check()
        return report
    finally:
        server.stop()


def main() -> int:
    asyncio.run(asyncio.sleep(0))  # asyncio as an integrator's process has used it
    with tempfile.TemporaryDirectory(prefix="bwsandbox-side-effects-") as tmp:
        control_before = snapshot()
        asyncio.run(plain_asyncssh_upload(Path(tmp)))
        control = compare(control_before, snapshot(), {n for n in sys.modules if watched(n)})
        expected = {k for keys in control.values() for k in keys}

        modules_before = {n for n in sys.modules if watched(n)}
        before = snapshot()
        (Path(tmp) / "sandbox").mkdir()
        report = sandbox_upload(Path(tmp) / "sandbox")
        after = snapshot()

    result: dict[str, object] = {
        kind: [k for k in keys if k not in expected]
        for kind, keys in compare(before, after, modules_before).items()
    }
    result["control"] = sorted(expected)
    result["new_modules"] = len({n for n in sys.modules if watched(n)} - modules_before)
    result["report_verdict"] = report.get("verdict")
    print(json.dumps(result))
    return 1 if any(result[k] for k in ("changed", "removed", "added")) else 0


if __name__ == "__main__":
    sys.exit(main())
