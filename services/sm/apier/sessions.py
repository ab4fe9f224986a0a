"""SessionS over JSON-RPC, answered by the session core of this same process (no gRPC hop):
the session lifecycle calls, the active-session reads and ``ForceDisconnect``."""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cgrpy.errors import CGRError
from cgrpy.event import dumps_exact
from cgrpy.units import UnitError, from_unix_nano, parse_time
from services.sm.apier import shapes
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method
from services.sm.opensips import messages as m
from services.sm.sessions.core import SessionManager, counts_units


def _sm(ctx: Context) -> SessionManager:
    if ctx.sessions is None:
        raise CGRError("NOT_IMPLEMENTED", "SessionS")
    return ctx.sessions


def _session_request(method_name: str, a: Args) -> m.SessionRequest:
    try:
        return m.parse_request(method_name, a.raw)
    except m.RequestError as exc:
        raise CGRError.from_message(str(exc)) from None


@method("SessionSv1.AuthorizeEvent")
async def sessions_authorize(ctx: Context, a: Args) -> Any:
    sr = _session_request("SessionSv1.AuthorizeEvent", a)
    res = await _sm(ctx).authorize(sr.event, sr.flags)
    if res.error:
        raise CGRError.from_message(res.error)
    return m.authorize_reply(res)


@method("SessionSv1.AuthorizeEventWithDigest")
async def sessions_authorize_digest(ctx: Context, a: Args) -> Any:
    """The reply ``cgrates_auth`` gets on :2014 (MaxUsage in seconds, or the count for a unit
    ToR such as *sms; digests as strings)."""
    sr = _session_request("SessionSv1.AuthorizeEventWithDigest", a)
    res = await _sm(ctx).authorize(sr.event, sr.flags)
    if res.error:
        raise CGRError.from_message(res.error)
    return m.authorize_digest_reply(res, units=counts_units(sr.event))


@method("SessionSv1.InitiateSession")
async def sessions_initiate(ctx: Context, a: Args) -> Any:
    sr = _session_request("SessionSv1.InitiateSession", a)
    res = await _sm(ctx).initiate(sr.event, sr.flags)
    if res.error:
        raise CGRError.from_message(res.error)
    return m.initiate_reply(res)


@method("SessionSv1.InitiateSessionWithDigest")
async def sessions_initiate_digest(ctx: Context, a: Args) -> Any:
    """V1InitReplyWithDigest, as on :2014 (MaxUsage in seconds, digests as text)."""
    sr = _session_request("SessionSv1.InitiateSessionWithDigest", a)
    res = await _sm(ctx).initiate(sr.event, sr.flags)
    if res.error:
        raise CGRError.from_message(res.error)
    return m.initiate_digest_reply(res, units=counts_units(sr.event))


@method("SessionSv1.UpdateSession")
async def sessions_update(ctx: Context, a: Args) -> Any:
    sr = _session_request("SessionSv1.UpdateSession", a)
    res = await _sm(ctx).update(sr.event, sr.flags)
    if res.error:
        raise CGRError.from_message(res.error)
    return m.update_reply(res)


@method("SessionSv1.TerminateSession")
async def sessions_terminate(ctx: Context, a: Args) -> Any:
    sr = _session_request("SessionSv1.TerminateSession", a)
    err = await _sm(ctx).terminate(sr.event, sr.flags)
    if err:
        raise CGRError.from_message(err)
    return "OK"


@method("SessionSv1.ProcessCDR")
async def sessions_process_cdr(ctx: Context, a: Args) -> Any:
    sr = _session_request("SessionSv1.ProcessCDR", a)
    err = await _sm(ctx).process_cdr(sr.event)
    if err:
        raise CGRError.from_message(err)
    return "OK"


def _session_filter(a: Args) -> Callable[[dict[str, Any]], bool]:
    """utils.SessionFilter ``Filters``: only ``*string:~[*req.]Field:Value[;Value]`` inline
    filters are understood; anything else is refused rather than ignored."""
    checks: list[tuple[str, set[str]]] = []
    for f in a.strs("Filters"):
        parts = f.split(":", 2)
        if len(parts) != 3 or parts[0] != "*string" or not parts[1].startswith("~"):
            raise CGRError("NOT_IMPLEMENTED", f"session filter {f}")
        field_name = parts[1][1:].removeprefix("*req.")
        checks.append((field_name, set(parts[2].split(";"))))
    tenant = a.str("Tenant")

    def ok(row: dict[str, Any]) -> bool:
        if tenant and row.get("Tenant") != tenant:
            return False
        return all(str(row.get(name, "")) in values for name, values in checks)
    return ok


