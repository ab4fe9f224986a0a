"""`cgr cost`: what a call costs, asked from the running RALs (gRPC ``GetCost``).

    cgr cost --subject 1001 --destination 1002 --usage 85s \\
             [--tenant cgrates.org] [--category call] [--account 1001] \\
             [--answer-time 2014-08-04T13:00:00Z] [--tor *voice] [--json] [--details] [--addr H:P]

The table shows Cost, Usage and ConnectFee, then one line per timespan (a charge of the
EventCost: start, usage, cost, rating plan, destination, rate slot). ``--json`` prints the
CGRateS-style fields ``Cost``, ``Usage`` (ns), ``ConnectFee``, ``Timespans`` with exact numbers
(``--details`` adds the whole EventCost as ``CostDetails``).
Exit codes: 0 rated; 1 RALs answered with an error (e.g. ``RATING_PLAN_NOT_FOUND``) or is
unreachable; 2 bad input or configuration.

This module also holds the small gRPC plumbing the other RALs commands share (`cgr account`,
`cgr balance`): :func:`rals_call` turns every failure into one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import grpc

from cgrates.v1 import rals_pb2, rals_pb2_grpc
from cgrpy.config import ConfigError, load_settings
from cgrpy.event import dumps_exact, loads_exact
from cgrpy.gotime import go_time
from cgrpy.runtime import auth
from cgrpy.units import UnitError, format_duration, parse_duration, parse_time, to_unix_nano

T = TypeVar("T")


class CliError(Exception):
    """One line for stderr and the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --- shared plumbing -----------------------------------------------------------------------------


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--addr", default="", help="RALs gRPC address host:port (default: settings)")
    p.add_argument("--tenant", default="", help="tenant (default: the default_tenant setting)")
    p.add_argument("--json", action="store_true", help="machine-readable output (exact numbers)")


def _settings_or_fail() -> Any:
    try:
        return load_settings()
    except ConfigError as exc:
        raise CliError(str(exc), 2) from None


def tenant_of(args: argparse.Namespace) -> str:
    return args.tenant or _settings_or_fail().default_tenant


def rals_call(args: argparse.Namespace, method: str, request: Any) -> Any:
    """Call RALs ``method``; an RPC error becomes a :class:`CliError` with one line."""
    return service_call(args, "rals", "RALs", rals_pb2_grpc.RalsServiceStub, method, request)


