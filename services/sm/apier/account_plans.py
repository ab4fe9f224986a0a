"""``APIerSv1/2.SetAccount`` and ``APIerSv1.RemoveAccount``: an account's flags, action plans and
trigger groups.

An account attached to action plans or trigger groups is an AccountActions row of the live
tariff plan (``ActionPlanId``/``ActionTriggersId`` holding several ids ``;``-joined), written
through RALs's TariffPlanService: validated like a CSV load (an unknown id changes nothing),
stored, then RALs reloads, which creates the account, sets its flags and triggers, runs its
``*asap`` plans once and schedules the timed ones, exactly as for an AccountActions.csv row.
An account with no such row and no plan or trigger asked for is changed in RALs directly.

Differences from CGRateS v0.10: ``ReloadScheduler`` is accepted and has no effect (every change
reloads RALs's scheduler); an unknown plan or trigger id answers
``SERVER_ERROR: NOT_FOUND: ActionPlan 'X'`` (v0.10: ``SERVER_ERROR: NOT_FOUND``, no name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cgrates.v1 import common_pb2, rals_pb2, tariffplan_pb2
from cgrpy.errors import CGRError
from cgrpy.event import dumps_exact, loads_exact
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method
from services.sm.apier.provisioning import tariffplan_call


@dataclass
class AccountChange:
    """What a SetAccount asks; ``None`` = leave as it is."""

    tenant: str
    account: str
    plans: list[str] | None = None
    plans_overwrite: bool = False
    triggers: list[str] | None = None
    triggers_overwrite: bool = False
    allow_negative: bool | None = None
    disabled: bool | None = None


def json_object(value: Any) -> common_pb2.JsonObject:
    return common_pb2.JsonObject(json=dumps_exact(value))


async def account_row(ctx: Context, tenant: str, account: str) -> dict[str, Any] | None:
    """The account's AccountActions row as JSON, None when it has none."""
    req = tariffplan_pb2.ProfileRequest(kind="AccountActions", object=json_object({"Tenant": tenant, "Account": account}))
    try:
        return loads_exact((await tariffplan_call(ctx, "GetProfile", req)).json)
    except CGRError as exc:
        if exc.word == "NOT_FOUND":
            return None
        raise


async def _known_ids(ctx: Context, kind: str) -> set[str]:
    try:
        return set((await tariffplan_call(ctx, "GetProfileIDs", tariffplan_pb2.ProfileIDsRequest(kind=kind))).ids)
    except CGRError as exc:
        if exc.word == "NOT_FOUND":
            return set()
        raise


async def _check_ids(ctx: Context, ch: AccountChange) -> None:
    for kind, ids in (("ActionPlan", ch.plans), ("ActionTriggers", ch.triggers)):
        if not ids:
            continue
        for i in ids:
            if not i or ";" in i:
                raise CGRError("SERVER_ERROR", f"{kind} id {i!r}: empty or containing ';'")
        known = await _known_ids(ctx, kind)
        missing = [i for i in ids if i not in known]
        if missing:
            raise CGRError("SERVER_ERROR", f"NOT_FOUND: {kind} {missing[0]!r}")


def _merged(old: list[str], new: list[str] | None, overwrite: bool) -> list[str]:
    if new is None:
        return old
    if overwrite:
        return list(dict.fromkeys(new))
    return list(dict.fromkeys([*old, *new]))


async def _live_flags(ctx: Context, tenant: str, account: str) -> tuple[bool, bool]:
    try:
        acc = await ctx.backends.call("rals", "GetAccount", rals_pb2.AccountRequest(tenant=tenant, account=account))
    except CGRError as exc:
        if exc.word in ("ACCOUNT_NOT_FOUND", "NOT_FOUND"):
            return False, False
        raise
    doc = loads_exact(acc.json)
    return bool(doc.get("AllowNegative")), bool(doc.get("Disabled"))


