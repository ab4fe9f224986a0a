"""`cgr stats show`, `cgr thresholds show`, `cgr suppliers`: the operator's view of StatS,
ThresholdS and SupplierS, asked over gRPC.

    cgr stats show [QUEUE] [--tenant T] [--json]        metrics of every queue (or one)
    cgr thresholds show [ID] [--tenant T] [--json]      hits and snooze of every threshold (or one)
    cgr suppliers --account 1001 --destination 1002 [--event NAME=VALUE ...] [--json]

``--addr host:port`` overrides the configured address. ``--json`` prints CGRateS shapes:
``{queue: {metric: value}}`` (APIerSv1.GetQueueStringMetrics per queue), the Threshold objects,
``{"SortedSuppliers": ..., "SuppliersDigest": "supplier2,supplier1"}`` (the digest as SM hands
it to OpenSIPS). Exit codes: 0 answered; 1 the service answered with an error (its CGRateS word
on stderr) or is not reachable (one line); 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import grpc

from cgrates.v1 import (
    common_pb2,
    stats_pb2_grpc,
    suppliers_pb2,
    suppliers_pb2_grpc,
    thresholds_pb2_grpc,
)
from cgrpy.cli.profiles import UsageError, parse_fields
from cgrpy.config import ConfigError, Settings, load_settings
from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.runtime import auth
from cgrpy.wire import event_to_pb


def register(subparsers: argparse._SubParsersAction) -> None:
    st = subparsers.add_parser("stats", help="StatS: show stat queues and their metrics")
    st_sub = st.add_subparsers(dest="action", metavar="ACTION", required=True)
    st_show = st_sub.add_parser("show", help="metrics of every queue of the tenant, or of QUEUE")
    st_show.add_argument("item_id", nargs="?", default="", metavar="QUEUE")

    th = subparsers.add_parser("thresholds", help="ThresholdS: show thresholds (hits, snooze)")
    th_sub = th.add_subparsers(dest="action", metavar="ACTION", required=True)
    th_show = th_sub.add_parser("show", help="every threshold of the tenant, or ID")
    th_show.add_argument("item_id", nargs="?", default="", metavar="ID")

    sp = subparsers.add_parser("suppliers", help="SupplierS: sorted suppliers for a call and the digest")
    sp.add_argument("--account", required=True)
    sp.add_argument("--destination", required=True)
    sp.add_argument("--subject", default="", help="default: the account")
    sp.add_argument("--event", nargs="+", default=[], metavar="NAME=VALUE",
                    help="more event fields: NAME=text or NAME:=json (SetupTime=..., Usage=60s)")
    sp.add_argument("--max-cost", default="", help="decimal or *event_cost")
    sp.add_argument("--limit", type=int, default=0)
    sp.add_argument("--offset", type=int, default=0)
    sp.add_argument("--ignore-errors", action="store_true")

    for p, service in ((st_show, "stats"), (th_show, "thresholds"), (sp, "suppliers")):
        p.add_argument("--tenant", default="", help="default: the configured default_tenant")
        p.add_argument("--addr", default=None, help="host:port (default from configuration)")
        p.add_argument("--json", action="store_true", help="print the CGRateS reply shape")
        p.set_defaults(func=run, service=service)


# --- rendering ------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart (no trailing blanks)."""
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in (headers, *rows))


def _metric_order(metric_id: str) -> tuple[int, str]:
    # the familiar telecom metrics first, in the order operators read them
    known = ("*asr", "*acd", "*tcd", "*acc", "*tcc", "*pdd", "*ddc")
    base = metric_id.split(":", 1)[0]
    return (known.index(base) if base in known else len(known), metric_id)


# --- the three commands ---------------------------------------------------------------------


