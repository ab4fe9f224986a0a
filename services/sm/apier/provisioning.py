"""CGRateS JSON-RPC provisioning and tariff-plan read-back: APIerSv1.Set*/Get*/Remove* of
filters and profiles, actions and action plans, GetTPIds (the rating TP API is tp_rating.py). Every call goes to the
TariffPlanService of the RALs process (services/rals/tariffplan_service.py), which validates like
a CSV load, stores the rows and reloads the owning services; this module only maps argument and
reply shapes. Registered into :data:`services.sm.apier.core.METHODS` on import.

Differences from CGRateS v0.10: a refused profile answers ``INVALID_ARGUMENT:<problems>`` naming
the field (CGRateS answers ``SERVER_ERROR: broken reference ...`` for a missing filter and accepts
an unknown attribute type until it is used); the ``Cache`` options are ignored (every change is
live at once: the owners reload); APIerSv2.GetActions answers the TP action shape it was set with.
"""

from __future__ import annotations

from typing import Any

import grpc

from cgrates.v1 import common_pb2, rals_pb2, tariffplan_pb2, tariffplan_pb2_grpc
from cgrpy.errors import CGRError
from cgrpy.event import dumps_exact, loads_exact
from cgrpy.runtime.client import to_cgr_error
from services.sm.apier.args import Args
from services.sm.apier.core import METHODS, Context, Handler

_STUBS: dict[int, tariffplan_pb2_grpc.TariffPlanServiceStub] = {}


async def _call(ctx: Context, method: str, request: Any) -> Any:
    backends = ctx.backends
    stub = _STUBS.get(id(backends))
    if stub is None:
        stub = _STUBS[id(backends)] = tariffplan_pb2_grpc.TariffPlanServiceStub(backends._channel("rals"))
    try:
        return await getattr(stub, method)(request, timeout=max(backends.timeout, 30.0))
    except grpc.aio.AioRpcError as exc:
        raise to_cgr_error("rals", method, exc) from None


async def tariffplan_call(ctx: Context, method: str, request: Any) -> Any:
    """A call to RALs's TariffPlanService (for the other apier modules)."""
    return await _call(ctx, method, request)


def _obj(value: Any) -> common_pb2.JsonObject:
    return common_pb2.JsonObject(json=dumps_exact(value))


async def _set(ctx: Context, kind: str, obj: dict[str, Any], *, overwrite: bool = True) -> str:
    req = tariffplan_pb2.ProfileRequest(kind=kind, object=_obj(obj), no_overwrite=not overwrite)
    await _call(ctx, "SetProfile", req)
    return "OK"


def _profile(a: Args) -> dict[str, Any]:
    """The profile fields (``AttributeWithCache`` embeds the profile; v2 may nest it)."""
    for nested in ("AttributeProfile", "ChargerProfile", "SupplierProfile", "StatQueueProfile",
                   "ThresholdProfile", "ResourceProfile", "Filter"):
        if isinstance(a.get(nested), dict):
            return dict(a.get(nested))
    return {k: v for k, v in a.raw.items() if k.lower() != "cache"}


def _key(ctx: Context, a: Args) -> dict[str, Any]:
    a.require("ID")
    return {"Tenant": a.str("Tenant") or ctx.tenant, "ID": a.str("ID")}


def _profile_methods(kind: str, set_names: list[str], get_name: str, remove_name: str, ids_name: str) -> None:
    async def set_profile(ctx: Context, a: Args) -> Any:
        return await _set(ctx, kind, _profile(a))

    async def get_profile(ctx: Context, a: Args) -> Any:
        res = await _call(ctx, "GetProfile", tariffplan_pb2.ProfileRequest(kind=kind, object=_obj(_key(ctx, a))))
        return loads_exact(res.json)

    async def remove_profile(ctx: Context, a: Args) -> Any:
        await _call(ctx, "RemoveProfile", tariffplan_pb2.ProfileRequest(kind=kind, object=_obj(_key(ctx, a))))
        return "OK"

    async def profile_ids(ctx: Context, a: Args) -> Any:
        req = tariffplan_pb2.ProfileIDsRequest(kind=kind, tenant=a.str("Tenant") or ctx.tenant)
        return list((await _call(ctx, "GetProfileIDs", req)).ids)

    handlers: list[tuple[list[str], Handler]] = [
        (set_names, set_profile), ([get_name], get_profile), ([remove_name], remove_profile), ([ids_name], profile_ids),
    ]
    for names, fn in handlers:
        for n in names:
            METHODS[n] = fn


_profile_methods("Filter", ["APIerSv1.SetFilter"], "APIerSv1.GetFilter", "APIerSv1.RemoveFilter",
                 "APIerSv1.GetFilterIDs")
_profile_methods("Attribute", ["APIerSv1.SetAttributeProfile", "APIerSv2.SetAttributeProfile"],
                 "APIerSv1.GetAttributeProfile", "APIerSv1.RemoveAttributeProfile", "APIerSv1.GetAttributeProfileIDs")
_profile_methods("Charger", ["APIerSv1.SetChargerProfile"], "APIerSv1.GetChargerProfile",
                 "APIerSv1.RemoveChargerProfile", "APIerSv1.GetChargerProfileIDs")
_profile_methods("Supplier", ["APIerSv1.SetSupplierProfile"], "APIerSv1.GetSupplierProfile",
                 "APIerSv1.RemoveSupplierProfile", "APIerSv1.GetSupplierProfileIDs")
_profile_methods("StatQueue", ["APIerSv1.SetStatQueueProfile"], "APIerSv1.GetStatQueueProfile",
                 "APIerSv1.RemoveStatQueueProfile", "APIerSv1.GetStatQueueProfileIDs")