async def apply_account_change(ctx: Context, ch: AccountChange) -> str:
    """Check every id, then write the account's row (or change RALs directly, see module doc)."""
    await _check_ids(ctx, ch)
    row = await account_row(ctx, ch.tenant, ch.account)
    if row is None and ch.plans is None and ch.triggers is None:
        req = rals_pb2.SetAccountRequest(tenant=ch.tenant, account=ch.account)
        if ch.allow_negative is not None:
            req.allow_negative = ch.allow_negative
        if ch.disabled is not None:
            req.disabled = ch.disabled
        await ctx.backends.call("rals", "SetAccount", req)
        return "OK"
    # flags not asked keep what the row says, else what the live account has (the row is
    # what every later reload applies)
    an, dis = (row["AllowNegative"], row["Disabled"]) if row else await _live_flags(ctx, ch.tenant, ch.account)
    new = {
        "Tenant": ch.tenant, "Account": ch.account,
        "ActionPlanIds": _merged(row["ActionPlanIds"] if row else [], ch.plans, ch.plans_overwrite),
        "ActionTriggerIds": _merged(row["ActionTriggerIds"] if row else [], ch.triggers, ch.triggers_overwrite),
        "AllowNegative": an if ch.allow_negative is None else ch.allow_negative,
        "Disabled": dis if ch.disabled is None else ch.disabled,
    }
    await tariffplan_call(ctx, "SetProfile", tariffplan_pb2.ProfileRequest(kind="AccountActions", object=json_object(new)))
    if ch.triggers is not None and ch.triggers_overwrite:
        # the reload keeps trigger groups attached before; overwrite means exactly these
        req = rals_pb2.SetAccountActionTriggersRequest(
            tenant=ch.tenant, account=ch.account, add_group_ids=ch.triggers, overwrite=True)
        await ctx.backends.call("rals", "SetAccountActionTriggers", req)
    return "OK"


def _flag(a: Args, opts: Args, name: str) -> bool | None:
    value = opts.bool(name)
    return a.bool(name) if value is None else value


@method("APIerSv1.SetAccount")
async def set_account_v1(ctx: Context, a: Args) -> Any:
    """AttrSetAccount {Tenant, Account, ActionPlanID, ActionTriggersID, ExtraOptions
    {AllowNegative, Disabled} (also accepted at the top level), ReloadScheduler}: a plan or
    trigger group given replaces the account's ones, as in v0.10."""
    a.require("Account")
    a.bool("ReloadScheduler")
    opts = a.sub("ExtraOptions")
    plan = a.str("ActionPlanID", "ActionPlanId")
    trig = a.str("ActionTriggersID", "ActionTriggersId")
    ch = AccountChange(
        tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"),
        plans=[plan] if plan else None, plans_overwrite=True,
        triggers=[trig] if trig else None, triggers_overwrite=True,
        allow_negative=_flag(a, opts, "AllowNegative"), disabled=_flag(a, opts, "Disabled"),
    )
    return await apply_account_change(ctx, ch)


def _ids_arg(a: Args, name: str) -> list[str] | None:
    """A ``*[]string``: absent or null = leave alone, ``[]`` = none (with overwrite)."""
    if a.get(name) is None:
        return None
    return a.strs(name)


@method("APIerSv2.SetAccount")
async def set_account_v2(ctx: Context, a: Args) -> Any:
    """AttrSetAccount {Tenant, Account, ActionPlanIDs, ActionPlansOverwrite, ActionTriggerIDs,
    ActionTriggerOverwrite, ExtraOptions {AllowNegative, Disabled}, ReloadScheduler}."""
    a.require("Account")
    a.bool("ReloadScheduler")
    opts = a.sub("ExtraOptions")
    ch = AccountChange(
        tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"),
        plans=_ids_arg(a, "ActionPlanIDs"), plans_overwrite=bool(a.bool("ActionPlansOverwrite")),
        triggers=_ids_arg(a, "ActionTriggerIDs"), triggers_overwrite=bool(a.bool("ActionTriggerOverwrite")),
        allow_negative=opts.bool("AllowNegative"), disabled=opts.bool("Disabled"),
    )
    return await apply_account_change(ctx, ch)


@method("APIerSv1.RemoveAccount")
async def remove_account(ctx: Context, a: Args) -> Any:
    """The account goes, and with it its AccountActions row (its plans and triggers), so a
    later reload does not bring it back."""
    a.require("Account")
    tenant, account = a.str("Tenant") or ctx.tenant, a.str("Account")
    if await account_row(ctx, tenant, account) is not None:
        req = tariffplan_pb2.ProfileRequest(kind="AccountActions", object=json_object({"Tenant": tenant, "Account": account}))
        await tariffplan_call(ctx, "RemoveProfile", req)
    await ctx.backends.call("rals", "RemoveAccount", rals_pb2.AccountRequest(tenant=tenant, account=account))
    return "OK"
