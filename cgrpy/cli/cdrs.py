"""`cgr cdrs list|count|export`: query and export the CDRs in the StorDB (read directly).

    cgr cdrs list --account 1001 --answer-from 2014-08-04T00:00:00Z --limit 20 [--json]
    cgr cdrs count --request-type *postpaid
    cgr cdrs export --format csv --path /tmp [--export-id ID] [--profile-file p.json] [filters]

The export directory defaults to the ``cdre_export_path`` setting (``$CGRPY_CDRE_EXPORT_PATH``,
default ``/tmp`` as in the tutorial), the same directory the cdre service's ExportCDRs uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cgrpy.config import ConfigError, load_settings
from cgrpy.event import dumps_exact
from cgrpy.gotime import go_rfc3339
from cgrpy.storage import migrate
from cgrpy.storage.db import default_url, make_engine
from cgrpy.units import UnitError, format_duration, money_str, parse_decimal, parse_time
from services.cdre.cdr import to_external
from services.cdre.export import (
    BUILTIN_PROFILES,
    DEFAULT_PROFILE,
    FILE_CSV,
    FILE_FWV,
    ExportError,
    ExportProfile,
    export_cdrs,
    profile_from_dict,
)
from services.cdre.store import CdrFilter, CdrStore, StoreError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cdrs", help="list, count and export CDRs")
    sub = p.add_subparsers(dest="cdrs_command", metavar="ACTION", required=True)
    for name, helptext in (("list", "show CDRs"), ("count", "count CDRs"),
                           ("export", "write CDRs to a CSV or fixed-width file")):
        sp = sub.add_parser(name, help=helptext)
        _filter_args(sp)
        sp.add_argument("--db-url", default=None,
                        help="StorDB URL (default: $CGRPY_STORDB_URL or SQLite)")
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "export":
            sp.add_argument("--format", choices=("csv", "fwv"), default=None,
                            help="file format (default: the profile's, csv for *default)")
            sp.add_argument("--path", default=None,
                            help="export directory (default: the cdre_export_path setting, "
                                 "$CGRPY_CDRE_EXPORT_PATH, /tmp)")
            sp.add_argument("--export-id", default=None, help="default: unix time in seconds")
            sp.add_argument("--file-name", default=None, help="override cdre_<ExportID>.<ext>")
            sp.add_argument("--profile-file", default=None,
                            help="JSON file with a CDRe profile (fields templates)")
            sp.add_argument("--include-exported", action="store_true",
                            help="export again CDRs this profile already exported")
        sp.set_defaults(func=run)


def _filter_args(p: argparse.ArgumentParser) -> None:
    many = {"--cgrid": "cgrids", "--run-id": "run_ids", "--origin-id": "origin_ids",
            "--request-type": "request_types", "--tenant": "tenants", "--account": "accounts",
            "--subject": "subjects", "--destination-prefix": "destination_prefixes"}
    for flag, dest in many.items():
        p.add_argument(flag, dest=dest, action="append", default=[], help="repeatable")
    for flag in ("--setup-from", "--setup-to", "--answer-from", "--answer-to"):
        p.add_argument(flag, default=None, help="time (RFC3339, unix seconds); from ≤ t < to")
    p.add_argument("--min-cost", default=None, help="cost ≥ this")
    p.add_argument("--max-cost", default=None, help="cost < this")
    p.add_argument("--order-by", default="order_id", help="e.g. 'answer_time desc'")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--offset", type=int, default=0)


def build_filter(args: argparse.Namespace) -> CdrFilter:
    def t(v: str | None):  # noqa: ANN202
        return parse_time(v) if v else None

    def d(v: str | None):  # noqa: ANN202
        return parse_decimal(v) if v else None

    return CdrFilter(
        cgrids=args.cgrids, run_ids=args.run_ids, origin_ids=args.origin_ids,
        request_types=args.request_types, tenants=args.tenants, accounts=args.accounts,
        subjects=args.subjects, destination_prefixes=args.destination_prefixes,
        setup_time_start=t(args.setup_from), setup_time_end=t(args.setup_to),
        answer_time_start=t(args.answer_from), answer_time_end=t(args.answer_to),
        min_cost=d(args.min_cost), max_cost=d(args.max_cost), order_by=args.order_by,
        limit=args.limit, offset=args.offset,
    )


def run(args: argparse.Namespace) -> int:
    try:
        flt = build_filter(args)
        url = args.db_url or default_url()
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            return _dispatch(args, CdrStore(engine), flt)
        finally:
            engine.dispose()
    except (UnitError, StoreError, ExportError, migrate.MigrationError, OSError,
            ConfigError) as exc:
        print(f"cgr cdrs {args.cdrs_command}: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, store: CdrStore, flt: CdrFilter) -> int:
    if args.cdrs_command == "count":
        n = store.count_cdrs(flt)
        print(json.dumps({"count": n}) if args.json else n)
        return 0
    if args.cdrs_command == "list":
        cdrs = store.get_cdrs(flt)
        if args.json:
            print(dumps_exact([to_external(c) for c in cdrs]))
        else:
            _table(cdrs)
        return 0
    profile = _profile(args)
    path = args.path or profile.export_path or load_settings().cdre_export_path
    res = export_cdrs(store, profile, flt, export_path=path, export_id=args.export_id,
                      file_name=args.file_name, include_exported=args.include_exported)
    if args.json:
        print(dumps_exact({
            "ExportedPath": str(res.path) if res.path else "", "ExportID": res.export_id,
            "TotalRecords": res.total_records, "Exported": res.exported,
            "TotalCost": res.total_cost, "FirstOrderID": res.first_order_id,
            "LastOrderID": res.last_order_id, "UnexportedCGRIDs": res.failed,
        }))
    elif res.path is None:
        print(f"nothing exported ({res.total_records} selected, {len(res.failed)} failed)")
    else:
        print(f"exported {res.exported} CDRs (total cost {money_str(res.total_cost)}) to {res.path}")
    for cgrid, why in res.failed.items():
        print(f"not exported {cgrid}: {why}", file=sys.stderr)
    return 0


def _profile(args: argparse.Namespace) -> ExportProfile:
    profile = BUILTIN_PROFILES[DEFAULT_PROFILE]
    if args.profile_file:
        try:
            data = json.loads(Path(args.profile_file).read_text())
        except json.JSONDecodeError as exc:
            raise ExportError(f"{args.profile_file}: not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ExportError(f"{args.profile_file}: expected a JSON object")
        profile = profile_from_dict(data)
    if args.format:
        fmt = FILE_CSV if args.format == "csv" else FILE_FWV
        profile = ExportProfile(profile.id, fmt, profile.export_path, profile.field_separator,
                                profile.fields)
    return profile


def _table(cdrs: list) -> None:
    head = ("OrderID", "CGRID", "RunID", "RequestType", "Account", "Destination", "AnswerTime",
            "Usage", "Cost")
    rows = [(str(c.order_id), c.cgrid[:10], c.run_id, c.request_type, c.account, c.destination,
             go_rfc3339(c.answer_time) if c.answer_time else "-", format_duration(c.usage_ns),
             str(c.cost)) for c in cdrs]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    for line in (head, *rows):
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    print(f"({len(rows)} CDRs)")
