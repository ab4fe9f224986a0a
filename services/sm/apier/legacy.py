"""v0.10 reply shapes older than the rest of the API, answered as v0.10 does.

``APIerSv1.GetAccount`` answers ``Account.AsOldStructure()``: ``Id`` = ``*out:<tenant>:<account>``,
balance types keyed ``<type>*out`` (``*monetary*out``), balances as ``{Uuid, Id, Value,
ExpirationDate, Weight, DestinationIds, RatingSubject, Category, SharedGroup, Timings, TimingIDs,
Disabled}`` with the ID sets as ``;``-joined text (sorted here; v0.10 prints map order), the unit
counters as ``{BalanceType, Balances}`` and the action triggers flattened (``BalanceId``,
``BalanceType``, ``BalanceDestinationIds``, ...; no direction: v0.10 dropped it there). ``APIerSv2.GetAccount`` keeps the current shape.
``APIerSv1.GetAccounts`` is ``APIerSv2.GetAccounts`` (same paging and filter) with each account in
that old shape, and ``Tenant`` mandatory as in v0.10.
"""

from __future__ import annotations

from typing import Any

from services.sm.apier.accounts import _account
from services.sm.apier.accounts_v2 import get_accounts
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method
from services.sm.apier.shapes import GO_ZERO_TIME

OUT = "*out"


def _ids(v: Any) -> str:
    """utils.StringMap.String(): the keys joined with ``;``."""
    if isinstance(v, dict):
        return ";".join(sorted(str(k) for k in v))
    if isinstance(v, list):
        return ";".join(sorted(str(k) for k in v))
    return "" if v is None else str(v)


def old_balance(b: dict[str, Any]) -> dict[str, Any]:
    return {
        "Uuid": b.get("Uuid", ""), "Id": b.get("ID", ""), "Value": b.get("Value", 0),
        "ExpirationDate": b.get("ExpirationDate") or GO_ZERO_TIME, "Weight": b.get("Weight", 0),
        "DestinationIds": _ids(b.get("DestinationIDs")), "RatingSubject": b.get("RatingSubject", ""),
        "Category": _ids(b.get("Categories")), "SharedGroup": _ids(b.get("SharedGroups")),
        "Timings": b.get("Timings"), "TimingIDs": _ids(b.get("TimingIDs")),
        "Disabled": bool(b.get("Disabled")),
    }


def _old_counters(counters: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not isinstance(counters, dict):
        return out
    for btype, ucs in sorted(counters.items()):
        balances = []
        for uc in ucs or []:
            for c in uc.get("Counters") or []:
                f = c.get("Filter") or {}
                balances.append({**old_balance({**f, "Value": c.get("Value", 0)})})
        out.append({"BalanceType": btype, "Balances": balances})
    return out


def old_trigger(t: dict[str, Any]) -> dict[str, Any]:
    b = t.get("Balance") or {}
    return {
        "Id": t.get("ID", ""), "ThresholdType": t.get("ThresholdType", ""),
        "ThresholdValue": t.get("ThresholdValue", 0), "Recurrent": bool(t.get("Recurrent")),
        "MinSleep": t.get("MinSleep", 0), "BalanceId": b.get("ID") or "", "BalanceType": b.get("Type") or "",
        "BalanceDestinationIds": _ids(b.get("DestinationIDs")),
        "BalanceWeight": b.get("Weight") or 0, "BalanceExpirationDate": b.get("ExpirationDate") or GO_ZERO_TIME,
        "BalanceTimingTags": _ids(b.get("TimingIDs")), "BalanceRatingSubject": b.get("RatingSubject") or "",
        "BalanceCategory": _ids(b.get("Categories")), "BalanceSharedGroup": _ids(b.get("SharedGroups")),
        "BalanceDisabled": bool(b.get("Disabled")), "Weight": t.get("Weight", 0),
        "ActionsId": t.get("ActionsID", ""), "MinQueuedItems": t.get("MinQueuedItems", 0),
        "Executed": bool(t.get("Executed")),
    }


def as_old_structure(acc: dict[str, Any]) -> dict[str, Any]:
    """engine.Account.AsOldStructure() of the account as APIerSv2.GetAccount shows it."""
    return {
        "Id": f"{OUT}:{acc.get('ID', '')}",
        "BalanceMap": {f"{btype}{OUT}": [old_balance(b) for b in bals]
                       for btype, bals in (acc.get("BalanceMap") or {}).items() if bals},
        "UnitCounters": _old_counters(acc.get("UnitCounters")),
        "ActionTriggers": [old_trigger(t) for t in acc.get("ActionTriggers") or []],
        "AllowNegative": bool(acc.get("AllowNegative")), "Disabled": bool(acc.get("Disabled")),
    }


@method("APIerSv1.GetAccount")
async def get_account_v1(ctx: Context, a: Args) -> Any:
    a.require("Account")
    return as_old_structure(await _account(ctx, a.str("Tenant") or ctx.tenant, a.str("Account")))


@method("APIerSv1.GetAccounts")
async def get_accounts_v1(ctx: Context, a: Args) -> Any:
    """AttrGetAccounts -> [AsOldStructure()] (v0.10's APIerSv1 list; APIerSv2 answers engine.Account)."""
    a.require("Tenant")
    return [as_old_structure(acc) for acc in await get_accounts(ctx, a)]
