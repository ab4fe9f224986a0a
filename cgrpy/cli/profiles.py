"""`cgr attributes ...` and `cgr chargers ...`: ask the running AttributeS / ChargerS over gRPC.

    cgr attributes process --context *sessions --event Account=1001 Destination=1002
    cgr attributes process --tenant cgrates.com --process-runs 2 --event SubscriberId=1006
    cgr attributes get ATTR_1001_SESSIONAUTH        cgr attributes ids [--tenant T]
    cgr chargers process --event Account=1001 RequestType=*prepaid
    cgr chargers get Raw                            cgr chargers ids [--tenant T]

``--event NAME=text`` sets a text field; ``NAME:=json`` a typed one (``Usage:=60000000000``,
``Cost:=0.1``, ``Flag:=true``; numbers stay exact). ``--json`` prints the CGRateS reply shape.
Exit codes: 0 answered; 1 the service answered with an error (its CGRateS word on stderr) or is
unreachable; 2 usage errors (a malformed ``--event`` item, bad configuration).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import grpc

from cgrates.v1 import (
    attributes_pb2,
    attributes_pb2_grpc,
    chargers_pb2,
    chargers_pb2_grpc,
    common_pb2,
)
from cgrpy.config import ConfigError, load_settings
from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.runtime import auth
from cgrpy.wire import event_from_pb, event_to_pb


class UsageError(ValueError):
    """A malformed command line; the message names the bad item."""


def parse_fields(items: Sequence[str]) -> dict[str, Any]:
    """``NAME=text`` / ``NAME:=json`` items -> event fields (floats refused: exact numbers)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep:
            raise UsageError(f"--event {item!r}: expected NAME=value or NAME:=json")
        value: Any = raw
        if name.endswith(":"):
            name = name[:-1]
            try:
                value = loads_exact(raw)
            except json.JSONDecodeError:
                raise UsageError(f"--event {item!r}: {raw!r} is not JSON") from None
        if not name:
            raise UsageError(f"--event {item!r}: empty field name")
        out[name] = value
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    for service, helptext in (("attributes", "AttributeS: process an event, show profiles"),
                              ("chargers", "ChargerS: fork an event into runs, show profiles")):
        p = subparsers.add_parser(service, help=helptext)
        sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
        proc = sub.add_parser("process", help="process an event and print the resulting event(s)")
        proc.add_argument("--event", nargs="+", default=[], metavar="NAME=VALUE",
                          help="event fields: NAME=text or NAME:=json")
        proc.add_argument("--tenant", default="", help="default: the configured default_tenant")
        proc.add_argument("--id", default="cli", help="event ID")
        if service == "attributes":
            proc.add_argument("--context", default="", help="*sessions, *cdrs, ... (default *default)")
            proc.add_argument("--attribute-id", action="append", default=[], dest="attribute_ids",
                              help="use only this profile (repeatable; inline *type:path:value allowed)")
            proc.add_argument("--process-runs", type=int, default=0, help="default: 1")
            proc.add_argument("--for-event", action="store_true",
                              help="only show the profile that would apply (GetAttributeForEvent)")
        get = sub.add_parser("get", help="show one profile (CGRateS JSON)")
        get.add_argument("profile_id", metavar="ID")
        get.add_argument("--tenant", default="")
        ids = sub.add_parser("ids", help="list profile IDs of a tenant")
        ids.add_argument("--tenant", default="")
        for sp in (proc, get, ids):
            sp.add_argument("--addr", default=None, help="host:port (default from configuration)")
            sp.add_argument("--json", action="store_true", help="print the CGRateS reply shape")
            sp.set_defaults(func=run, service=service)


def _event_json(pb: common_pb2.Event) -> dict[str, Any]:
    ev = event_from_pb(pb)
    return {"Tenant": ev.tenant, "ID": ev.id, "Time": ev.time, "Event": ev.event}


def _attributes(stub: Any, args: argparse.Namespace, timeout: float, out: Any) -> None:
    if args.action == "get":
        resp = stub.GetAttributeProfile(common_pb2.TenantID(tenant=args.tenant, id=args.profile_id),
                                        timeout=timeout)
        print(resp.json, file=out)
        return
    if args.action == "ids":
        resp = stub.GetAttributeProfileIDs(common_pb2.TenantRequest(tenant=args.tenant), timeout=timeout)
        print(json.dumps(list(resp.ids)) if args.json else "\n".join(resp.ids), file=out)
        return
    ev = CGREvent(tenant=args.tenant, id=args.id, event=parse_fields(args.event))
    req = attributes_pb2.AttributesProcessEventRequest(
        event=event_to_pb(ev), context=args.context, attribute_ids=args.attribute_ids,
        process_runs=args.process_runs)
    if args.for_event:
        print(stub.GetAttributeForEvent(req, timeout=timeout).json, file=out)
        return
    resp = stub.ProcessEvent(req, timeout=timeout)
    if args.json:
        print(dumps_exact({"MatchedProfiles": list(resp.matched_profiles),
                           "AlteredFields": list(resp.altered_fields),
                           "CGREvent": _event_json(resp.event)}), file=out)
        return
    print(f"matched: {' '.join(resp.matched_profiles)}", file=out)
    print(f"altered: {' '.join(resp.altered_fields)}", file=out)
    print(f"event:   {dumps_exact(_event_json(resp.event))}", file=out)


def _chargers(stub: Any, args: argparse.Namespace, timeout: float, out: Any) -> None:
    if args.action == "get":
        resp = stub.GetChargerProfile(common_pb2.TenantID(tenant=args.tenant, id=args.profile_id),
                                      timeout=timeout)
        print(resp.json, file=out)
        return
    if args.action == "ids":
        resp = stub.GetChargerProfileIDs(common_pb2.TenantRequest(tenant=args.tenant), timeout=timeout)
        print(json.dumps(list(resp.ids)) if args.json else "\n".join(resp.ids), file=out)
        return
    ev = CGREvent(tenant=args.tenant, id=args.id, event=parse_fields(args.event))
    resp = stub.ProcessEvent(chargers_pb2.ChargersProcessEventRequest(event=event_to_pb(ev)),
                             timeout=timeout)
    if args.json:
        print(dumps_exact([{"ChargerSProfile": r.charger_profile,
                            "AttributeSProfiles": list(r.attribute_profiles) or None,
                            "AlteredFields": list(r.altered_fields),
                            "CGREvent": _event_json(r.event)} for r in resp.runs]), file=out)
        return
    for r in resp.runs:
        attrs = " ".join(r.attribute_profiles) or "-"
        print(f"{r.charger_profile} RunID={r.run_id} attributes={attrs} "
              f"altered={','.join(r.altered_fields)}", file=out)
        print(f"  {dumps_exact(_event_json(r.event))}", file=out)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        if args.action == "process":
            parse_fields(args.event)  # reject a bad item before any network traffic
    except (ConfigError, UsageError) as exc:
        print(f"cgr {args.service}: {exc}", file=sys.stderr)
        return 2
    addr = args.addr or settings.addr(args.service)
    timeout = settings.rpc_timeout / 1e9
    with auth.channel(settings, addr) as channel:
        try:
            if args.service == "attributes":
                _attributes(attributes_pb2_grpc.AttributesServiceStub(channel), args, timeout, sys.stdout)
            else:
                _chargers(chargers_pb2_grpc.ChargersServiceStub(channel), args, timeout, sys.stdout)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                print(f"cgr {args.service}: {args.service} at {addr} not reachable ({code.name})",
                      file=sys.stderr)
            else:
                print(f"cgr {args.service}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
            return 1
    return 0
