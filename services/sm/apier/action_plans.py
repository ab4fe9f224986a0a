"""Action plans and action sets over JSON-RPC: ``APIerSv1.GetActionPlan``, ``RemoveActionPlan``,
``GetActions``, ``RemoveActions``, and ``APIerSv1.RemoveBalances``. Plans and sets are rows of
the live tariff plan served by RALs's TariffPlanService (``SetActionPlan``/``SetActions`` are in
``provisioning.py``); a change is validated like a CSV load and RALs reloads.

Differences from CGRateS v0.10: an ActionTiming's ``Uuid`` is derived from the plan id and the
entry's position (v0.10 draws a random one at load), so it is the same in every RALs replica and
after a restart; ``RemoveActions`` refuses a set an action plan or trigger still uses (naming
it) where v0.10 removes it and leaves the plan broken; ``RemoveBalances`` matches balances by
``BalanceID``/``BalanceUUID`` only (other filter fields answer ``NOT_IMPLEMENTED``)."""

from __future__ import annotations

import contextlib
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from cgrates.v1 import common_pb2, rals_pb2, tariffplan_pb2
from cgrpy.errors import CGRError
from cgrpy.event import loads_exact
from cgrpy.gotime import go_time_ns
from cgrpy.units import UnitError, from_unix_nano, parse_duration
from services.sm.apier.account_plans import json_object
from services.sm.apier.args import Args
from services.sm.apier.core import STRING_ARGS, Context, method
from services.sm.apier.provisioning import tariffplan_call

_PLAN_NS = uuid.UUID("6f1c2a4e-6d0b-4c59-9a57-2d1b0c7a9e10")  # the namespace of ActionTiming UUIDs
_INT_LISTS = ("Years", "Months", "MonthDays", "WeekDays")


async def _ids(ctx: Context, kind: str) -> list[str]:
    try:
        return list((await tariffplan_call(ctx, "GetProfileIDs", tariffplan_pb2.ProfileIDsRequest(kind=kind))).ids)
    except CGRError as exc:
        if exc.word == "NOT_FOUND":
            return []
        raise


async def _rows(ctx: Context, file: str, ident: str = "") -> list[dict[str, str]]:
    req = tariffplan_pb2.TPRowsRequest(tpid=ctx.settings.tpid, file=file, id=ident)
    try:
        return [loads_exact(r.json) for r in (await tariffplan_call(ctx, "GetTPRows", req)).rows]
    except CGRError as exc:
        if exc.word == "NOT_FOUND":
            return []
        raise


def _int_list(cell: str) -> list[int]:
    return [int(x) for x in cell.split(";") if x and x != "*any"]


async def ri_timing(ctx: Context, timing_id: str) -> dict[str, Any]:
    """engine.RITiming of a plan entry: a Timings row, else a built-in id (``*asap``,
    ``*monthly``, ...) shown as its StartTime, as v0.10 shows ``*asap``. v0.10's RITiming has
    no ID field: the timing id is not in the reply."""
    rows = [] if timing_id.startswith("*") else await _rows(ctx, "Timings", timing_id)
    if not rows:
        return {"Years": [], "Months": [], "MonthDays": [], "WeekDays": [],
                "StartTime": timing_id, "EndTime": ""}
    r = rows[-1]
    return {**{f: _int_list(r.get(f, "")) for f in _INT_LISTS},
            "StartTime": r.get("Time", ""), "EndTime": ""}


async def _plan(ctx: Context, plan_id: str, accounts: list[dict[str, str]]) -> dict[str, Any]:
    res = await tariffplan_call(ctx, "GetProfile", tariffplan_pb2.ProfileRequest(
        kind="ActionPlan", object=json_object({"Id": plan_id})))
    entries = loads_exact(res.json)["ActionPlan"]
    timings = []
    for i, e in enumerate(entries):
        timings.append({
            "Uuid": timing_uuid(plan_id, i),
            "Timing": {"Timing": await ri_timing(ctx, e["TimingId"]), "Rating": None, "Weight": 0},
            "ActionsID": e["ActionsId"], "ExtraData": None, "Weight": e["Weight"],
        })
    attached = {f"{r['Tenant']}:{r['Account']}": True for r in accounts
                if plan_id in r.get("ActionPlanId", "").split(";")}
    return {"Id": plan_id, "AccountIDs": attached or None, "ActionTimings": timings}