def service_call(args: argparse.Namespace, service: str, label: str, stub_cls: Any, method: str,
                 request: Any, timeout: float | None = None) -> Any:
    """Call ``method`` of ``service`` at ``--addr`` (default: its address setting); an RPC
    error becomes a :class:`CliError` with one line naming ``label`` when it is unreachable."""
    settings = _settings_or_fail()
    addr = args.addr or settings.addr(service)
    timeout = timeout or max(settings.rpc_timeout / 1e9, 5.0)
    with auth.channel(settings, addr) as channel:
        stub = stub_cls(channel)
        try:
            return getattr(stub, method)(request, timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise CliError(f"{label} unreachable at {addr} ({code.name})") from None
            raise CliError(f"{code.name}: {exc.details()}") from None  # type: ignore[attr-defined]


def run_cli(prog: str, fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap a sub-command so a :class:`CliError` prints ``<prog>: <message>`` and exits."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except CliError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return exc.code

    return wrapped


def parse_arg(name: str, parse: Callable[[str], T], text: str) -> T:
    try:
        return parse(text)
    except (UnitError, ValueError) as exc:
        raise CliError(f"{name}: {exc}", 2) from None


def print_json(value: Any) -> None:
    print(dumps_exact(value))


def print_table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    table = [head] + [tuple("" if c is None else str(c) for c in r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    for line in table:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def call_descriptor(args: argparse.Namespace, tenant: str) -> rals_pb2.CallDescriptor:
    """--subject/--account/--destination/--answer-time/--usage -> a proto CallDescriptor."""
    usage = parse_arg("--usage", parse_duration, args.usage)
    if usage < 0:
        raise CliError("--usage: must not be negative", 2)
    start = parse_arg("--answer-time", parse_time, args.answer_time)
    if start is None:
        raise CliError(f"--answer-time: not a time: {args.answer_time!r}", 2)
    subject = args.subject or args.account
    if not subject or not args.destination:
        raise CliError("--subject (or --account) and --destination are required", 2)
    return rals_pb2.CallDescriptor(
        tenant=tenant, category=args.category, subject=subject, account=args.account or subject,
        destination=args.destination, tor=args.tor, time_start_unix_ns=to_unix_nano(start),
        usage_ns=usage,
    )


def add_call_args(p: argparse.ArgumentParser, *, destination_required: bool = True) -> None:
    p.add_argument("--category", default="call")
    p.add_argument("--subject", default="", help="rating subject (default: the account)")
    p.add_argument("--destination", required=destination_required, default="")
    p.add_argument("--answer-time", default="*now",
                   help="RFC3339, 'YYYY-MM-DD HH:MM:SS' (UTC), unix time or *now")
    p.add_argument("--usage", required=True, help="duration, e.g. 85s, 1m30s")
    p.add_argument("--tor", default="*voice")


# --- cgr cost ------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cost", help="what a call costs (RALs GetCost)")
    add_connection_args(p)
    add_call_args(p)
    p.add_argument("--account", default="", help="account (default: the subject)")
    p.add_argument("--details", action="store_true", help="--json: add the whole EventCost")
    p.set_defaults(func=run_cli("cgr cost", run_cost))


def _rate_slot(rates: list[dict[str, Any]], offset_ns: int) -> dict[str, Any] | None:
    slot = None
    for r in sorted(rates, key=lambda r: int(r["GroupIntervalStart"])):
        if int(r["GroupIntervalStart"]) <= offset_ns:
            slot = r
    return slot


def summarize(event_cost: dict[str, Any]) -> dict[str, Any]:
    """CGRateS-style summary of an EventCost: Cost, Usage, ConnectFee, Timespans.

    A timespan is one charge of the EventCost (its CompressFactor repetitions together); the
    connect fee is the zero-usage increment opening the first charge (absent on later pieces).
    """
    start = parse_time(event_cost.get("StartTime") or None)
    at = to_unix_nano(start) if start is not None else 0
    offset = 0
    connect_fee = Decimal(0)
    spans: list[dict[str, Any]] = []
    ratings = event_cost.get("Rating") or {}
    filters = event_cost.get("RatingFilters") or {}
    rates = event_cost.get("Rates") or {}
    for n, charge in enumerate(event_cost.get("Charges") or []):
        incs = charge.get("Increments") or []
        if n == 0 and incs and int(incs[0]["Usage"]) == 0:
            connect_fee = Decimal(incs[0]["Cost"]) * int(incs[0]["CompressFactor"])
        cf = int(charge.get("CompressFactor", 1))
        usage = sum(int(i["Usage"]) * int(i["CompressFactor"]) for i in incs) * cf
        cost = sum((Decimal(i["Cost"]) * int(i["CompressFactor"]) for i in incs), Decimal(0)) * cf
        rating = ratings.get(charge.get("RatingID", ""), {})
        flt = filters.get(rating.get("RatingFiltersID", ""), {})
        slot = _rate_slot(rates.get(rating.get("RatesID", ""), []), offset)
        spans.append({
            "TimeStart": _iso(at), "TimeEnd": _iso(at + usage), "Usage": usage, "Cost": cost,
            "CompressFactor": cf, "RatingPlanID": flt.get("RatingPlanID", ""),
            "DestinationID": flt.get("DestinationID", ""),
            "DestinationPrefix": flt.get("DestinationPrefix", ""),
            "Rate": None if slot is None else {
                "Value": slot["Value"], "RateUnit": int(slot["RateUnit"]),
                "RateIncrement": int(slot["RateIncrement"]),
                "GroupIntervalStart": int(slot["GroupIntervalStart"])},
        })
        at += usage
        offset += usage
    return {"Cost": event_cost.get("Cost"), "Usage": int(event_cost.get("Usage") or 0),
            "ConnectFee": connect_fee, "Timespans": spans}


def _iso(ns: int) -> str:
    from cgrpy.units import from_unix_nano

    d = from_unix_nano(ns)
    return "" if d is None else go_time(d)


def run_cost(args: argparse.Namespace) -> int:
    req = call_descriptor(args, tenant_of(args))
    resp = rals_call(args, "GetCost", req)
    details = loads_exact(resp.cost_details_json) if resp.cost_details_json else {}
    out = summarize(details)
    out["Cost"] = Decimal(resp.cost)  # the wire's decimal string is the authority
    out["Usage"] = resp.usage_ns
    if args.json:
        if args.details:
            out["CostDetails"] = details
        print_json(out)
        return 0
    print_table(("Cost", str(out["Cost"])), [
        ("Usage", format_duration(out["Usage"])), ("ConnectFee", out["ConnectFee"])])
    print()
    print_table(
        ("START", "USAGE", "COST", "RATING PLAN", "DESTINATION", "PREFIX", "RATE"),
        [(s["TimeStart"], format_duration(s["Usage"]), s["Cost"], s["RatingPlanID"],
          s["DestinationID"], s["DestinationPrefix"],
          "" if s["Rate"] is None else
          f"{s['Rate']['Value']}/{format_duration(s['Rate']['RateUnit'])}"
          f" per {format_duration(s['Rate']['RateIncrement'])}")
         for s in out["Timespans"]],
    )
    return 0
