"""A debit's EventCost (what a CDR keeps as ``CostDetails``), built at debit time from the
charges and the timespans they were rated on, with the shared builder of
:mod:`cgrpy.eventcost` (docs/rating.md, "Cost details").

* One charging interval per rated timespan, in call order: its increments are the charges made
  on it (the connect fee first, as a zero-usage increment), each with the accounting entry of
  the balance that paid: monetary → ``{BalanceUUID, Units = cost}``; units → ``{BalanceUUID of
  the unit balance, Units = units consumed, RatingID of the timespan, ExtraChargeID = the
  monetary entry that paid its cost or "*none"}``. An increment nothing paid has no
  AccountingID.
* Free units rated ``*zero<dur>`` have no timespan: each run of them is an interval of its
  own whose Rating has no timing, one zero-cost rate slot of ``<dur>``, and filters naming the
  balance as subject, the call's destination as prefix, ``*any`` destination and plan ``*none``.
* The final DestinationRate rounding of a CDR debit (``perform_rounding``) is a zero-usage
  increment closing the last interval, costing the difference, paid by the monetary balance that
  paid last (accounting RatingID ``*rounding``); so the document's Cost is the CDR's Cost.
* A session run's EventCost (Refund ``want_event_cost``): the EventCosts its debits kept in
  the journal, merged, trimmed to the usage the session kept (the same whole-increment split
  as the refund of the charges), plus the rounding of what is kept as a last ``*rounding``
  increment, so its Cost is the session's cost.
* ``AccountID`` is the debited account's ``tenant:id`` (a member's balance used through a
  shared group is named by its uuid only).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cgrpy.eventcost import (
    NO_EXTRA_CHARGE,
    ROUNDING,
    EventCostBuilder,
    add_rounding,
    increment,
    merge_event_costs,
    trim_event_cost,
)
from services.rals.accounts.debit import Charge
from services.rals.rating import CallDescriptor
from services.rals.rating.cost import span_rating_id

_FREE_RATING = {"ConnectFee": Decimal(0), "RoundingMethod": "", "RoundingDecimals": 0,
                "MaxCost": Decimal(0), "MaxCostStrategy": ""}


def debit_event_cost(charges: list[Charge], cd: CallDescriptor, summary: dict[str, Any], *,
                     decimals: int, rounding_diff: Decimal = Decimal(0)) -> dict[str, Any]:
    """The EventCost of one debit (``summary`` = the AccountSummary after it)."""
    b = EventCostBuilder()
    account_id = f"{summary.get('Tenant', '')}:{summary.get('ID', '')}"
    groups = _intervals(charges)
    rows: list[tuple[str, list[dict[str, Any]]]] = []
    for group in groups:
        rating_id = _rating_id(b, group, cd)
        rows.append((rating_id, [_increment(b, c, account_id, rating_id) for c in group]))
    payer = next((c.money_uuid for c in reversed(charges) if c.money_uuid), None)
    if rounding_diff and payer and rows:
        acc = b.accounting_id({"AccountID": account_id, "BalanceUUID": payer,
                               "RatingID": ROUNDING, "Units": rounding_diff, "ExtraChargeID": ""})
        rows[-1][1].append(increment(0, rounding_diff, 1, acc))
    for rating_id, incs in rows:
        b.add_interval(rating_id, incs)
    return b.document(cgrid=cd.cgrid, run_id=cd.run_id, start_time=cd.time_start,
                      decimals=decimals, account_summary=summary)


def _intervals(charges: list[Charge]) -> list[list[Charge]]:
    """Consecutive charges of one timespan together; a spanless charge run (free units) alone;
    a spanless connect fee joins the interval after it."""
    out: list[list[Charge]] = []
    pending: list[Charge] = []
    for c in charges:
        if c.span is None and c.connect_fee:
            pending.append(c)
            continue
        last = out[-1] if out and not pending else None
        if last is not None and c.span is not None and last[-1].span is c.span:
            last.append(c)
        else:
            out.append([*pending, c])
            pending = []
    if pending:
        out.append(pending)
    return out


def _rating_id(b: EventCostBuilder, group: list[Charge], cd: CallDescriptor) -> str:
    span = next((c.span for c in group if c.span is not None), None)
    if span is not None:
        return span_rating_id(b, span)
    free = next((c for c in group if c.unit_uuid), group[-1])
    return b.rating_id(
        _FREE_RATING, None,
        [{"GroupIntervalStart": 0, "Value": Decimal(0), "RateIncrement": free.duration_ns,
          "RateUnit": free.duration_ns}],
        {"Subject": free.unit_uuid or "", "DestinationPrefix": cd.destination,
         "DestinationID": "*any", "RatingPlanID": "*none"},
    )


def _increment(b: EventCostBuilder, c: Charge, account_id: str, rating_id: str) -> dict[str, Any]:
    money_id = ""
    if c.money_uuid:
        money_id = b.accounting_id({"AccountID": account_id, "BalanceUUID": c.money_uuid,
                                    "RatingID": "", "Units": c.cost, "ExtraChargeID": ""})
    acc_id = money_id
    if c.unit_uuid:
        acc_id = b.accounting_id({
            "AccountID": account_id, "BalanceUUID": c.unit_uuid,
            "RatingID": rating_id if c.span is not None else "", "Units": c.units,
            "ExtraChargeID": money_id or NO_EXTRA_CHARGE,
        })
    return increment(c.duration_ns, c.cost, c.count, acc_id)


def session_event_cost(merged_trimmed: dict[str, Any], kept: list[Charge],
                       rounding_diff: Decimal, *, decimals: int) -> dict[str, Any]:
    """The EventCost of what a session run keeps: ``merged_trimmed`` (its debits' EventCosts
    merged and trimmed to the kept usage, :func:`kept_event_cost`) with ``rounding_diff``
    (RefundRounding of the ``kept`` charges) charged to the monetary balance that paid the last
    kept charge, as the refund charges it."""
    ec = merged_trimmed
    payer = next((c.money_uuid for c in reversed(kept) if c.money_uuid), None)
    if not rounding_diff or payer is None:
        return ec
    summary = ec.get("AccountSummary") or {}
    entry = {"AccountID": f"{summary.get('Tenant', '')}:{summary.get('ID', '')}",
             "BalanceUUID": payer, "RatingID": ROUNDING, "Units": rounding_diff,
             "ExtraChargeID": ""}
    return add_rounding(ec, rounding_diff, entry, decimals)


def kept_event_cost(pieces: list[dict[str, Any]], keep_ns: int, *,
                    decimals: int) -> dict[str, Any]:
    """A session run's debits' EventCosts merged, trimmed to the ``keep_ns`` it keeps."""
    return trim_event_cost(merge_event_costs(pieces, decimals), keep_ns, decimals)