def show_stats(channel: grpc.Channel, args: argparse.Namespace, tenant: str, timeout: float, out: TextIO) -> None:
    stub = stats_pb2_grpc.StatsServiceStub(channel)
    ids = [args.item_id] if args.item_id else sorted(
        stub.GetQueueIDs(common_pb2.TenantRequest(tenant=tenant), timeout=timeout).ids)
    queues = {qid: dict(stub.GetQueueStringMetrics(common_pb2.TenantID(tenant=tenant, id=qid),
                                                   timeout=timeout).metrics) for qid in ids}
    if args.json:
        print(json.dumps(queues, indent=1), file=out)
        return
    rows = [(qid, m, metrics[m]) for qid, metrics in queues.items() for m in sorted(metrics, key=_metric_order)]
    rows += [(qid, "-", "-") for qid, metrics in queues.items() if not metrics]
    print(table(("QUEUE", "METRIC", "VALUE"), rows), file=out)


def show_thresholds(channel: grpc.Channel, args: argparse.Namespace, tenant: str, timeout: float,
                    out: TextIO) -> None:
    stub = thresholds_pb2_grpc.ThresholdsServiceStub(channel)
    ids = [args.item_id] if args.item_id else sorted(
        stub.GetThresholdIDs(common_pb2.TenantRequest(tenant=tenant), timeout=timeout).ids)
    found = [loads_exact(stub.GetThreshold(common_pb2.TenantID(tenant=tenant, id=tid), timeout=timeout).json)
             for tid in ids]
    if args.json:
        print(dumps_exact(found[0] if args.item_id else found), file=out)
        return
    print(table(("THRESHOLD", "HITS", "SNOOZE"),
                [(t.get("ID", ""), str(t.get("Hits", "")), str(t.get("Snooze", ""))) for t in found]), file=out)


def show_suppliers(channel: grpc.Channel, args: argparse.Namespace, tenant: str, timeout: float,
                   out: TextIO) -> None:
    stub = suppliers_pb2_grpc.SuppliersServiceStub(channel)
    fields: dict[str, Any] = {"Account": args.account, "Subject": args.subject or args.account,
                              "Destination": args.destination, **parse_fields(args.event)}
    req = suppliers_pb2.GetSuppliersRequest(
        event=event_to_pb(CGREvent(tenant=tenant, id="cgr-suppliers", event=fields)),
        max_cost=args.max_cost, ignore_errors=args.ignore_errors, limit=args.limit, offset=args.offset)
    resp = stub.GetSuppliers(req, timeout=timeout)
    if args.json:
        sorted_json = loads_exact(resp.json) if resp.json else None
        print(dumps_exact({"SortedSuppliers": sorted_json, "SuppliersDigest": resp.digest}), file=out)
        return
    print(f"profile: {resp.profile_id}  sorting: {resp.sorting}", file=out)
    rows = []
    for i, s in enumerate(resp.suppliers, 1):
        data = " ".join(f"{k}={v}" for k, v in sorted(s.sorting_data.items()))
        rows.append((str(i), s.supplier_id, s.supplier_parameters or "-", data or "-"))
    print(table(("#", "SUPPLIER", "PARAMETERS", "SORTING DATA"), rows), file=out)
    print(f"digest: {resp.digest}", file=out)


COMMANDS = {"stats": show_stats, "thresholds": show_thresholds, "suppliers": show_suppliers}


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    name = f"cgr {args.service}"
    try:
        settings: Settings = load_settings()
        if args.service == "suppliers":
            parse_fields(args.event)  # a bad item is refused before any network traffic
            if args.limit < 0 or args.offset < 0:
                raise UsageError("--limit and --offset must not be negative")
    except (ConfigError, UsageError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    addr = args.addr or settings.addr(args.service)
    tenant = args.tenant or settings.default_tenant
    timeout = settings.rpc_timeout / 1e9
    with auth.channel(settings, addr) as channel:
        try:
            COMMANDS[args.service](channel, args, tenant, timeout, out)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                print(f"{name}: {args.service} at {addr} not reachable ({code.name})", file=sys.stderr)
            else:
                print(f"{name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
            return 1
    return 0
