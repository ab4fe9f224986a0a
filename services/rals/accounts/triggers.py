"""Action triggers (docs/rating.md): parsed from ActionTriggers.csv, checked after
debits and actions; a firing trigger runs its action set on the account.

Kinds: ``*min_balance``/``*max_balance`` (balances of the trigger's type that changed and match
its balance filter, value ≤ / ≥ threshold), ``*balance_expired``,
``*min_event_counter``/``*max_event_counter`` (amounts debited for calls whose destination matches
the filter, per balance type), ``*min_balance_counter``/``*max_balance_counter`` (amounts taken
from balances matching the filter). Counters live in ``Account.counters`` keyed by the trigger's
unique id. A firing trigger is marked executed before its action set runs (cleared again after it
when recurrent), so the trigger check inside that run skips it; executed, expired, not yet active
or (recurrent) sleeping triggers are skipped.

Deviation: an empty UniqueId gets a deterministic ``<Tag>#<n>`` instead of a random UUID, so
reloading the tariff plan keeps each trigger's executed state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cgrpy.units import UnitError, parse_decimal, parse_duration, parse_time
from services.rals.accounts.actions import ActionEvent
from services.rals.accounts.model import Account, AccountError, ActionTrigger, Balance
from services.rals.accounts.selection import PrefixIndex, destination_precision
from services.rals.accounts.store import parse_destination_ids

_KINDS = (
    "*min_balance", "*max_balance", "*balance_expired", "*min_event_counter",
    "*max_event_counter", "*min_balance_counter", "*max_balance_counter",
)
# ActionTriggers.csv balance columns -> filter keys
_FILTER_COLUMNS = {
    "BalanceTag": "id", "BalanceType": "type", "BalanceCategories": "categories",
    "BalanceDestinationIds": "destination_ids", "BalanceRatingSubject": "rating_subject",
    "BalanceSharedGroup": "shared_groups", "BalanceTimingIds": "timing_ids",
    "BalanceWeight": "weight", "BalanceBlocker": "blocker", "BalanceDisabled": "disabled",
}


def parse_triggers(rows: Iterable[Mapping[str, str]]) -> dict[str, list[ActionTrigger]]:
    """ActionTriggers.csv rows -> trigger sets by Tag."""
    out: dict[str, list[ActionTrigger]] = {}
    for row in rows:
        tag = row["Tag"].strip()
        where = f"ActionTriggers.csv {tag}"
        kind = row["ThresholdType"].strip()
        if kind not in _KINDS:
            raise AccountError("INVALID_ARGUMENT", f"{where}: unknown ThresholdType {kind!r}")
        bf: dict[str, Any] = {}
        for col, key in _FILTER_COLUMNS.items():
            cell = row.get(col, "").strip()
            if cell in ("", "*any"):
                continue
            if key in ("blocker", "disabled"):
                bf[key] = cell.lower() == "true"
            elif key == "weight":
                bf[key] = str(parse_decimal(cell))
            else:
                bf[key] = cell
        try:
            trig = ActionTrigger(
                id=tag,
                unique_id=row["UniqueId"].strip() or f"{tag}#{len(out.get(tag, []))}",
                threshold_type=kind,
                threshold_value=parse_decimal(row["ThresholdValue"]),
                actions_id=row["ActionsId"].strip(),
                recurrent=row.get("Recurrent", "").strip().lower() == "true",
                min_sleep_ns=parse_duration(row.get("MinSleep", "")),
                expiry=parse_time(row.get("ExpiryTime", "")),
                activation=parse_time(row.get("ActivationTime", "")),
                weight=parse_decimal(row.get("Weight", "")),
                balance_filter=bf,
            )
        except UnitError as exc:
            raise AccountError("INVALID_ARGUMENT", f"{where}: {exc}") from None
        out.setdefault(tag, []).append(trig)
    for trigs in out.values():
        trigs.sort(key=lambda t: -t.weight)
    return out


def balance_matches(bf: Mapping[str, Any], b: Balance) -> bool:
    """Hard match of a trigger's balance filter: every set field equal."""
    checks = {
        "id": lambda v: b.id == v,
        "type": lambda v: b.type == v,
        "categories": lambda v: b.categories == frozenset(x for x in v.split(";") if x),
        "destination_ids": lambda v: b.destination_ids == parse_destination_ids(v),
        "rating_subject": lambda v: b.rating_subject == v,
        "shared_groups": lambda v: b.shared_groups == frozenset(x for x in v.split(";") if x),
        "timing_ids": lambda v: b.timing_ids == frozenset(x for x in v.split(";") if x),
        "weight": lambda v: b.weight == Decimal(v),
        "blocker": lambda v: b.blocker == v,
        "disabled": lambda v: b.disabled == v,
    }
    return all(checks[k](v) for k, v in bf.items() if k in checks)


