"""RALs objects in their wire shapes: protobuf messages and CGRateS v0.10 JSON."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cgrates.v1 import rals_pb2
from cgrpy.event import dumps_exact
from cgrpy.gotime import go_time
from cgrpy.units import money_str, to_unix_nano
from services.rals.accounts.model import Account, ActionTrigger, Balance


def balance_json(b: Balance) -> dict[str, Any]:
    """One balance as APIerSv2.GetAccount shows it inside BalanceMap."""
    return {
        "Uuid": b.uuid,
        "ID": b.id,
        "Value": b.value,
        "ExpirationDate": go_time(b.expiry),
        "Weight": b.weight,
        "DestinationIDs": dict(b.destination_ids),
        "RatingSubject": b.rating_subject,
        "Categories": {c: True for c in sorted(b.categories)},
        "SharedGroups": {g: True for g in sorted(b.shared_groups)},
        "Timings": None,
        "TimingIDs": {t: True for t in sorted(b.timing_ids)},
        "Disabled": b.disabled,
        "Factor": dict(b.factor) or None,
        "Blocker": b.blocker,
    }


def account_json(acc: Account) -> dict[str, Any]:
    """The account as CGRateS v0.10 APIerSv2.GetAccount returns it."""
    balance_map: dict[str, list[dict[str, Any]]] = {}
    for b in acc.balances:
        balance_map.setdefault(b.type, []).append(balance_json(b))
    return {
        "ID": acc.id,
        "BalanceMap": balance_map or None,
        "UnitCounters": unit_counters_json(acc),
        "ActionTriggers": [action_trigger_json(t) for t in acc.triggers] or None,
        "AllowNegative": acc.allow_negative,
        "Disabled": acc.disabled,
    }


def _string_map(cell: Any) -> dict[str, bool] | None:
    if not cell:
        return None
    return {x.lstrip("!"): not x.startswith("!") for x in str(cell).split(";") if x}


def action_trigger_json(t: ActionTrigger) -> dict[str, Any]:
    """CGRateS v0.10 ``engine.ActionTrigger`` JSON (Balance = the BalanceFilter, unset = null)."""
    bf = t.balance_filter
    return {
        "ID": t.id, "UniqueID": t.unique_id, "ThresholdType": t.threshold_type,
        "ThresholdValue": t.threshold_value, "Recurrent": t.recurrent, "MinSleep": t.min_sleep_ns,
        "ExpirationDate": go_time(t.expiry), "ActivationDate": go_time(t.activation),
        "Balance": {
            "Uuid": None, "ID": bf.get("id"), "Type": bf.get("type"), "Value": None,
            "ExpirationDate": None,
            "Weight": Decimal(str(bf["weight"])) if "weight" in bf else None,
            "DestinationIDs": _string_map(bf.get("destination_ids")),
            "RatingSubject": bf.get("rating_subject"),
            "Categories": _string_map(bf.get("categories")),
            "SharedGroups": _string_map(bf.get("shared_groups")),
            "TimingIDs": _string_map(bf.get("timing_ids")), "Timings": None,
            "Disabled": bf.get("disabled"), "Factor": None, "Blocker": bf.get("blocker"),
        },
        "Weight": t.weight, "ActionsID": t.actions_id, "MinQueuedItems": 0,
        "Executed": t.executed, "LastExecutionTime": go_time(t.last_execution),
    }


def unit_counters_json(acc: Account) -> dict[str, list[dict[str, Any]]] | None:
    """engine.UnitCounters as v0.10 builds them from the account's counter triggers: per balance
    type, one UnitCounter per CounterType (``*event`` / ``*balance``) whose Counters are each
    trigger's balance filter (its ID the trigger's UniqueID when the filter names no balance) with
    the amount counted for that trigger; null without counter triggers."""
    out: dict[str, list[dict[str, Any]]] = {}
    by_kind: dict[tuple[str, str], dict[str, Any]] = {}
    for t in acc.triggers:
        if "counter" not in t.threshold_type:
            continue
        kind = "*balance" if "balance" in t.threshold_type else "*event"
        flt = action_trigger_json(t)["Balance"]
        if not flt["ID"] and t.unique_id:
            flt = {**flt, "ID": t.unique_id}
        btype = flt["Type"] or ""
        uc = by_kind.get((btype, kind))
        if uc is None:
            uc = by_kind[(btype, kind)] = {"CounterType": kind, "Counters": []}
            out.setdefault(btype, []).append(uc)
        if all(c["Filter"] != flt for c in uc["Counters"]):
            uc["Counters"].append({"Value": acc.counters.get(t.unique_id, Decimal(0)), "Filter": flt})
    return out or None


def balance_pb(b: Balance) -> rals_pb2.Balance:
    return rals_pb2.Balance(
        uuid=b.uuid,
        id=b.id,
        type=b.type,
        value=money_str(b.value),
        expiry_unix_ns=to_unix_nano(b.expiry),
        weight=money_str(b.weight),
        destination_ids=[d if inc else f"!{d}" for d, inc in b.destination_ids.items()],
        categories=sorted(b.categories),
        rating_subject=b.rating_subject,
        shared_groups=sorted(b.shared_groups),
        timing_ids=sorted(b.timing_ids),
        disabled=b.disabled,
        blocker=b.blocker,
    )


def account_pb(acc: Account) -> rals_pb2.Account:
    return rals_pb2.Account(
        tenant=acc.tenant,
        id=acc.account,
        balances=[balance_pb(b) for b in acc.balances],
        allow_negative=acc.allow_negative,
        disabled=acc.disabled,
        action_trigger_ids=[t.id for t in acc.triggers],
        json=dumps_exact(account_json(acc)),
    )