# utils.MainCDRFields: what ExternalSession shows as its own fields; the rest is ExtraFields.
_MAIN_FIELDS = frozenset((
    "CGRID", "Source", "OriginHost", "OriginID", "ToR", "RequestType", "Tenant", "Category", "Account",
    "Subject", "Destination", "SetupTime", "AnswerTime", "Usage", "Cost", "Rated", "Partial", "RunID",
    "PreRated", "CostSource", "CostDetails", "ExtraInfo", "OrderID",
))


def _as_text(v: Any) -> str:
    """utils.IfaceAsString of an event value."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, dict | list):
        return dumps_exact(v)
    return str(v)


def _event_time(v: Any) -> str:
    """An event time (RFC3339, SQL text, unix seconds...) as Go marshals time.Time; the zero
    time when absent, the text itself when it is not a time (never an error in a listing)."""
    try:
        return shapes.go_time(parse_time(v))
    except (UnitError, ValueError):
        return str(v)


def _extra_fields(event: dict[str, Any]) -> dict[str, str]:
    return {k: _as_text(v) for k, v in event.items() if k not in _MAIN_FIELDS}


def _next_auto_debit(ns: int | None) -> str:
    at = None if ns is None else from_unix_nano(ns)
    return shapes.GO_ZERO_TIME if at is None else shapes.go_time(at)


def _external_sessions(ctx: Context, a: Args) -> list[dict[str, Any]]:
    """sessions.ExternalSession of each run of each active session. ``Usage`` is the run's
    TotalUsage (the usage charged so far: 0 for a run that is not debited), ``ExtraFields`` the
    event's fields that are not main CDR fields, as text. ``MaxRate``/``MaxRateUnit``: the
    highest rate the run's debits applied so far (0 before any rated debit);
    ``NextAutoDebit``: when the debit loop debits next (the zero time without a loop)."""
    sm = _sm(ctx)
    keep = _session_filter(a)
    rows: list[dict[str, Any]] = []
    for s in sm.active_sessions():
        for run in s.runs:
            ev = run.event
            row = {
                "CGRID": s.cgrid, "RunID": run.run_id, "ToR": ev.get("ToR") or "*voice",
                "OriginID": s.origin_id, "OriginHost": s.origin_host, "Source": ev.get("Source") or "",
                "RequestType": run.request_type, "Tenant": ev.tenant, "Category": ev.get("Category") or "call",
                "Account": ev.get("Account") or "", "Subject": ev.get("Subject") or ev.get("Account") or "",
                "Destination": ev.get("Destination") or "",
                "SetupTime": _event_time(ev.get("SetupTime")),
                "AnswerTime": _event_time(ev.get("AnswerTime")),
                "Usage": run.total_usage_ns,
                "ExtraFields": _extra_fields(ev.event), "NodeID": platform.node(), "LoopIndex": run.loop_index,
                "DurationIndex": run.duration_index, "MaxRate": run.max_rate,
                "MaxRateUnit": run.max_rate_unit_ns,
                "MaxCostSoFar": run.cost, "DebitInterval": ctx.settings.debit_interval,
                "NextAutoDebit": _next_auto_debit(run.next_auto_debit_ns),
            }
            if keep(row):
                rows.append(row)
    limit = a.int("Limit")
    return rows[:limit] if limit else rows


@method("SessionSv1.GetActiveSessions")
async def sessions_active(ctx: Context, a: Args) -> Any:
    rows = _external_sessions(ctx, a)
    if not rows:
        raise CGRError("NOT_FOUND")
    return rows


@method("SessionSv1.GetActiveSessionsCount")
async def sessions_active_count(ctx: Context, a: Args) -> Any:
    return len(_external_sessions(ctx, a))


@method("SessionSv1.ForceDisconnect")
async def sessions_force_disconnect(ctx: Context, a: Args) -> Any:
    rows = _external_sessions(ctx, a)
    cgrids = list(dict.fromkeys(r["CGRID"] for r in rows))
    if not cgrids:
        raise CGRError("NOT_FOUND")
    sm = _sm(ctx)
    results = await asyncio.gather(*(sm.disconnect(c, "FORCED_DISCONNECT") for c in cgrids))
    if not any(results):
        raise CGRError("NOT_FOUND")
    return "OK"
