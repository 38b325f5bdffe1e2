"""`bwsandbox tenant add|list`: the accounts "support" issues."""

from __future__ import annotations

import argparse
import json

from bwsandbox import control, store
from bwsandbox import tenants as tenants_mod
from bwsandbox.cli import layout
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.cli.render_server import print_table
from bwsandbox.fsutil import running_endpoints
from bwsandbox.spec.fields import Profile, custom_key_problem
from bwsandbox.tenants import Region


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tenant", help="add or list tenants (SFTP accounts)")
    tsub = p.add_subparsers(dest="tenant_command", metavar="ACTION")
    tsub.required = True

    add = tsub.add_parser("add", help="create a tenant")
    add_data_dir(add)
    add.add_argument("name")
    add.add_argument("--username", required=True)
    add.add_argument("--password", required=True)
    add.add_argument("--region", choices=[r.value for r in Region], default="us")
    add.add_argument("--profile", choices=[p.value for p in Profile], default="core")
    add.add_argument("--licenses", type=_licenses, default=1000)
    add.add_argument("--contact", default="", metavar="EMAIL", help="the Technical Contact address")
    add.add_argument("--locale", default="en-US", help="en-US or en-GB (settles ambiguous dates)")
    add.add_argument(
        "--authorized-key", action="append", default=[], metavar="LINE",
        help="an OpenSSH public key line allowed to log in (repeatable)",
    )
    add.add_argument(
        "--custom-key", action="append", default=[], metavar="KEY", type=_custom_key,
        help="a custom column the tenant accepts, [a-z0-9_] (repeatable; docs/production.md §3)",
    )
    add.set_defaults(handler=_add)

    ls = tsub.add_parser("list", help="list tenants")
    add_data_dir(ls)
    ls.add_argument("--format", choices=["table", "json"], default="table")
    ls.set_defaults(handler=_list)


def _licenses(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= store.INT_MAX:
        raise argparse.ArgumentTypeError(f"must be 0 to {store.INT_MAX}, not {value}")
    return value


def _custom_key(text: str) -> str:
    # The widest syntax here (an engage dimension key may hold capitals);
    # `tenants.add` checks the key against the tenant's profile.
    if (problem := custom_key_problem(text, Profile.ENGAGE)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _add(args: argparse.Namespace) -> int:
    spec = control.TenantSpec(
        name=args.name, username=args.username, password=args.password, region=args.region,
        profile=args.profile, licenses=args.licenses, contact=args.contact, locale=args.locale,
        custom_keys=args.custom_key, authorized_keys=args.authorized_key,
    )
    with open_store(args, create=True) as (settings, conn):
        tenant, _ = control.create_tenant(conn, settings, spec)
    port = settings.port if tenant.region is Region.US else settings.eu_port
    # A running serve (perhaps on --port 0) knows the real port.
    port = running_endpoints(settings.data_dir).get(str(tenant.region), ("", port))[1]
    print(
        f"tenant {tenant.name} ({tenant.region}, {tenant.profile}) added: "
        f"sftp -P {port} {tenant.username}@{settings.host}"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        rows = [t.to_dict() for t in tenants_mod.all_tenants(conn)]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    columns = ["name", "region", "profile", "username", "contact", "licenses", "locale"]
    print_table(layout.stdout(), columns, [[r[c] for c in columns] for r in rows],
                drop=("locale", "licenses", "contact"), head=("name", "region", "profile"))
    return 0
