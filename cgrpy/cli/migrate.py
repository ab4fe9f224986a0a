"""`cgr migrate [--db-url URL] [--check]`: bring the StorDB schema to the head revision."""

from __future__ import annotations

import argparse
import sys

from cgrpy.storage import migrate
from cgrpy.storage.db import default_url


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("migrate", help="upgrade the StorDB schema to the latest revision")
    p.add_argument("--db-url", default=None, help="StorDB URL (default: $CGRPY_STORDB_URL or SQLite)")
    p.add_argument(
        "--check", action="store_true", help="only verify the schema is at head and matches"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    url = args.db_url or default_url()
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