@method("APIerSv1.GetActionPlan")
async def get_action_plan(ctx: Context, a: Args) -> Any:
    """AttrGetActionPlan {ID} -> [engine.ActionPlan] (every plan when ID is empty or ``*``)."""
    ident = a.str("ID", "Id")
    ids = await _ids(ctx, "ActionPlan") if ident in ("", "*") else [ident]
    if ident not in ("", "*") and ident not in await _ids(ctx, "ActionPlan"):
        raise CGRError("NOT_FOUND")
    accounts = await _rows(ctx, "AccountActions")
    return [await _plan(ctx, pid, accounts) for pid in ids]


@method("APIerSv1.RemoveActionPlan")
async def remove_action_plan(ctx: Context, a: Args) -> Any:
    """AttrGetActionPlan {ID}: the plan goes, and every account leaves it (one transaction)."""
    a.require("ID")
    req = tariffplan_pb2.ProfileRequest(kind="ActionPlan", object=json_object({"Id": a.str("ID")}))
    await tariffplan_call(ctx, "RemoveProfile", req)
    return "OK"


@method("APIerSv1.GetActions")
async def get_actions_v1(ctx: Context, a: Args) -> Any:
    """The argument is the bare ActionsId string -> [utils.TPAction]."""
    ident = a.str("ActionsId")
    if not ident:
        raise CGRError("MANDATORY_IE_MISSING", "ActionsId")
    req = tariffplan_pb2.ProfileRequest(kind="Actions", object=json_object({"ActionsId": ident}))
    try:
        res = await tariffplan_call(ctx, "GetProfile", req)
    except CGRError as exc:
        if exc.word == "NOT_FOUND":
            raise CGRError("SERVER_ERROR", "NOT_FOUND") from None
        raise
    return [_tp_action(x) for x in loads_exact(res.json)["Actions"]]


def _text(v: Any) -> str:
    return format(v, "f") if isinstance(v, Decimal) else str(v)


def _tp_action(act: dict[str, Any]) -> dict[str, Any]:
    """utils.TPAction as v0.10's GetActions prints it: Units and BalanceWeight as text, the
    balance flags as "true"/"false" text, Weight a number."""
    out = dict(act)
    out["BalanceUuid"] = ""
    for name in ("Units", "BalanceWeight"):
        out[name] = _text(out.get(name, ""))
    for name in ("BalanceBlocker", "BalanceDisabled"):
        out[name] = "true" if str(out.get(name, "")).lower() == "true" else "false"
    return out


STRING_ARGS["APIerSv1.GetActions"] = "ActionsId"


# --- APIerSv2.GetActions: engine.Action, as the loader builds it from a TPAction -------------


def _set_cell(cell: Any) -> str:
    """A TPAction cell that v0.10's loader leaves unset when empty or ``*any``."""
    text = _text(cell) if cell is not None else ""
    return "" if text in ("", "*any") else text


def _string_map(cell: str) -> dict[str, bool]:
    """utils.ParseStringMap: ``;``-separated ids, ``!id`` excluded (false)."""
    return {v.strip().removeprefix("!"): not v.strip().startswith("!")
            for v in cell.split(";") if v.strip()}


def _value_formula(balance_type: str, units: str) -> dict[str, Any]:
    """utils.ValueFormula {Method, Params, Static} of a Units cell: a duration for ``*voice``
    (a bare number is nanoseconds, as ParseDurationWithNanosecs reads it), else a number."""
    if balance_type == "*voice":
        with contextlib.suppress(UnitError):
            return {"Method": "", "Params": None, "Static": parse_duration(units)}
    try:
        return {"Method": "", "Params": None, "Static": Decimal(units)}
    except InvalidOperation:
        pass
    try:  # a formula stored as its JSON text
        vf = loads_exact(units)
    except ValueError:
        vf = None
    if not isinstance(vf, dict):
        raise CGRError("SERVER_ERROR", f"Invalid value: {units}")
    return {"Method": vf.get("Method", ""), "Params": vf.get("Params"), "Static": vf.get("Static", 0)}


