"""SessionS for one-shot events (an SMS) and session housekeeping over JSON-RPC:
``SessionSv1.ProcessMessage`` (v0.10's boolean switches), ``SessionSv1.ProcessEvent`` (v0.10's
``Flags``), ``SessionSv1.SyncSessions`` and the passive-session reads. The same handlers answer on
:2012/:2080 and, through the OpenSIPS listener, on :2014 (OpenSIPS's ``cgrates_cmd``).

Steps, in v0.10's order, each only when asked:

1. ``*attributes`` (``GetAttributes``): AttributeS, context ``*sessions``; NOT_FOUND = no change;
   another error -> ``ATTRIBUTES_ERROR:<error>``. The later steps see the altered event.
2. ``*resources`` (``AllocateResources``): ResourceS with UsageID = OriginID and 1 unit
   (``*resources:*authorize|*allocate|*release``); without ResourceS ``NOT_CONNECTED: ResourceS``
   before anything is charged; its errors -> ``RESOURCES_ERROR:<error>``.
3. ``*accounts`` (``Debit``): the one-shot charge of the session core (every *prepaid run debited
   its Usage once, as far as the balances allow: an ``*sms`` counts messages); ``MaxUsage`` = what
   was granted. ``*rals:*authorize|*initiate|*update|*terminate`` drive a normal session instead.
4. ``*suppliers`` (``GetSuppliers``): SupplierS; errors -> ``SUPPLIERS_ERROR:<error>``.
5. ``*thresholds`` / ``*stats``: the IDs that processed the event (NOT_FOUND = none); any other
   failure still runs the rest and answers ``PARTIALLY_EXECUTED``, as v0.10 does.
6. ``*cdrs`` (ProcessEvent only): the CDRs of the charged event (from the closed one-shot session,
   with its cost), or the event rated by CDRs when SessionS has no session for it.

Differences from v0.10: ``*accounts``/``Debit`` and ``*resources`` need an ``OriginID`` (its CGRID
makes a retry of the same SMS answer the first charge instead of debiting twice); an unknown flag
is refused instead of ignored; ``Flags`` may also be one string of comma-separated flags (what
OpenSIPS can send in ``$cgr_opt``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from cgrates.v1 import attributes_pb2, stats_pb2, suppliers_pb2, thresholds_pb2
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent, loads_exact
from cgrpy.units import UNLIMITED_NS, UnitError, parse_time
from cgrpy.wire import event_from_pb, event_to_pb
from services.sm.apier import shapes
from services.sm.apier.args import Args, bad, cgr_event
from services.sm.apier.backends import STUBS
from services.sm.apier.core import Context, method
from services.sm.apier.sessions import _session_filter, _sm
from services.sm.opensips import messages as m
from services.sm.sessions.types import SessionFlags

_RALS_STEPS = ("*authorize", "*initiate", "*update", "*terminate")
_RESOURCE_STEPS = ("*authorize", "*allocate", "*release")
KNOWN_FLAGS = ("*attributes", "*resources", "*accounts", "*rals", "*suppliers", "*thresholds",
               "*stats", "*cdrs")


@dataclass
class Steps:
    attributes: bool = False
    attribute_ids: list[str] = field(default_factory=list)
    resources: list[str] | None = None  # None = not asked; [] = asked without a sub-flag
    accounts: bool = False
    rals: str = ""  # one of _RALS_STEPS
    suppliers: bool = False
    suppliers_ignore_errors: bool = False
    suppliers_max_cost: str = ""
    thresholds: bool = False
    threshold_ids: list[str] = field(default_factory=list)
    stats: bool = False
    stat_ids: list[str] = field(default_factory=list)
    cdrs: bool = False


def _flag_list(a: Args) -> list[str]:
    v = a.get("Flags")
    if isinstance(v, str):
        return [f.strip() for f in v.split(",") if f.strip()]
    return a.strs("Flags")


def steps_from_flags(a: Args) -> Steps:
    """v0.10 ``FlagsWithParamsFromSlice``: ``*name`` or ``*name:param;param``."""
    st = Steps()
    for raw in _flag_list(a):
        name, _, rest = raw.partition(":")
        params = [p for p in rest.split(";") if p]
        if name not in KNOWN_FLAGS:
            raise bad("Flags", f"unknown flag {raw} (known: {', '.join(KNOWN_FLAGS)})")
        if name == "*attributes":
            st.attributes, st.attribute_ids = True, params
        elif name == "*resources":
            unknown = [p for p in params if p not in _RESOURCE_STEPS]
            if unknown:
                raise bad("Flags", f"{raw}: unknown *resources step {unknown[0]}")
            st.resources = params
        elif name == "*rals":
            steps = [p for p in params if p in _RALS_STEPS]
            if len(steps) != len(params) or len(steps) > 1:
                raise bad("Flags", f"{raw}: expected one of {', '.join(_RALS_STEPS)}")
            st.rals = steps[0] if steps else ""
        elif name == "*suppliers":
            st.suppliers = True
            st.suppliers_ignore_errors = "*ignore_errors" in params
            st.suppliers_max_cost = "*event_cost" if "*event_cost" in params else ""
        elif name in ("*thresholds", "*stats"):
            setattr(st, name[1:], True)
            setattr(st, "threshold_ids" if name == "*thresholds" else "stat_ids", params)
        else:
            setattr(st, name[1:], True)
    return st


def steps_from_switches(a: Args) -> Steps:
    """v0.10 ``V1ProcessMessageArgs`` (GetAttributes, AllocateResources, Debit, ...)."""
    max_cost = a.get("SuppliersMaxCost")
    return Steps(
        attributes=bool(a.bool("GetAttributes")), attribute_ids=a.strs("AttributeIDs"),
        resources=["*allocate"] if a.bool("AllocateResources") else None,
        accounts=bool(a.bool("Debit")),
        suppliers=bool(a.bool("GetSuppliers")),
        suppliers_ignore_errors=bool(a.bool("SuppliersIgnoreErrors")),
        suppliers_max_cost="" if max_cost in (None, "") else str(max_cost),
        thresholds=bool(a.bool("ProcessThresholds")), threshold_ids=a.strs("ThresholdIDs"),
        stats=bool(a.bool("ProcessStats")), stat_ids=a.strs("StatIDs"),
    )


def _event(ctx: Context, a: Args) -> CGREvent:
    ev = cgr_event(a, ctx.tenant)
    if ev.get("OriginID") is not None:
        ev.event["OriginID"] = m.normalize_origin_id(ev.get("OriginID"))
    if ev.time is None:  # the session core rates at AnswerTime/SetupTime, as OpenSIPS sends them
        for name in ("AnswerTime", "SetupTime"):
            try:
                ev.time = parse_time(ev.get(name)) if ev.get(name) else None
            except UnitError:
                ev.time = None
            if ev.time is not None:
                break
    return ev


def _empty_reply() -> dict[str, Any]:
    return {"MaxUsage": 0, "ResourceAllocation": None, "Attributes": None, "Suppliers": None,
            "ThresholdIDs": None, "StatQueueIDs": None}


async def run_steps(ctx: Context, ev: CGREvent, st: Steps, a: Args) -> dict[str, Any]:
    """The steps of the module doc; returns the V1ProcessEventReply / V1ProcessMessageReply."""
    reply = _empty_reply()
    if (st.accounts or st.resources is not None) and not ev.get("OriginID"):
        raise CGRError("MANDATORY_IE_MISSING", "[OriginID]")
    if st.attributes:
        ev = await _attributes(ctx, ev, st, reply)
    if st.resources is not None:
        await _resources(ctx, ev, st.resources, reply)
    if st.accounts:
        reply["MaxUsage"] = await _charge(ctx, ev)
    elif st.rals:
        reply["MaxUsage"] = await _rals(ctx, ev, st.rals)
    if st.suppliers:
        reply["Suppliers"] = await _suppliers(ctx, ev, st, a)
    partial = False
    if st.thresholds:
        reply["ThresholdIDs"], failed = await _ids(
            ctx, "thresholds", thresholds_pb2.ThresholdsProcessEventRequest(
                event=event_to_pb(ev), threshold_ids=st.threshold_ids))
        partial = partial or failed
    if st.stats:
        reply["StatQueueIDs"], failed = await _ids(
            ctx, "stats", stats_pb2.StatsProcessEventRequest(event=event_to_pb(ev), stat_ids=st.stat_ids))
        partial = partial or failed
    if st.cdrs:
        err = await _sm(ctx).process_cdr(ev)
        if err:
            raise CGRError.from_message(err)
    if partial:
        raise CGRError("PARTIALLY_EXECUTED")
    return reply


async def _attributes(ctx: Context, ev: CGREvent, st: Steps, reply: dict[str, Any]) -> CGREvent:
    req = attributes_pb2.AttributesProcessEventRequest(
        event=event_to_pb(ev), context=str(ev.get("Context") or "*sessions"), attribute_ids=st.attribute_ids)
    try:
        res = await ctx.backends.call("attributes", "ProcessEvent", req)
    except CGRError as exc:
        if exc.word == "NOT_FOUND":
            return ev
        raise CGRError("ATTRIBUTES_ERROR", exc.message) from None
    reply["Attributes"] = {"MatchedProfiles": list(res.matched_profiles),
                           "AlteredFields": list(res.altered_fields),
                           "CGREvent": shapes.pb_event_json(res.event, ctx.tenant)}
    altered = event_from_pb(res.event, ctx.tenant)
    altered.time = altered.time or ev.time
    return altered


async def _resources(ctx: Context, ev: CGREvent, steps: list[str], reply: dict[str, Any]) -> None:
    """ResourceS when this suite has it (UsageID = OriginID, 1 unit); never a made-up answer."""
    try:
        resources_pb2 = importlib.import_module("cgrates.v1.resources_pb2")
    except ImportError:
        resources_pb2 = None
    if resources_pb2 is None or "resources" not in STUBS:
        raise CGRError("NOT_CONNECTED: ResourceS")
    req = resources_pb2.ResourceUsageRequest(event=event_to_pb(ev), usage_id=str(ev.get("OriginID")), units=1)
    rpc = {"*authorize": "AuthorizeResources", "*allocate": "AllocateResources",
           "*release": "ReleaseResources"}
    for step in steps:
        try:
            res = await ctx.backends.call("resources", rpc[step], req)
        except CGRError as exc:
            raise CGRError("RESOURCES_ERROR", exc.message) from None
        reply["ResourceAllocation"] = getattr(res, "message", "") or "OK"


async def _charge(ctx: Context, ev: CGREvent) -> int:
    res = await _sm(ctx).charge(ev)
    if res.error:
        raise CGRError.from_message(res.error)
    return res.max_usage_ns if res.max_usage_ns is not None else 0


async def _rals(ctx: Context, ev: CGREvent, step: str) -> int:
    """``*rals:<step>``: the session lifecycle of the session core, MaxUsage in ns."""
    sm = _sm(ctx)
    if not ev.get("OriginID"):
        raise CGRError("MANDATORY_IE_MISSING", "[OriginID]")
    flags = SessionFlags(get_max_usage=True)
    if step == "*terminate":
        err = await sm.terminate(ev)
        if err:
            raise CGRError.from_message(err)
        return 0
    call = {"*authorize": sm.authorize, "*initiate": sm.initiate, "*update": sm.update}[step]
    res = await call(ev, flags)
    if res.error:
        raise CGRError.from_message(res.error)
    return res.max_usage_ns if res.max_usage_ns is not None else UNLIMITED_NS


async def _suppliers(ctx: Context, ev: CGREvent, st: Steps, a: Args) -> Any:
    req = suppliers_pb2.GetSuppliersRequest(
        event=event_to_pb(ev), max_cost=st.suppliers_max_cost, ignore_errors=st.suppliers_ignore_errors,
        limit=a.int("Limit") or 0, offset=a.int("Offset") or 0)
    try:
        res = await ctx.backends.call("suppliers", "GetSuppliers", req)
    except CGRError as exc:
        raise CGRError("SUPPLIERS_ERROR", exc.message) from None
    sorted_suppliers = loads_exact(res.json)
    return sorted_suppliers if sorted_suppliers.get("SortedSuppliers") else None


async def _ids(ctx: Context, service: str, req: Any) -> tuple[list[str], bool]:
    """(IDs that processed the event, failed); NOT_FOUND is no IDs, not a failure."""
    try:
        return list((await ctx.backends.call(service, "ProcessEvent", req)).ids), False
    except CGRError as exc:
        return [], exc.word != "NOT_FOUND"


@method("SessionSv1.ProcessMessage")
async def process_message(ctx: Context, a: Args) -> Any:
    """V1ProcessMessageArgs -> V1ProcessMessageReply (``Debit`` charges an SMS)."""
    return await run_steps(ctx, _event(ctx, a), steps_from_switches(a), a)


@method("SessionSv1.ProcessEvent")
async def process_event(ctx: Context, a: Args) -> Any:
    """V1ProcessEventArgs {Flags, CGREvent, Paginator} -> V1ProcessEventReply."""
    return await run_steps(ctx, _event(ctx, a), steps_from_flags(a), a)


@method("SessionSv1.SyncSessions")
async def sync_sessions(ctx: Context, a: Args) -> Any:
    """Ask the switch which calls it still has and close the others (what the periodic
    ``sm_channel_sync_interval`` sync does), now."""
    _sm(ctx)
    if ctx.sync_sessions is not None:
        await ctx.sync_sessions()
    return "OK"


@method("SessionSv1.GetPassiveSessions")
async def passive_sessions(ctx: Context, a: Args) -> Any:
    """No session replication yet, so no passive sessions: NOT_FOUND, as v0.10 answers an empty
    list (the Filters are still checked, so a bad one is an error, not a silent empty answer)."""
    _session_filter(a)
    raise CGRError("NOT_FOUND")


@method("SessionSv1.GetPassiveSessionsCount")
async def passive_sessions_count(ctx: Context, a: Args) -> Any:
    _session_filter(a)
    return 0
