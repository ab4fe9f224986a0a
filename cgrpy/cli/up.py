"""`cgr up [--tariffplan DIR] [--replicas N]`: migrate, optionally load a tariff plan, start the
suite (N processes of each stateless service)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys

from cgrpy.config import ConfigError, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start all eight services (supervised) and wait until SERVING")
    p.add_argument("--tariffplan", metavar="DIR", help="load this tariff-plan folder first")
    p.add_argument("--db-url", help="StorDB URL (default CGRPY_STORDB_URL or ./var/stordb.sqlite)")
    p.add_argument("--replicas", type=int, metavar="N",
                   help="processes of each stateless service (attributes, chargers, suppliers, "
                        "cdre) and, on Postgres, of rals; replica k on the service's ports + 100*k "
                        "(default CGRPY_REPLICAS, 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cgrpy.cli.preflight import check_stordb, ports_in_use
    from cgrpy.runtime.logs import setup_logging
    from cgrpy.supervisor import run as supervise

    try:
        overrides: dict[str, object] = {"stordb_url": args.db_url} if args.db_url else {}
        if args.replicas is not None:
            overrides["replicas"] = args.replicas
        settings = load_settings(overrides=overrides)
        if not settings.api_token and settings.api_token_file:
            # secure with no setup: a random token in a 0600 file, handed to every service;
            # the CLI reads the same file
            from cgrpy.security import ensure_token_file

            try:
                token = ensure_token_file(settings.api_token_file)
            except OSError as exc:
                raise ConfigError(f"api_token_file {settings.api_token_file}: {exc.strerror}") from None
            settings = load_settings(overrides={**overrides, "api_token": token})
        setup_logging("supervisor", settings.log_level)
        busy = ports_in_use(settings)
        if busy:
            raise ConfigError("port in use: " + "; ".join(busy))
        check_stordb(settings.stordb_url)
        if importlib.util.find_spec("cgrpy.storage.migrate"):
            from cgrpy.storage.migrate import ensure_schema

            ensure_schema(settings.stordb_url, auto_migrate=settings.stordb_auto_migrate)
        if args.tariffplan:
            from cgrpy.cli.main import main as cgr

            rc = cgr(["load", args.tariffplan, "--db-url", settings.stordb_url, "--tpid", settings.tpid])
            if rc != 0:
                print(f"cgr up: tariff plan {args.tariffplan} not loaded (see above)", file=sys.stderr)
                return rc
    except ConfigError as exc:
        print(f"cgr up: {exc}", file=sys.stderr)
        return 78
    return asyncio.run(supervise(settings))
