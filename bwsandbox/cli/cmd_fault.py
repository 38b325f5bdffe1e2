"""`bwsandbox fault add|list|clear`: production's bad days on demand, switched
while the sandbox runs (bwsandbox/faults.py says what each kind does).

    bwsandbox fault add --tenant acme disconnect --after-bytes 1024 --times 1
    bwsandbox fault add --region us host-key --times 1
    bwsandbox fault list --tenant acme [--format json]
    bwsandbox fault clear --tenant acme          (or --region us, --id N, --all)
"""

from __future__ import annotations

import argparse
import json
import sqlite3

from bwsandbox import clock as clock_mod
from bwsandbox import faults, store
from bwsandbox import tenants as tenants_mod
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.errors import UsageError
from bwsandbox.textsafe import one_line


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fault", help="make the sandbox fail on purpose: drops, refusals, slowness")
    p.set_defaults(handler=_no_action)
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    add = actions.add_parser("add", help="switch a fault on", description=faults.__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    add.add_argument("kind", choices=[k.value for k in faults.FaultKind], metavar="KIND",
                     help="one of: " + ", ".join(k.value for k in faults.FaultKind))
    _who(add)
    add.add_argument("--after-bytes", type=_whole, default=0, metavar="N",
                     help="disconnect, disk-full: how many bytes of the file get through first")
    add.add_argument("--times", type=_whole, default=None, metavar="K",
                     help="fire K times, then lift (default: until cleared)")
    add.add_argument("--delay-ms", type=_whole, default=0, metavar="D", help="stall: milliseconds")
    add.add_argument("--kbps", type=_whole, default=0, metavar="R", help="slow: kilobytes per second")
    add.add_argument("--probability", type=float, default=1.0, metavar="P",
                     help="fire with this chance each time (0-1; default 1)")
    add.add_argument("--seed", type=_integer, default=0, help="seed of the chance, for reproducible runs")
    add.add_argument("--format", choices=["text", "json"], default="text")
    add_data_dir(add)
    add.set_defaults(handler=_add)

    ls = actions.add_parser("list", help="the faults switched on")
    _who(ls)
    ls.add_argument("--format", choices=["text", "json"], default="text")
    add_data_dir(ls)
    ls.set_defaults(handler=_list)

    clear = actions.add_parser("clear", help="switch faults off")
    _who(clear)
    clear.add_argument("--id", type=int, default=None, dest="fault_id", help="only fault N")
    clear.add_argument("--all", action="store_true", help="every fault of every tenant and endpoint")
    add_data_dir(clear)
    clear.set_defaults(handler=_clear)


def _who(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", default=None, help="the tenant (default: the only one, if there is one)")
    p.add_argument("--region", choices=["us", "eu"], default=None,
                   help="a whole endpoint (every tenant on it)")


def _integer(text: str, low: int = store.INT_MIN) -> int:
    """A whole number from `low` up to what the store holds (SQLite's 64-bit
    INTEGER): a larger one is a usage error here, not an OverflowError later."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"cannot be below {low}: {value}")
    if value > store.INT_MAX:
        raise argparse.ArgumentTypeError(f"cannot be above {store.INT_MAX}: {value}")
    return value


def _whole(text: str) -> int:
    return _integer(text, low=0)


def _no_action(args: argparse.Namespace) -> int:
    raise UsageError("fault: give an action: add KIND, list or clear")


def _target(args: argparse.Namespace, conn: sqlite3.Connection) -> tuple[str | None, str | None]:
    """(region, tenant): --region alone means the endpoint; --tenant a tenant;
    neither, the only tenant there is."""
    if args.region and args.tenant:
        raise UsageError("give --tenant or --region, not both")
    if args.region:
        return args.region, None
    if args.tenant:
        return None, args.tenant
    every = tenants_mod.all_tenants(conn)
    if len(every) != 1:
        names = ", ".join(one_line(t.name) for t in every) or "none yet"
        raise UsageError(f"which tenant? give --tenant NAME (tenants: {names}) or --region us|eu")
    return None, every[0].name


def _add(args: argparse.Namespace) -> int:
    with open_store(args) as (_settings, conn):
        kind = faults.FaultKind(args.kind)
        if kind in faults.ENDPOINT_ONLY and not args.tenant and not args.region:
            args.region = "us"  # the default endpoint, as `serve` prints it first
        region, tenant = _target(args, conn)
        fault = faults.add(
            conn, kind=kind, region=region or "us", tenant=tenant,
            created_at=clock_mod.load(conn).iso(), after_bytes=args.after_bytes, times=args.times,
            delay_ms=args.delay_ms, kbps=args.kbps, probability=args.probability, seed=args.seed,
        )
    if args.format == "json":
        print(json.dumps(fault.to_dict(), indent=2))
    else:
        print(f"fault on: {fault.describe()}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with open_store(args) as (_settings, conn):
        if args.tenant or args.region:
            region, tenant = _target(args, conn)
        else:
            region, tenant = None, None
        active = faults.listing(conn, tenant=tenant, region=region)
    if args.format == "json":
        print(json.dumps([f.to_dict() for f in active], indent=2))
    elif not active:
        print("no fault is switched on")
    else:
        for fault in active:
            print(fault.describe())
    return 0


def _clear(args: argparse.Namespace) -> int:
    with open_store(args) as (_settings, conn):
        if args.all or args.fault_id is not None:
            cleared = faults.clear(conn, fault_id=args.fault_id)
        else:
            region, tenant = _target(args, conn)
            cleared = faults.clear(conn, tenant=tenant, region=region)
    print(f"{cleared} fault(s) cleared")
    return 0