async def _balance_filter(ctx: Context, act: dict[str, Any]) -> dict[str, Any]:
    """engine.BalanceFilter: every field a pointer, null unless the TPAction cell sets it."""
    cell = {k: _set_cell(act.get(k)) for k in (
        "BalanceId", "BalanceType", "Units", "BalanceWeight", "RatingSubject", "Categories",
        "DestinationIds", "SharedGroups", "TimingTags", "BalanceBlocker", "BalanceDisabled")}
    maps = {"DestinationIDs": "DestinationIds", "Categories": "Categories", "SharedGroups": "SharedGroups",
            "TimingIDs": "TimingTags"}
    tags = [t for t in str(act.get("TimingTags") or "").split(";") if t]
    return {
        "Uuid": None, "ID": cell["BalanceId"] or None, "Type": cell["BalanceType"] or None,
        "Value": _value_formula(cell["BalanceType"], cell["Units"]) if cell["Units"] else None,
        "ExpirationDate": None,
        "Weight": Decimal(cell["BalanceWeight"]) if cell["BalanceWeight"] else None,
        **{k: _string_map(cell[c]) if cell[c] else None for k, c in maps.items() if k != "TimingIDs"},
        "RatingSubject": cell["RatingSubject"] or None,
        "TimingIDs": _string_map(cell["TimingTags"]) if cell["TimingTags"] else None,
        "Timings": [await ri_timing(ctx, t) for t in tags] or None,
        "Disabled": cell["BalanceDisabled"].lower() == "true" if cell["BalanceDisabled"] else None,
        "Factor": None,
        "Blocker": cell["BalanceBlocker"].lower() == "true" if cell["BalanceBlocker"] else None,
    }


async def engine_action(ctx: Context, set_id: str, act: dict[str, Any]) -> dict[str, Any]:
    """engine.Action {Id, ActionType, ExtraParameters, Filter, ExpirationString, Weight, Balance}."""
    return {
        "Id": set_id, "ActionType": act.get("Identifier", ""), "ExtraParameters": act.get("ExtraParameters", ""),
        "Filter": act.get("Filter", ""), "ExpirationString": act.get("ExpiryTime", ""),
        "Weight": act.get("Weight", 0), "Balance": await _balance_filter(ctx, act),
    }


@method("APIerSv2.GetActions")
async def get_actions_v2(ctx: Context, a: Args) -> Any:
    """AttrGetActions {ActionIDs, Offset, Limit} -> {ActionsId: engine.Actions} (every set when
    no IDs), each action as the loader holds it (APIerSv1.GetActions answers utils.TPAction)."""
    ids = a.strs("ActionIDs") or await _ids(ctx, "Actions")
    offset, limit = a.int("Offset") or 0, a.int("Limit") or 0
    if offset < 0 or limit < 0:
        raise CGRError("SERVER_ERROR", f"{'Offset' if offset < 0 else 'Limit'}: must not be negative")
    out: dict[str, Any] = {}
    for aid in ids[offset:offset + limit] if limit else ids[offset:]:
        req = tariffplan_pb2.ProfileRequest(kind="Actions", object=json_object({"ActionsId": aid}))
        try:
            acts = loads_exact((await tariffplan_call(ctx, "GetProfile", req)).json)["Actions"]
        except CGRError as exc:  # v0.10 wraps the DataDB's NOT_FOUND
            raise CGRError("SERVER_ERROR", "NOT_FOUND") if exc.word == "NOT_FOUND" else exc from None
        out[aid] = [await engine_action(ctx, aid, x) for x in acts]
    return out


async def _users(ctx: Context, action_id: str) -> list[str]:
    """Who still runs an action set: action plans and trigger groups."""
    out = [f"action plan {r['Id']}" for r in await _rows(ctx, "ActionPlans") if r["ActionsId"] == action_id]
    out += [f"action trigger {r['Tag']}" for r in await _rows(ctx, "ActionTriggers") if r["ActionsId"] == action_id]
    return sorted(set(out))


@method("APIerSv1.RemoveActions")
async def remove_actions(ctx: Context, a: Args) -> Any:
    """AttrRemoveActions {ActionIDs}: each must exist and be used by no plan or trigger; all are
    checked before any goes."""
    ids = a.strs("ActionIDs")
    if not ids:
        raise CGRError("NOT_FOUND")  # v0.10: a nil ActionIDs is ErrNotFound
    known = set(await _ids(ctx, "Actions"))
    for aid in ids:
        if aid not in known:
            raise CGRError("NOT_FOUND", aid)
        users = await _users(ctx, aid)
        if users:
            raise CGRError("SERVER_ERROR", f"actions {aid} used by {', '.join(users)}")
    for aid in dict.fromkeys(ids):
        await tariffplan_call(ctx, "RemoveProfile", tariffplan_pb2.ProfileRequest(
            kind="Actions", object=json_object({"ActionsId": aid})))
    return "OK"