def count_debit(
    account: Account, *, balance_type: str, amount: Decimal, destination: str,
    prefix_index: PrefixIndex, paid_from: Sequence[Balance] = (),
) -> None:
    """Feed the account's counters with one debit (``amount`` of ``balance_type``)."""
    for t in account.triggers:
        if t.threshold_type.endswith("_event_counter"):
            if t.balance_filter.get("type", balance_type) != balance_type:
                continue
            dests = t.balance_filter.get("destination_ids")
            if dests:
                probe = Balance(type=balance_type, destination_ids=parse_destination_ids(dests))
                if destination_precision(probe, destination, prefix_index) is None:
                    continue
            account.counters[t.unique_id] = account.counters.get(t.unique_id, Decimal(0)) + amount
        elif t.threshold_type.endswith("_balance_counter"):
            for b in paid_from:
                if balance_matches(t.balance_filter, b):
                    account.counters[t.unique_id] = (
                        account.counters.get(t.unique_id, Decimal(0)) + amount
                    )
                    break


RunActions = Callable[[Account, str], list[ActionEvent]]


def check_triggers(
    account: Account, *, changed: set[str], now: datetime, run_actions: RunActions,
) -> list[ActionEvent]:
    """Fire the account's due triggers; ``changed`` = uuids of balances modified just now."""
    if account.disabled:
        return []  # triggers refuse to run on a disabled account
    events: list[ActionEvent] = []
    for t in sorted(account.triggers, key=lambda x: -x.weight):
        if t.executed or (t.expiry is not None and t.expiry <= now):
            continue
        if t.activation is not None and t.activation > now:
            continue
        if (t.recurrent and t.last_execution is not None and t.min_sleep_ns
                and now - t.last_execution < timedelta(microseconds=t.min_sleep_ns // 1000)):
            continue
        if not _due(account, t, changed, now):
            continue
        # Marked executed *before* its actions run (CGRateS does the same): the actions re-check
        # the account's triggers (a *topup is a balance change), and a one-shot trigger must not
        # fire again inside its own run. One-shot means once until reset (*reset_triggers, which
        # its own actions may do); a recurrent one is armed again afterwards.
        t.executed, t.last_execution = True, now
        events.extend(run_actions(account, t.actions_id))
        if t.recurrent:
            t.executed = False
    return events


def _due(account: Account, t: ActionTrigger, changed: set[str], now: datetime) -> bool:
    kind, threshold = t.threshold_type, t.threshold_value
    if kind in ("*min_balance", "*max_balance"):
        for b in account.balances:
            if b.uuid not in changed or not balance_matches(t.balance_filter, b):
                continue
            if (kind == "*min_balance" and b.value <= threshold) or (
                kind == "*max_balance" and b.value >= threshold
            ):
                return True
        return False
    if kind == "*balance_expired":
        return any(b.expired(now) and balance_matches(t.balance_filter, b)
                   for b in account.balances)
    value = account.counters.get(t.unique_id)
    if value is None:
        return False
    return value <= threshold if kind.startswith("*min") else value >= threshold
