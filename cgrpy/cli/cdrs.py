"""`cgr cdrs list|count|export|retry-exports`: query and export the stored CDRs through the
cdre service (its GetCDRs, CountCDRs, ExportCDRs, GetFailedExports and RetryFailedExports RPCs;
``--addr``, default the ``cdre_addr`` setting).

    cgr cdrs list --account 1001 --answer-from 2014-08-04T00:00:00Z --limit 20 [--json]
    cgr cdrs list --export-failed [--exporter ID] [--limit N] [--json]
    cgr cdrs retry-exports [--exporter ID]
    cgr cdrs count --request-type *postpaid
    cgr cdrs export --format csv --path /tmp [--export-id ID] [--profile-file p.json] [filters]

The export file is written by the cdre service, into ``--path`` (an absolute directory on the
cdre host) or else the profile's directory or cdre's ``cdre_export_path`` setting
(``$CGRPY_CDRE_EXPORT_PATH``, default ``/tmp`` as in the tutorial).
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc
from cgrpy.cli.cost import CliError, service_call
from cgrpy.event import dumps_exact
from cgrpy.gotime import go_time_ns
from cgrpy.units import (
    UnitError,
    format_duration,
    money_str,
    parse_decimal,
    parse_time,
    to_unix_nano,
)
from cgrpy.wire import external_cdr

# An export may write many rows: longer than the default RPC deadline.
EXPORT_TIMEOUT = 300.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cdrs", help="list, count and export CDRs")
    sub = p.add_subparsers(dest="cdrs_command", metavar="ACTION", required=True)
    for name, helptext in (("list", "show CDRs"), ("count", "count CDRs"),
                           ("export", "write CDRs to a CSV or fixed-width file")):
        sp = sub.add_parser(name, help=helptext)
        _filter_args(sp)
        sp.add_argument("--addr", default="",
                        help="cdre gRPC address host:port (default: the cdre_addr setting)")
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "list":
            sp.add_argument("--export-failed", action="store_true",
                            help="list the online exports that used up their attempts (kept "
                                 "and retried) instead of CDRs; only --exporter and --limit apply")
            sp.add_argument("--exporter", default="", help="with --export-failed: one exporter id")
        if name == "export":
            sp.add_argument("--format", choices=("csv", "fwv"), default=None,
                            help="file format (default: the profile's, csv for *default)")
            sp.add_argument("--path", default=None,
                            help="export directory on the cdre host (default: the profile's, "
                                 "else cdre's cdre_export_path setting)")
            sp.add_argument("--export-id", default=None, help="default: unix time in seconds")
            sp.add_argument("--file-name", default=None, help="override cdre_<ExportID>.<ext>")
            sp.add_argument("--profile-file", default=None,
                            help="JSON file with a CDRe profile (fields templates)")
            sp.add_argument("--include-exported", action="store_true",
                            help="export again CDRs this profile already exported")
        sp.set_defaults(func=run)
    rp = sub.add_parser("retry-exports", help="post failed online exports again now")
    rp.add_argument("--exporter", default="", help="one exporter id (default: all)")
    rp.add_argument("--addr", default="",
                    help="cdre gRPC address host:port (default: the cdre_addr setting)")
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    rp.set_defaults(func=run)


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


def build_filter(args: argparse.Namespace) -> cdre_pb2.CDRFilter:
    """The command-line filter as cdre's ``CDRFilter``; a bad time or cost raises UnitError."""
    def t(v: str | None) -> int:
        return to_unix_nano(parse_time(v)) if v else 0

    def d(v: str | None) -> str:
        return format(parse_decimal(v), "f") if v else ""

    return cdre_pb2.CDRFilter(
        cgrids=args.cgrids, run_ids=args.run_ids, origin_ids=args.origin_ids,
        request_types=args.request_types, tenants=args.tenants, accounts=args.accounts,
        subjects=args.subjects, destination_prefixes=args.destination_prefixes,
        setup_time_start_unix_ns=t(args.setup_from), setup_time_end_unix_ns=t(args.setup_to),
        answer_time_start_unix_ns=t(args.answer_from), answer_time_end_unix_ns=t(args.answer_to),
        min_cost=d(args.min_cost), max_cost=d(args.max_cost), order_by=args.order_by,
        limit=args.limit or 0, offset=args.offset,
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.cdrs_command == "retry-exports":
            return _retry_exports(args)
        if args.cdrs_command == "list" and args.export_failed:
            return _export_failed(args)
        flt = build_filter(args)
        if args.cdrs_command == "count":
            return _count(args, flt)
        if args.cdrs_command == "list":
            return _list(args, flt)
        return _export(args, flt)
    except (UnitError, CliError, OSError) as exc:
        print(f"cgr cdrs {args.cdrs_command}: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)


def _call(args: argparse.Namespace, method: str, request: Any, timeout: float | None = None) -> Any:
    return service_call(args, "cdre", "cdre", cdre_pb2_grpc.CdrServiceStub, method, request,
                        timeout)


def _count(args: argparse.Namespace, flt: cdre_pb2.CDRFilter) -> int:
    n = _call(args, "CountCDRs", flt).count
    print(json.dumps({"count": n}) if args.json else n)
    return 0


def _list(args: argparse.Namespace, flt: cdre_pb2.CDRFilter) -> int:
    cdrs = list(_call(args, "GetCDRs", flt).cdrs)
    if args.json:
        print(dumps_exact([external_cdr(c) for c in cdrs]))
    else:
        _table(cdrs)
    return 0


def _export_failed(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise CliError("--limit must not be negative")
    req = cdre_pb2.FailedExportsRequest(exporter=args.exporter, limit=args.limit or 0)
    rows = list(_call(args, "GetFailedExports", req).exports)
    if args.json:
        print(dumps_exact([{"Exporter": r.exporter, "Attempts": r.attempts,
                            "LastError": r.last_error,
                            "NextRetry": go_time_ns(r.next_retry_unix_ns)
                            if r.next_retry_unix_ns else "",
                            "CDR": external_cdr(r.cdr)} for r in rows]))
        return 0
    head = ("OrderID", "CGRID", "RunID", "Exporter", "Attempts", "NextRetry", "LastError")
    lines = [(str(r.cdr.order_id), r.cdr.cgrid[:10], r.cdr.run_id, r.exporter, str(r.attempts),
              _when(r.next_retry_unix_ns), r.last_error) for r in rows]
    _print_table(head, lines)
    print(f"({len(lines)} failed exports)")
    return 0


def _when(unix_ns: int) -> str:
    if not unix_ns:
        return "now"
    if unix_ns >= 1 << 62:
        return "on demand"
    return go_time_ns(unix_ns - unix_ns % 10**9)


def _retry_exports(args: argparse.Namespace) -> int:
    res = _call(args, "RetryFailedExports", cdre_pb2.FailedExportsRequest(exporter=args.exporter))
    print(json.dumps({"retried": res.retried}) if args.json
          else f"{res.retried} failed exports due now")
    return 0


def _export(args: argparse.Namespace, flt: cdre_pb2.CDRFilter) -> int:
    req = cdre_pb2.ExportCDRsRequest(
        filter=flt, export_profile=_profile_text(args), export_path=args.path or "",
        format=args.format or "", export_id=args.export_id or "", file_name=args.file_name or "",
        include_exported=args.include_exported,
    )
    res = _call(args, "ExportCDRs", req, timeout=EXPORT_TIMEOUT)
    total_cost = Decimal(res.total_cost or "0")
    failed = dict(sorted(res.failed.items()))
    if args.json:
        print(dumps_exact({
            "ExportedPath": res.file, "ExportID": res.export_id,
            "TotalRecords": res.total_records, "Exported": res.exported,
            "TotalCost": total_cost, "FirstOrderID": res.first_order_id,
            "LastOrderID": res.last_order_id, "UnexportedCGRIDs": failed,
        }))
    elif not res.file:
        print(f"nothing exported ({res.total_records} selected, {len(failed)} failed)")
    else:
        print(f"exported {res.exported} CDRs (total cost {money_str(total_cost)}) to {res.file}")
    for cgrid, why in failed.items():
        print(f"not exported {cgrid}: {why}", file=sys.stderr)
    return 0


def _profile_text(args: argparse.Namespace) -> str:
    """``--profile-file`` as the JSON object cdre takes in ``export_profile`` ("" = *default)."""
    if not args.profile_file:
        return ""
    try:
        data = json.loads(Path(args.profile_file).read_text())
    except json.JSONDecodeError as exc:
        raise CliError(f"{args.profile_file}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{args.profile_file}: expected a JSON object")
    return json.dumps(data)


def _table(cdrs: list[cdre_pb2.CDR]) -> None:
    head = ("OrderID", "CGRID", "RunID", "RequestType", "Account", "Destination", "AnswerTime",
            "Usage", "Cost")
    rows = []
    for c in cdrs:
        ext = external_cdr(c)
        rows.append((str(c.order_id), c.cgrid[:10], c.run_id, c.request_type, c.account,
                     c.destination, ext["AnswerTime"] if c.answer_time_unix_ns else "-",
                     format_duration(c.usage_ns), str(ext["Cost"])))
    _print_table(head, rows)
    print(f"({len(rows)} CDRs)")


def _print_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    for line in (head, *rows):
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