_REMOVE_BALANCE_KEYS = {"tenant", "account", "balancetype", "balanceid", "balanceuuid", "id", "uuid"}


@method("APIerSv1.RemoveBalances")
async def remove_balances(ctx: Context, a: Args) -> Any:
    """AttrSetBalance {Tenant, Account, BalanceType, BalanceID, BalanceUUID}: *remove_balance on
    the account: every balance of the type matching the ID/UUID given (all of the type when
    neither is). Unknown account: NOT_FOUND."""
    a.require("Account", "BalanceType")
    extra = sorted(k for k, v in a.raw.items() if k.lower() not in _REMOVE_BALANCE_KEYS and v not in (None, ""))
    if extra:
        raise CGRError("NOT_IMPLEMENTED", ", ".join(extra))
    tenant, account = a.str("Tenant") or ctx.tenant, a.str("Account")
    req = rals_pb2.SetBalanceRequest(
        tenant=tenant, account=account, balance_type=a.str("BalanceType"),
        balance=rals_pb2.Balance(id=a.str("BalanceID", "ID"), uuid=a.str("BalanceUUID", "UUID")),
    )
    try:
        await ctx.backends.call("rals", "RemoveBalance", req)
    except CGRError as exc:
        if exc.word == "ACCOUNT_NOT_FOUND" or (exc.word == "NOT_FOUND" and exc.detail.startswith("account ")):
            raise CGRError("NOT_FOUND") from None  # v0.10: the bare ErrNotFound for the account
        raise
    return "OK"




def timing_uuid(plan_id: str, index: int) -> str:
    """The ``Uuid`` of a plan's entry at ``index`` (see module doc)."""
    return str(uuid.uuid5(_PLAN_NS, f"{plan_id}#{index}"))


async def _entry_index(ctx: Context, cache: dict[str, list[Any]], plan_id: str, actions_id: str,
                       timing_id: str) -> int:
    if plan_id not in cache:
        res = await tariffplan_call(ctx, "GetProfile", tariffplan_pb2.ProfileRequest(
            kind="ActionPlan", object=json_object({"Id": plan_id})))
        cache[plan_id] = loads_exact(res.json)["ActionPlan"]
    return next((i for i, e in enumerate(cache[plan_id])
                 if e["ActionsId"] == actions_id and e["TimingId"] == timing_id), -1)


@method("APIerSv1.GetScheduledActions")
async def get_scheduled_actions(ctx: Context, a: Args) -> Any:
    """ArgsGetScheduledActions {Tenant, Account, TimeStart, TimeEnd, Offset, Limit} ->
    [scheduler.ScheduledAction] soonest first: the next run of each timed plan entry (``*asap``
    entries are not scheduled); with Tenant and Account only the plans that account is in."""
    start, end = a.time("TimeStart"), a.time("TimeEnd")
    account = f"{a.str('Tenant') or ctx.tenant}:{a.str('Account')}" if a.str("Account") else ""
    res = await ctx.backends.call("rals", "GetScheduledActions", common_pb2.Empty())
    cache: dict[str, list[Any]] = {}
    out = []
    for sa in res.actions:
        when = from_unix_nano(sa.next_run_unix_ns)
        if when is None:
            continue
        if (start and when < start) or (end and when > end) or (account and account not in sa.accounts):
            continue
        idx = await _entry_index(ctx, cache, sa.action_plan_id, sa.actions_id, sa.timing_id)
        out.append({"NextRunTime": go_time_ns(sa.next_run_unix_ns), "Accounts": len(sa.accounts),
                    "ActionPlanID": sa.action_plan_id, "ActionTimingUUID": timing_uuid(sa.action_plan_id, idx),
                    "ActionsID": sa.actions_id})
    offset, limit = a.int("Offset") or 0, a.int("Limit") or 0
    if offset < 0 or limit < 0:
        raise CGRError("SERVER_ERROR", "Offset, Limit: must not be negative")
    return out[offset:offset + limit] if limit else out[offset:]
