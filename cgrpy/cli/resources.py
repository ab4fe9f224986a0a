"""`cgr resources ...`: the operator's view of ResourceS (concurrent-call limits), over gRPC.

    cgr resources show [ID] [--tenant T] [--json]     usage, limit and held usages of each resource
    cgr resources release USAGE_ID [--tenant T]      give back a usage wherever it is held (a call
                                                      that ended without SM seeing it)

``--addr host:port`` overrides the configured address. ``--json`` prints the CGRateS v0.10
``Resource`` objects (ResourceSv1.GetResource). Exit codes: 0 answered; 1 the service answered
with an error (its CGRateS word on stderr) or is not reachable (one line); 2 usage errors.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

import grpc

from cgrates.v1 import common_pb2, resources_pb2, resources_pb2_grpc
from cgrpy.config import ConfigError, Settings, load_settings
from cgrpy.event import dumps_exact, loads_exact
from cgrpy.runtime import auth


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("resources", help="ResourceS: concurrent-call limits (usage, limit, held usages)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="every resource of the tenant, or ID")
    show.add_argument("item_id", nargs="?", default="", metavar="ID")
    show.add_argument("--json", action="store_true", help="print the CGRateS Resource objects")
    rel = sub.add_parser("release", help="give back USAGE_ID (normally the call's OriginID) wherever held")
    rel.add_argument("usage_id", metavar="USAGE_ID")
    for q in (show, rel):
        q.add_argument("--tenant", default="", help="default: the configured default_tenant")
        q.add_argument("--addr", default=None, help="host:port (default from configuration)")
        q.set_defaults(func=run)


def _number(v: Any) -> str:
    return str(int(v)) if float(v) == int(v) else str(v)


def _table(rows: list[tuple[str, ...]]) -> str:
    headers = ("RESOURCE", "USAGE", "LIMIT", "USAGES")
    widths = [max(len(r[i]) for r in (headers, *rows)) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in (headers, *rows))


def show(stub: Any, args: argparse.Namespace, tenant: str, timeout: float, out: TextIO) -> None:
    ids = [args.item_id] if args.item_id else list(
        stub.GetResourceIDs(common_pb2.TenantRequest(tenant=tenant), timeout=timeout).ids)
    found = [loads_exact(stub.GetResource(common_pb2.TenantID(tenant=tenant, id=rid), timeout=timeout).json)
             for rid in ids]
    if args.json:
        print(dumps_exact(found[0] if args.item_id else found), file=out)
        return
    rows = []
    for r in found:
        prof = loads_exact(stub.GetResourceProfile(common_pb2.TenantID(tenant=tenant, id=r["ID"]),
                                                   timeout=timeout).json)
        usages = r.get("Usages") or {}
        total = sum((u["Units"] for u in usages.values()), 0)
        limit = "unlimited" if prof["Limit"] == -1 else _number(prof["Limit"])
        rows.append((r["ID"], _number(total), limit, ",".join(sorted(usages)) or "-"))
    print(_table(rows), file=out)


def release(stub: Any, args: argparse.Namespace, tenant: str, timeout: float, out: TextIO) -> None:
    resp = stub.ReleaseUsage(resources_pb2.ReleaseUsageRequest(tenant=tenant, usage_id=args.usage_id),
                             timeout=timeout)
    held = list(resp.resource_ids)
    print(f"released {args.usage_id} from {', '.join(held)}" if held else f"{args.usage_id} was not held",
          file=out)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        settings: Settings = load_settings()
    except ConfigError as exc:
        print(f"cgr resources: {exc}", file=sys.stderr)
        return 2
    addr = args.addr or settings.addr("resources")
    tenant = args.tenant or settings.default_tenant
    with auth.channel(settings, addr) as channel:
        stub = resources_pb2_grpc.ResourcesServiceStub(channel)
        try:
            (show if args.action == "show" else release)(stub, args, tenant, settings.rpc_timeout / 1e9, out)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                print(f"cgr resources: resources at {addr} not reachable ({code.name})", file=sys.stderr)
            else:
                print(f"cgr resources: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
            return 1
    return 0
