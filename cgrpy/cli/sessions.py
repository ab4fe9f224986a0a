"""`cgr sessions list|disconnect`: the calls SM is charging now, and cutting one off.

    cgr sessions list [--account 1001] [--json]
    cgr sessions disconnect CGRID|ORIGINID [--reason FORCED_DISCONNECT]

``list`` asks SM's gRPC ``SessionService.GetActiveSessions``: one row per charging run with the
account, destination, call duration so far, usage and money debited so far and the max usage
left (paid reserve + what the balance still buys; ``-`` = not limited by credit). ``disconnect``
asks SM to end the call: SM sends ``SessionSv1.DisconnectSession`` to OpenSIPS (or MI
``dlg_end_dlg``), which tears the dialog down and reports the final usage.
Exit codes: 0 done; 1 SM answered with an error (NOT_FOUND for an unknown session) or is
unreachable; 2 bad configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import grpc

from cgrates.v1 import sm_pb2, sm_pb2_grpc
from cgrpy.config import ConfigError, load_settings
from cgrpy.runtime import auth
from cgrpy.units import format_duration


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sessions", help="active calls: list them, disconnect one")
    sub = p.add_subparsers(dest="sessions_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="show the sessions SM is charging now")
    ls.add_argument("--account", default="", help="only this account")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)
    dc = sub.add_parser("disconnect", help="end a call (DisconnectSession to OpenSIPS)")
    dc.add_argument("session", metavar="CGRID|ORIGINID")
    dc.add_argument("--reason", default="FORCED_DISCONNECT")
    dc.set_defaults(func=run_disconnect)


def _channel() -> tuple[grpc.Channel, float]:
    settings = load_settings()
    return auth.channel(settings, settings.addr("sm")), settings.rpc_timeout / 1e9


def _fail(exc: grpc.RpcError) -> int:
    code = exc.code()  # type: ignore[attr-defined]
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        print(f"cgr sessions: SM unreachable at {load_settings().addr('sm')} ({code.name})", file=sys.stderr)
    else:
        print(f"cgr sessions: {code.name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
    return 1


def _dur(ns: int) -> str:
    return "-" if ns < 0 else format_duration(ns)


def row(s: sm_pb2.ActiveSession) -> dict[str, Any]:
    return {
        "CGRID": s.cgrid, "RunID": s.run_id, "OriginID": s.origin_id, "OriginHost": s.origin_host,
        "Tenant": s.tenant, "Account": s.account, "Destination": s.destination,
        "RequestType": s.request_type, "Duration": s.usage_ns, "DebitedUsage": s.debited_usage_ns,
        "Cost": s.cost, "MaxUsageLeft": s.max_usage_left_ns,
    }


def run_list(args: argparse.Namespace) -> int:
    try:
        channel, timeout = _channel()
    except ConfigError as exc:
        print(f"cgr sessions: {exc}", file=sys.stderr)
        return 2
    with channel:
        try:
            resp = sm_pb2_grpc.SessionServiceStub(channel).GetActiveSessions(
                sm_pb2.ActiveSessionsRequest(account=args.account), timeout=timeout)
        except grpc.RpcError as exc:
            return _fail(exc)
    rows = [row(s) for s in resp.sessions]
    if args.json:
        # numbers stay exact: Cost is the decimal string from the wire
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no active sessions")
        return 0
    head = ("ACCOUNT", "DESTINATION", "DURATION", "DEBITED", "COST", "MAX LEFT", "RUN", "ORIGIN ID")
    table = [head] + [
        (r["Account"], r["Destination"], _dur(r["Duration"]), _dur(r["DebitedUsage"]), r["Cost"],
         _dur(r["MaxUsageLeft"]), r["RunID"], r["OriginID"]) for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(head))]
    for line in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return 0


def run_disconnect(args: argparse.Namespace) -> int:
    try:
        channel, timeout = _channel()
    except ConfigError as exc:
        print(f"cgr sessions: {exc}", file=sys.stderr)
        return 2
    ident = args.session
    # a CGRID is a 40-hex sha1; anything else is OpenSIPS's OriginID (Call-ID[|tag])
    is_cgrid = len(ident) == 40 and all(c in "0123456789abcdef" for c in ident)
    req = sm_pb2.DisconnectSessionRequest(
        cgrid=ident if is_cgrid else "", origin_id="" if is_cgrid else ident, reason=args.reason)
    with channel:
        try:
            # SM waits for OpenSIPS's answer (and its Terminate) before replying
            sm_pb2_grpc.SessionServiceStub(channel).DisconnectSession(req, timeout=max(timeout, 15.0))
        except grpc.RpcError as exc:
            return _fail(exc)
    print(f"disconnected {ident}")
    return 0
