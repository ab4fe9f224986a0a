"""CGRateS JSON-RPC rating calls on the call-descriptor level: ``Responder.GetCost``,
``Responder.Debit``, ``Responder.MaxDebit``, ``Responder.GetMaxSessionTime`` (engine.CallDescriptor
in, engine.CallCost / a duration out), ``APIerSv1.GetEventCost`` and
``RALsV1.GetRatingPlansCost`` (EventCost out). All go to RALs over gRPC; this module only maps
shapes. Registered into
:data:`services.sm.apier.core.METHODS` on import.

Idempotency of ``Responder.Debit``/``MaxDebit``: RALs debits once per request id. The id is the
caller's ``RequestID`` field if given (a cgrpy extension; Go clients may add it), else
``responder:<CgrID>:<RunID>:<LoopIndex>:<TimeStart unix ns>`` — so a retried piece of one call
is charged once, whichever of the two methods retries it. Without a CgrID every call is a new
debit (a fresh id), as CGRateS without RPC response caching behaves.

Differences from CGRateS v0.10: ``TimeStart`` is mandatory (CGRateS rates a missing one at Go's
zero time, year 1); ``DryRun`` is refused with ``NOT_IMPLEMENTED`` instead of being honoured.
``MaxRate``/``MaxRateUnit`` (GetMaxSessionTime, MaxDebit) stop the usage at the first span whose
rate is above MaxRate per MaxRateUnit (a Go duration; without it MaxRate is ignored, as in v0.10); ``PerformRounding``
(Debit, MaxDebit) charges the DestinationRate rounding too, so Cost is the rounded amount. The CallCost of a debit is the re-rating of the charged usage with ``Cost`` = the amount
charged (see RALs ``CostResponse.call_cost_json``). ``RALsV1.GetRatingPlansCost`` answers
``UNAUTHORIZED_DESTINATION`` (or ``RATING_PLAN_NOT_FOUND`` when no named plan exists) when none of
the plans rates the call, and adds ``Cost`` (= EventCost.Cost) next to ``RatingPlanID`` and
``EventCost``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cgrates.v1 import rals_pb2
from cgrpy.errors import CGRError
from cgrpy.event import loads_exact
from cgrpy.units import to_unix_nano
from services.sm.apier.args import Args, bad
from services.sm.apier.core import Context, method

# Business errors RALs answers with a CGRateS word; the Responder passes the bare word on, as
# CGRateS returns the engine error unchanged.
_BARE = frozenset({
    "RATING_PLAN_NOT_FOUND", "UNAUTHORIZED_DESTINATION", "ACCOUNT_NOT_FOUND", "NOT_FOUND",
    "INSUFFICIENT_CREDIT", "INSUFFICIENT_CREDIT_BALANCE_BLOCKER", "ACCOUNT_DISABLED",
    "MAX_USAGE_EXCEEDED",
})


def _whole(a: Args, name: str) -> int:
    """An integer field that Go may marshal as a float (LoopIndex is float64 in v0.10)."""
    v = a.get(name)
    if v in (None, ""):
        return 0
    if isinstance(v, bool) or not isinstance(v, int | Decimal) or v != int(v):
        raise bad(name, f"expected a whole number, got {v!r}")
    return int(v)


def call_descriptor(ctx: Context, a: Args) -> rals_pb2.CallDescriptor:
    """engine.CallDescriptor (flat, as CallDescriptorWithArgDispatcher embeds it) -> RALs proto."""
    start = a.time("TimeStart")
    if start is None:
        raise CGRError("MANDATORY_IE_MISSING", "[TimeStart]")
    end = a.time("TimeEnd")
    usage = to_unix_nano(end) - to_unix_nano(start) if end is not None else 0
    if usage < 0:
        raise bad("TimeEnd", "before TimeStart")
    max_rate = a.decimal("MaxRate") or Decimal(0)
    max_rate_unit = a.duration("MaxRateUnit")
    if max_rate < 0 or max_rate_unit < 0:
        raise bad("MaxRate" if max_rate < 0 else "MaxRateUnit", "must not be negative")
    if a.bool("DryRun"):
        raise CGRError("NOT_IMPLEMENTED", "DryRun")
    so_far = a.decimal("MaxCostSoFar")
    account = a.str("Account")
    return rals_pb2.CallDescriptor(
        tenant=a.str("Tenant") or ctx.tenant, category=a.str("Category") or ctx.settings.default_category,
        subject=a.str("Subject") or account, account=account, destination=a.str("Destination"),
        tor=a.str("ToR", "TOR") or "*voice", time_start_unix_ns=to_unix_nano(start), usage_ns=usage,
        duration_index_ns=a.duration("DurationIndex"), loop_index=_whole(a, "LoopIndex"),
        cgrid=a.str("CgrID", "CGRID"), run_id=a.str("RunID"),
        max_cost_so_far=format(so_far, "f") if so_far is not None else "",
        deny_negative_account=bool(a.bool("DenyNegativeAccount")),
        force_duration=bool(a.bool("ForceDuration")),
        # v0.10 applies MaxRate only with a MaxRateUnit (rate per unit compared per nanosecond)
        max_rate=format(max_rate, "f") if max_rate and max_rate_unit else "", max_rate_unit_ns=max_rate_unit,
        perform_rounding=bool(a.bool("PerformRounding")),
    )


async def _rals(ctx: Context, name: str, req: Any) -> Any:
    try:
        return await ctx.backends.call("rals", name, req)
    except CGRError as exc:
        if exc.word in _BARE:
            raise CGRError(exc.word) from None
        raise


def request_id(a: Args, cd: rals_pb2.CallDescriptor) -> str:
    """The idempotency key of a Responder debit (see the module doc)."""
    given = a.str("RequestID")
    if given:
        return given
    if cd.cgrid:
        return f"responder:{cd.cgrid}:{cd.run_id}:{cd.loop_index}:{cd.time_start_unix_ns}"
    return f"responder:{uuid.uuid4()}"


def _call_cost(res: rals_pb2.CostResponse) -> Any:
    if not res.call_cost_json:
        raise CGRError("SERVER_ERROR", "RALs returned no CallCost")
    return loads_exact(res.call_cost_json)


@method("Responder.GetCost")
async def responder_get_cost(ctx: Context, a: Args) -> Any:
    """CallDescriptor -> CallCost (its Cost is CallCost.Cost, DestinationRate-rounded)."""
    return _call_cost(await _rals(ctx, "GetCost", call_descriptor(ctx, a)))


async def _debit(ctx: Context, a: Args, *, max_debit: bool) -> Any:
    cd = call_descriptor(ctx, a)
    # RALs: *prepaid = a session piece (MaxDebit may shorten it), charged DestinationRate-rounded
    # when the descriptor says PerformRounding; *postpaid = a CDR debit (always rounded). Both
    # may go negative unless DenyNegativeAccount, as CallDescriptor.Debit does.
    postpaid = cd.perform_rounding and not max_debit
    req = rals_pb2.DebitRequest(
        call=cd, request_id=request_id(a, cd), request_type="*postpaid" if postpaid else "*prepaid",
        allow_partial=max_debit, want_call_cost=True,
    )
    return _call_cost(await _rals(ctx, "Debit", req))


@method("Responder.Debit")
async def responder_debit(ctx: Context, a: Args) -> Any:
    return await _debit(ctx, a, max_debit=False)


@method("Responder.MaxDebit")
async def responder_max_debit(ctx: Context, a: Args) -> Any:
    """Debit what the account can pay of the piece (``ForceDuration``: all or INSUFFICIENT_CREDIT)."""
    return await _debit(ctx, a, max_debit=True)


@method("Responder.GetMaxSessionTime")
async def responder_max_session_time(ctx: Context, a: Args) -> Any:
    """time.Duration as CGRateS marshals it: integer nanoseconds; -1 = unlimited (AllowNegative)."""
    return (await _rals(ctx, "GetMaxUsage", call_descriptor(ctx, a))).max_usage_ns


async def _event_cost(ctx: Context, cd: rals_pb2.CallDescriptor) -> Any:
    try:
        res = await ctx.backends.call("rals", "GetCost", cd)
    except CGRError as exc:
        if exc.word in ("SERVER_ERROR", "NOT_IMPLEMENTED"):
            raise
        raise CGRError("SERVER_ERROR", exc.word) from None  # APIer wraps the engine word
    return loads_exact(res.cost_details_json)


@method("APIerSv1.GetEventCost")
async def get_event_cost(ctx: Context, a: Args) -> Any:
    """{Tenant, Category, Subject, Account, Destination, ToR, AnswerTime, Usage} -> EventCost.
    Like APIerSv1.GetCost with an Account (Subject defaults to it); empty AnswerTime = now."""
    usage = a.duration("Usage")
    start = a.time("AnswerTime") or datetime.now(UTC)
    account = a.str("Account")
    subject = a.str("Subject") or account
    if not subject:
        raise CGRError("MANDATORY_IE_MISSING", "[Subject]")
    cd = rals_pb2.CallDescriptor(
        tenant=a.str("Tenant") or ctx.tenant, category=a.str("Category") or ctx.settings.default_category,
        subject=subject, account=account or subject, destination=a.str("Destination"),
        tor=a.str("ToR", "TOR") or "*voice", time_start_unix_ns=to_unix_nano(start), usage_ns=usage,
        duration_index_ns=usage,
    )
    return await _event_cost(ctx, cd)


@method("RALsV1.GetRatingPlansCost")
async def get_rating_plans_cost(ctx: Context, a: Args) -> Any:
    """{RatingPlanIDs, Destination, SetupTime, Usage} -> {RatingPlanID, Cost, EventCost} of the
    first plan (in the given order) that rates the call, rated as CGRateS does it: a temporary
    ``*tmp`` category/subject whose only rating plan is the candidate."""
    missing = [n for n in ("RatingPlanIDs", "Destination", "SetupTime", "Usage") if a.get(n) in (None, "", [])]
    if missing:
        raise CGRError("MANDATORY_IE_MISSING", "[" + " ".join(missing) + "]")
    start = a.time("SetupTime")
    assert start is not None
    usage = a.duration("Usage")
    word = "RATING_PLAN_NOT_FOUND"
    for plan in a.strs("RatingPlanIDs"):
        cd = rals_pb2.CallDescriptor(
            tenant=a.str("Tenant") or ctx.tenant, category="*tmp", subject="*tmp", account="*tmp",
            destination=a.str("Destination"), tor="*voice", time_start_unix_ns=to_unix_nano(start),
            usage_ns=usage, duration_index_ns=usage, rating_plan_id=plan,
        )
        try:
            res = await ctx.backends.call("rals", "GetCost", cd)
        except CGRError as exc:
            if exc.word == "UNAUTHORIZED_DESTINATION":
                word = exc.word
                continue
            if exc.word == "RATING_PLAN_NOT_FOUND":
                continue
            raise
        ec = loads_exact(res.cost_details_json)
        return {"RatingPlanID": plan, "Cost": ec["Cost"], "EventCost": ec}
    raise CGRError(word)
