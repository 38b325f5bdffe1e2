"""`bwsandbox hostkey show|known-hosts|rotate` (docs/production.md §2).

Host keys are generated once and reused; `rotate` is the only way they
change, to let a user rehearse production changing its key.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bwsandbox.cli.main import add_data_dir
from bwsandbox.cli.render_server import host_keys_text
from bwsandbox.config import load
from bwsandbox.fsutil import running_endpoints, running_fingerprints
from bwsandbox.server import hostkeys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hostkey", help="show, export or rotate the server's host keys")
    hsub = p.add_subparsers(dest="hostkey_command", metavar="ACTION")
    hsub.required = True

    show = hsub.add_parser("show", help="fingerprints as OpenSSH, PuTTY/FileZilla and curl show them")
    add_data_dir(show)
    show.add_argument("--format", choices=["text", "json"], default="text")
    show.set_defaults(handler=_show)

    kh = hsub.add_parser("known-hosts", help="known_hosts lines for each endpoint, ready to use")
    add_data_dir(kh)
    kh.add_argument("--host", help="host name clients use (default: the running server's, else configured)")
    kh.add_argument("--port", type=int, help="us port (default: the running server's, else configured)")
    kh.add_argument("--eu-port", type=int, help="eu port (default: the running server's, else configured)")
    kh.set_defaults(handler=_known_hosts)

    rot = hsub.add_parser("rotate", help="simulate production changing its host keys")
    add_data_dir(rot)
    rot.add_argument(
        "--announce", action="store_true",
        help="stage new keys and announce them to OpenSSH clients (UpdateHostKeys) "
        "while the current keys stay in use; a later plain `rotate` switches to them",
    )
    rot.set_defaults(handler=_rotate)


def _keys(data_dir: Path) -> list[hostkeys.HostKeyInfo]:
    """The host keys, made now when this data directory has none yet (so a
    job can pin them before the first `serve`): said on stderr, since a
    mistyped --data-dir or the wrong folder would otherwise give keys no
    running server offers."""
    fresh = not hostkeys.keys_dir(data_dir).exists()
    keys = [hostkeys.describe(k) for k in hostkeys.ensure(data_dir)]
    if fresh:
        print(f"bwsandbox: {data_dir} had no host keys: new ones were made there; `bwsandbox serve` "
              "started with this data directory will offer them.", file=sys.stderr)
    return keys


def _show(args: argparse.Namespace) -> int:
    settings = load({"data_dir": args.data_dir})
    keys = _keys(settings.data_dir)
    staged = [hostkeys.describe(k) for k in hostkeys.announced(settings.data_dir)]
    if args.format == "json":
        # Every form the text shows: PuTTY/FileZilla's line and curl's pin too.
        def shown(k: hostkeys.HostKeyInfo) -> dict[str, str]:
            return {**k.to_dict(), "putty": k.putty, "curl_sha256": k.curl_sha256}

        print(json.dumps({"host_keys": [shown(k) for k in keys],
                          "announced": [shown(k) for k in staged]}, indent=2))
        return 0
    print(host_keys_text(keys))
    if staged:
        print(host_keys_text(staged, title="Announced (not yet in use)"))
    if _serve_offers_other_keys(settings.data_dir, keys):
        print("Note: the running `serve` still offers the keys it started with; "
              "restart it to use these.")
    return 0


def _serve_offers_other_keys(data_dir: Path, keys: list[hostkeys.HostKeyInfo]) -> bool:
    """A running `serve` started before a rotation still offers its old keys."""
    offered = running_fingerprints(data_dir)
    return bool(offered) and offered != {k.sha256 for k in keys}


def _known_hosts(args: argparse.Namespace) -> int:
    settings = load({"data_dir": args.data_dir, "host": args.host, "port": args.port,
                     "eu_port": args.eu_port})
    running = running_endpoints(settings.data_dir)
    listen = {"us": (settings.host, settings.port), "eu": (settings.host, settings.eu_port)}
    explicit_port = {"us": args.port, "eu": args.eu_port}
    for region, (run_host, run_port) in running.items():
        if region in listen:  # an explicit --host/--port still wins
            host = settings.host if args.host is not None else run_host
            port = listen[region][1] if explicit_port[region] is not None else run_port
            listen[region] = (host, port)
    keys = _keys(settings.data_dir)
    if _serve_offers_other_keys(settings.data_dir, keys):
        print("# Note: the running `serve` still offers the keys it started with; these are the keys")
        print("# it uses after a restart.")
    for region, (listen_host, port) in listen.items():
        host = "127.0.0.1" if listen_host in ("0.0.0.0", "::", "") else listen_host
        print(f"# bwsandbox {region} endpoint")
        for key in keys:
            print(hostkeys.known_hosts_line(host, port, key))
    return 0


def _rotate(args: argparse.Namespace) -> int:
    settings = load({"data_dir": args.data_dir})
    rotation = hostkeys.rotate(settings.data_dir, announce=args.announce)
    # The way out of a corrupt key: kept aside, never deleted, and said where.
    for was, now in rotation.set_aside:
        print(f"The host key {was} could not be read: kept aside as {now}.")
    if rotation.active:
        print("Host keys rotated: clients that trusted the old keys will now refuse to connect")
        print("(OpenSSH: 'REMOTE HOST IDENTIFICATION HAS CHANGED'). Restart `serve` to use them.")
        print(f"Old keys kept in {hostkeys.keys_dir(settings.data_dir) / 'retired'}.")
    else:
        print("New host keys staged: the server keeps its current keys and announces the new ones")
        print("(hostkeys-00@openssh.com; OpenSSH learns them with -o UpdateHostKeys=yes).")
        print("Restart `serve` to announce them; run `bwsandbox hostkey rotate` later to switch.")
    for path in rotation.remade:
        print(f"Not announced: {path} could not be read, so a new key replaces it from the next")
        print("start with no announce period: clients that trusted the old one see a changed host key.")
    print(host_keys_text(rotation.keys, title="New keys"))
    return 0