_profile_methods("Threshold", ["APIerSv1.SetThresholdProfile"], "APIerSv1.GetThresholdProfile",
                 "APIerSv1.RemoveThresholdProfile", "APIerSv1.GetThresholdProfileIDs")
_profile_methods("Resource", ["APIerSv1.SetResourceProfile"], "APIerSv1.GetResourceProfile",
                 "APIerSv1.RemoveResourceProfile", "APIerSv1.GetResourceProfileIDs")


# --- actions and action plans ---------------------------------------------------------------


async def set_actions(ctx: Context, a: Args) -> Any:
    """V1AttrSetActions {ActionsId, Overwrite, Actions: [V1TPAction]}; without Overwrite an
    existing set answers EXISTS, as CGRateS does."""
    a.require("ActionsId")
    obj = {"ActionsId": a.str("ActionsId"), "Actions": a.get("Actions")}
    return await _set(ctx, "Actions", obj, overwrite=bool(a.bool("Overwrite")))


async def set_action_plan(ctx: Context, a: Args) -> Any:
    """AttrSetActionPlan {Id, ActionPlan: [{ActionsId, Years, Months, MonthDays, WeekDays, Time,
    Weight}], Overwrite, ReloadScheduler}. A non-*asap timing is stored as a Timings row
    ``<Id>#<n>``; the scheduler is RALs's (reloaded either way)."""
    a.require("Id", "ActionPlan")
    obj = {"Id": a.str("Id"), "ActionPlan": a.get("ActionPlan")}
    return await _set(ctx, "ActionPlan", obj, overwrite=bool(a.bool("Overwrite")))


async def set_action_triggers(ctx: Context, a: Args) -> Any:
    """A trigger group as ActionTriggers.csv holds it: {GroupID, ActionTriggers: [...]}."""
    a.require("GroupID")
    return await _set(ctx, "ActionTriggers", {"GroupID": a.str("GroupID"), "ActionTriggers": a.get("ActionTriggers")})


def _account_triggers(ctx: Context, a: Args, **kw: Any) -> rals_pb2.SetAccountActionTriggersRequest:
    a.require("Account")
    return rals_pb2.SetAccountActionTriggersRequest(
        tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"), **kw)


async def _rals_triggers(ctx: Context, name: str, req: Any) -> Any:
    try:
        return loads_exact((await ctx.backends.call("rals", name, req)).json)
    except CGRError as exc:
        if exc.word in ("NOT_FOUND", "ACCOUNT_NOT_FOUND"):
            raise CGRError("NOT_FOUND") from None  # CGRateS: the bare utils.ErrNotFound
        raise


async def set_account_action_triggers(ctx: Context, a: Args) -> Any:
    """AttrSetAccountActionTriggers {Tenant, Account, GroupID, UniqueID, ActionTrigger: {field:
    value}}: change the live account's triggers of that group/unique id in RALs (NOT_FOUND when
    none matches; each changed trigger validated like an ActionTriggers.csv row). Difference:
    an account listed in AccountActions.csv gets the triggers of its row's ActionTriggersId back
    (none when empty; executed state kept) whenever RALs reloads the tariff plan, which every
    provisioning Set* call does; accounts created over the API keep their live triggers."""
    fields = a.get("ActionTrigger") or {}
    if not isinstance(fields, dict):
        raise CGRError("SERVER_ERROR", "ActionTrigger: expected a JSON object")
    req = _account_triggers(ctx, a, group_id=a.str("GroupID"), unique_id=a.str("UniqueID"),
                            action_trigger_json=dumps_exact(fields))
    await _rals_triggers(ctx, "SetAccountActionTriggers", req)
    return "OK"


async def add_account_action_triggers(ctx: Context, a: Args) -> Any:
    """AttrAddAccountActionTriggers {Tenant, Account, ActionTriggerIDs, ActionTriggerOverwrite}."""
    req = _account_triggers(ctx, a, add_group_ids=a.strs("ActionTriggerIDs"),
                            overwrite=bool(a.bool("ActionTriggerOverwrite")))
    await _rals_triggers(ctx, "SetAccountActionTriggers", req)
    return "OK"


async def remove_account_action_triggers(ctx: Context, a: Args) -> Any:
    """AttrRemoveAccountActionTriggers {Tenant, Account, GroupID, UniqueID}."""
    req = _account_triggers(ctx, a, group_id=a.str("GroupID"), unique_id=a.str("UniqueID"), remove=True)
    await _rals_triggers(ctx, "SetAccountActionTriggers", req)
    return "OK"


async def get_account_action_triggers(ctx: Context, a: Args) -> Any:
    """AttrGetAccount {Tenant, Account} -> the account's engine.ActionTrigger list."""
    a.require("Account")
    req = rals_pb2.AccountRequest(tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"))
    return await _rals_triggers(ctx, "GetAccountActionTriggers", req)


# --- tariff-plan read-back --------------------------------------------------------------------


async def get_tpids(ctx: Context, a: Args) -> Any:
    return list((await _call(ctx, "GetTPIds", common_pb2.Empty())).tpids)


for _name, _fn in {
    "APIerSv1.SetActions": set_actions, "APIerSv2.SetActions": set_actions,
    "APIerSv1.SetActionPlan": set_action_plan,
    "APIerSv1.SetActionTriggers": set_action_triggers,
    "APIerSv1.SetAccountActionTriggers": set_account_action_triggers,
    "APIerSv1.AddAccountActionTriggers": add_account_action_triggers,
    "APIerSv1.RemoveAccountActionTriggers": remove_account_action_triggers,
    "APIerSv1.GetAccountActionTriggers": get_account_action_triggers,
    "APIerSv1.GetTPIds": get_tpids,
}.items():
    METHODS[_name] = _fn
