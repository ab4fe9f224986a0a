"""`cgr migrate [--db-url URL] [--check | --wait-loaded]`: bring the StorDB schema to the head
revision, verify it, or wait until a tariff plan has been loaded (a container's init step)."""

from __future__ import annotations

import argparse
import sys
import time

from sqlalchemy.exc import SQLAlchemyError

from cgrpy.config import load_settings
from cgrpy.storage import migrate
from cgrpy.storage.db import default_url, make_engine

WAIT_POLL_S = 2.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("migrate", help="upgrade the StorDB schema to the latest revision")
    p.add_argument("--db-url", default=None, help="StorDB URL (default: $CGRPY_STORDB_URL or SQLite)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="only verify the schema is at head and matches"
    )
    mode.add_argument(
        "--wait-loaded", action="store_true",
        help="change nothing; wait until the schema is at head and tariff plan --tpid is loaded",
    )
    p.add_argument("--tpid", default=None, help="with --wait-loaded (default: $CGRPY_TPID)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="with --wait-loaded: give up after this many seconds (exit 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    url = args.db_url or default_url()
    if args.wait_loaded:
        return wait_loaded(url, args.tpid or load_settings().tpid, args.timeout)
    try:
        if args.check:
            migrate.check(url)
            print(f"StorDB at head ({migrate.head_revision()}), no drift")
        else:
            migrate.upgrade(url)
            print(f"StorDB upgraded to {migrate.head_revision()}")
    except migrate.MigrationError as exc:
        print(f"cgr migrate: {exc}", file=sys.stderr)
        return 1
    return 0


def _loaded(url: str, tpid: str) -> str:
    """"" once the schema is at head and ``tpid`` has a load record, else what is missing."""
    from cgrpy.storage.tariffplans import tariffplan_info

    try:
        migrate.check(url)
    except migrate.MigrationError as exc:
        return f"schema not at head ({exc})"
    except SQLAlchemyError as exc:
        return f"StorDB unreachable ({str(exc).strip().splitlines()[0]})"
    engine = make_engine(url)
    try:
        if tariffplan_info(engine, tpid) is None:
            return f"tariff plan {tpid!r} not loaded yet"
        return ""
    except SQLAlchemyError as exc:
        return f"StorDB unreachable ({str(exc).strip().splitlines()[0]})"
    finally:
        engine.dispose()


def wait_loaded(url: str, tpid: str, timeout: float) -> int:
    """Poll until :func:`_loaded` says ready: a service started before migrate-load finished
    would serve an empty plan. Reports what it waits for, once per change."""
    deadline = time.monotonic() + timeout
    said = None
    while (missing := _loaded(url, tpid)) and time.monotonic() < deadline:
        if missing != said:
            print(f"cgr migrate: waiting: {missing}", file=sys.stderr, flush=True)
            said = missing
        time.sleep(WAIT_POLL_S)
    if missing:
        print(f"cgr migrate: gave up after {timeout:.0f}s: {missing}", file=sys.stderr)
        return 1
    print(f"StorDB at head, tariff plan {tpid!r} loaded")
    return 0
