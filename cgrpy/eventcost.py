"""CGRateS v0.10's EventCost document, pure (docs/rating.md, "Cost details").

One builder serves every producer of the document: RALs' rating (``APIerSv1.GetCost``,
``GetEventCost``, ``GetRatingPlansCost``) and RALs' debits (a CDR's ``CostDetails``). A producer
adds charging intervals in call order: each names its Rating (built from the rating's scalar
fields, its timing, its rate slots and the matched filters) and carries its increments (usage,
cost, accounting entry, compress factor); :meth:`EventCostBuilder.document` then gives the
JSON-ready dict (Decimal money, int-ns durations) with the shared tables.

IDs are deterministic 7-char digests of the object they name (CGRateS uses random ids; equal
objects still share one id), so the same charge always gives the same document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cgrpy.event import dumps_exact
from cgrpy.units import round_money

MIDDLE = "*middle"
NO_EXTRA_CHARGE = "*none"  # a unit increment that no monetary balance paid for
ROUNDING = "*rounding"  # RatingID of the accounting entry of a final-rounding increment


def increment(usage_ns: int, cost: Decimal, compress_factor: int = 1,
              accounting_id: str = "") -> dict[str, Any]:
    """One ChargingIncrement: ``compress_factor`` identical increments of ``usage_ns``."""
    return {"Usage": usage_ns, "Cost": cost, "AccountingID": accounting_id,
            "CompressFactor": compress_factor}


def _put(table: dict[str, Any], obj: Any) -> str:
    ident = hashlib.sha1(dumps_exact(obj).encode()).hexdigest()[:7]
    table.setdefault(ident, obj)
    return ident


@dataclass
class EventCostBuilder:
    """The EventCost's charges and shared tables (Timings, Rates, RatingFilters, Rating,
    Accounting), each table object stored once under its digest id."""

    timings: dict[str, Any] = field(default_factory=dict)
    rates: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    ratings: dict[str, Any] = field(default_factory=dict)
    accounting: dict[str, Any] = field(default_factory=dict)
    charges: list[dict[str, Any]] = field(default_factory=list)

    def rating_id(self, rating: Mapping[str, Any], timing: Mapping[str, Any] | None,
                  rates: Sequence[Mapping[str, Any]], filters: Mapping[str, Any]) -> str:
        """The id of a Rating entry: ``rating`` holds ConnectFee, RoundingMethod,
        RoundingDecimals, MaxCost, MaxCostStrategy; a rating without timing (free units
        rated ``*zero<dur>``) has TimingID ""."""
        timing_id = "" if timing is None else _put(self.timings, dict(timing))
        return _put(self.ratings, {
            **rating,
            "TimingID": timing_id,
            "RatesID": _put(self.rates, [dict(r) for r in rates]),
            "RatingFiltersID": _put(self.filters, dict(filters)),
        })

    def accounting_id(self, entry: Mapping[str, Any]) -> str:
        """The id of an Accounting entry {AccountID, BalanceUUID, RatingID, Units,
        ExtraChargeID}."""
        return _put(self.accounting, dict(entry))

    def add_interval(self, rating_id: str, increments: list[dict[str, Any]]) -> None:
        """Append a charging interval; one identical to the last raises its CompressFactor."""
        interval = {"RatingID": rating_id, "Increments": increments, "CompressFactor": 1}
        last = self.charges[-1] if self.charges else None
        if last is not None and last["RatingID"] == rating_id and last["Increments"] == increments:
            last["CompressFactor"] += 1
        else:
            self.charges.append(interval)

    def document(self, *, cgrid: str, run_id: str, start_time: datetime, decimals: int,
                 account_summary: dict[str, Any] | None = None) -> dict[str, Any]:
        """The EventCost dict; ``decimals`` is the global rounding G of its Cost."""
        return {
            "CGRID": cgrid,
            "RunID": run_id,
            "StartTime": start_time,
            "Usage": charges_usage(self.charges),
            "Cost": charges_cost(self.charges, decimals),
            "Charges": self.charges,
            "AccountSummary": account_summary,
            "Rating": self.ratings,
            "Accounting": self.accounting,
            "RatingFilters": self.filters,
            "Rates": self.rates,
            "Timings": self.timings,
        }


def charges_usage(charges: list[dict[str, Any]]) -> int:
    """EventCost.Usage: Σ increment usage × its and its interval's compress factors."""
    return sum(
        inc["Usage"] * inc["CompressFactor"] * ch["CompressFactor"]
        for ch in charges
        for inc in ch["Increments"]
    )


def charges_cost(charges: list[dict[str, Any]], g: int) -> Decimal:
    """EventCost.Cost: per charge Round(Σ cost×compress, G) × its CompressFactor, rounded with G,
    summed, rounded with G."""
    total = Decimal(0)
    for ch in charges:
        per = round_money(
            sum((inc["Cost"] * inc["CompressFactor"] for inc in ch["Increments"]), Decimal(0)),
            g,
            MIDDLE,
        )
        total += round_money(per * ch["CompressFactor"], g, MIDDLE)
    return round_money(total, g, MIDDLE)
