"""`cgr load DIR [--tpid ID] [--dry-run] [--json] [--db-url URL]`: load a tariff-plan folder.

Exit codes: 0 loaded (or valid, with --dry-run); 1 validation problems (all printed, one per line,
nothing written); 2 usage errors (bad arguments, DIR is not a folder, database unreachable).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from cgrpy.storage import migrate
from cgrpy.storage.db import default_url, describe_db_error, make_engine
from cgrpy.tariffplan.columns import FILE_COLUMNS
from cgrpy.tariffplan.loader import LoadAbortedError, LoadResult, load_folder

DEFAULT_TPID = "cgrpy"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "load", help="validate a CGRateS tariff-plan folder and store it in the StorDB"
    )
    p.add_argument("folder", metavar="DIR", help="folder with Rates.csv, Destinations.csv, ...")
    p.add_argument(
        "--tpid", default=None,
        help=f"tariff plan ID (default: $CGRPY_TPID or {DEFAULT_TPID!r}); a re-load replaces it",
    )
    p.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--db-url", default=None, help="StorDB URL (default: $CGRPY_STORDB_URL or SQLite)")
    p.set_defaults(func=run)


def notify_services(tpid: str) -> dict[str, str]:
    """Tell running services that tariff plan ``tpid`` changed (gRPC ReloadCache on each), so
    they pick it up without a restart. Services that are not running are skipped."""
    from cgrpy.config import ConfigError, load_settings
    from cgrpy.runtime.reload import reload_all

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"warning: services not told to reload: {exc}", file=sys.stderr)
        return {}
    if tpid != settings.tpid:
        return {}  # the services serve another tariff plan
    outcome = reload_all(settings, tpid)
    for name, status in outcome.items():
        if status not in ("reloaded", "not running"):
            print(f"warning: {name} did not reload {tpid!r}: {status}", file=sys.stderr)
    reloaded = [n for n, st in outcome.items() if st == "reloaded"]
    if reloaded:
        print(f"reloaded in: {', '.join(reloaded)}", file=sys.stderr)
    return outcome


class _Bar:
    """A one-line progress display on stderr (only used when stderr is a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def __call__(self, phase: str, file: str, done: int, total: int | None) -> None:
        if total:
            width = 30
            filled = min(width, width * done // total)
            bar = "#" * filled + "-" * (width - filled)
            text = f"\r{phase} {file:<20} [{bar}] {done}/{total}"
        else:
            text = f"\r{phase} {file:<20} {done} rows"
        self.stream.write(text.ljust(79)[:79])
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()


def _summary(result: LoadResult, out: TextIO) -> None:
    verb = "validated (dry run, nothing written)" if result.dry_run else "loaded"
    rows = [(name, result.counts.get(name, 0)) for name in FILE_COLUMNS]
    rows = [(n, c) for n, c in rows if c]
    width = max([len(n) for n, _ in rows] + [len("TOTAL")]) + 4
    out.write(f"tariff plan {result.tpid!r} {verb} from {result.folder}\n")
    for name, count in rows:
        out.write(f"  {name + '.csv':<{width}} {count:>10}\n")
    out.write(f"  {'TOTAL':<{width}} {result.total_rows:>10}\n")
    out.write(f"  in {result.seconds:.2f}s\n")


def run(args: argparse.Namespace) -> int:
    tpid = args.tpid or os.environ.get("CGRPY_TPID") or DEFAULT_TPID
    if not os.path.isdir(args.folder):
        print(f"cgr load: {args.folder}: not a folder", file=sys.stderr)
        return 2
    url = args.db_url or default_url()
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
    except (SQLAlchemyError, OSError, migrate.MigrationError) as exc:
        why = describe_db_error(exc) if isinstance(exc, SQLAlchemyError) else str(exc).strip().splitlines()[0]
        print(f"cgr load: cannot open the StorDB: {why}", file=sys.stderr)
        return 2
    bar = _Bar(sys.stderr) if sys.stderr.isatty() else None
    try:
        result = load_folder(args.folder, engine=engine, tpid=tpid, dry_run=args.dry_run,
                             progress=bar)
    except LoadAbortedError as exc:
        print(f"cgr load: {exc}; nothing was written", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
        engine.dispose()
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    if not result.ok:
        for problem in result.problems:
            print(problem, file=sys.stderr)
        if result.truncated:
            print(f"... stopped after {len(result.problems)} problems", file=sys.stderr)
        print(f"cgr load: {len(result.problems)} problem(s); nothing was written",
              file=sys.stderr)
        return 1
    if not args.json:
        _summary(result, sys.stdout)
    if result.written:
        notify_services(tpid)
    return 0
