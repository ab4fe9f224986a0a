"""`cgr opensips drouting-sync`: fill OpenSIPS's DRouting tables from the loaded Suppliers."""

from __future__ import annotations

import argparse
import sys
import urllib.error

from sqlalchemy.exc import SQLAlchemyError

from cgrpy.config import load_settings
from cgrpy.opensips.drouting import (
    DRoutingError,
    build_rows,
    mi_dr_reload,
    parse_gateway_option,
    sync,
)
from cgrpy.storage.db import describe_db_error, make_engine
from cgrpy.storage.tariffplans import read_tariffplan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("opensips", help="OpenSIPS integration helpers")
    osub = p.add_subparsers(dest="opensips_command", metavar="COMMAND", required=True)
    d = osub.add_parser("drouting-sync", help="write dr_gateways/dr_carriers/dr_rules from Suppliers")
    d.add_argument("--db-url", help="StorDB URL (default $CGRPY_STORDB_URL)")
    d.add_argument("--tpid", help="tariff plan ID (default $CGRPY_TPID)")
    d.add_argument("--opensips-db-url", help="database holding OpenSIPS's dr_* tables (default: --db-url)")
    d.add_argument("--mi-url", help="OpenSIPS mi_http URL, e.g. http://127.0.0.1:8888/mi: dr_reload after a change")
    d.add_argument("--gateway", action="append", default=[], metavar="SUPPLIER=sip:host[:port]",
                   help="a gateway of that supplier besides its SupplierParameters (repeatable)")
    d.set_defaults(func=run_drouting_sync)


def run_drouting_sync(args: argparse.Namespace) -> int:
    settings = load_settings()
    db_url = args.db_url or settings.stordb_url
    tpid = args.tpid or settings.tpid
    try:
        extra: dict[str, list[str]] = {}
        for opt in args.gateway:
            sid, addrs = parse_gateway_option(opt)
            extra.setdefault(sid, []).extend(addrs)
        rows = build_rows(read_tariffplan(make_engine(db_url), tpid)["Suppliers"], extra)
        with make_engine(args.opensips_db_url or db_url).begin() as conn:
            result = sync(conn, rows)
    except DRoutingError as exc:
        print(f"cgr opensips drouting-sync: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"cgr opensips drouting-sync: {describe_db_error(exc)}", file=sys.stderr)
        return 1
    for sid in rows.skipped:
        print(f"cgr opensips drouting-sync: warning: supplier {sid} has no gateway address "
              "(SupplierParameters sip:host[:port], or --gateway); not written as a DRouting carrier",
              file=sys.stderr)
    print(f"drouting: {len(rows.carriers)} carriers, {len(rows.gateways)} gateways; "
          f"{result.inserted} inserted, {result.updated} updated, {result.deleted} deleted")
    if args.mi_url and result.changed:
        try:
            mi_dr_reload(args.mi_url)
        except (OSError, urllib.error.URLError, DRoutingError) as exc:
            print(f"cgr opensips drouting-sync: dr_reload at {args.mi_url}: {exc}", file=sys.stderr)
            return 1
        print("drouting: OpenSIPS reloaded (dr_reload)")
    return 0
