"""`bwsandbox pgp export-key --tenant T` (docs/production.md §10): the public key that
integrators encrypt engage files to (generated on first use)."""

from __future__ import annotations

import argparse

from bwsandbox import tenants as tenants_mod
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.ingest import pgp


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pgp", help="the tenant's sandbox PGP key")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    exp = actions.add_parser("export-key", help="print the armored public key to encrypt files to")
    add_data_dir(exp)
    exp.add_argument("--tenant", required=True, metavar="T")
    exp.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        tenant = tenants_mod.require(conn, args.tenant)
    print(pgp.public_key(settings.data_dir, tenant), end="")
    return 0
