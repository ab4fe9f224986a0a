"""The result of rating (:class:`CallCost`) and its CGRateS EventCost view (docs/rating.md).

Two cost surfaces exist, as in CGRateS: ``CallCost.cost`` is connect fee + span costs rounded once
with the DestinationRate rule; :meth:`CallCost.event_cost_amount` / ``to_event_cost()["Cost"]`` is
recomputed from the increments with the global decimals and no DestinationRate rounding.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cgrpy.event import dumps_exact
from cgrpy.units import round_money

from .timespans import Increment, TimeSpan
from .timings import Timing

MIDDLE = "*middle"


@dataclass
class CallCost:
    tenant: str
    category: str
    subject: str
    account: str
    destination: str
    tor: str
    cgrid: str
    run_id: str
    time_start: datetime
    timespans: list[TimeSpan]
    connect_fee: Decimal  # charged connect fee: 0 when loop_index > 0 or nothing to charge
    raw_cost: Decimal  # connect fee + span costs, before the DestinationRate rounding
    cost: Decimal  # raw_cost rounded once by the span with the largest RoundingDecimals
    rounding_decimals: int  # the global decimals G used per increment
    max_cost_so_far: Decimal = Decimal(0)  # carried MaxCostSoFar after this piece
    extra: dict[str, Any] = field(default_factory=dict)

    # --- convenience views -----------------------------------------------------------------

    @property
    def usage_ns(self) -> int:
        """Rated usage: may exceed the requested one (spans are rounded up to increments)."""
        return sum(ts.duration_ns for ts in self.timespans)

    @property
    def matched_subject(self) -> str:
        return self.timespans[0].matched_subject if self.timespans else ""

    @property
    def matched_prefix(self) -> str:
        return self.timespans[0].matched_prefix if self.timespans else ""

    @property
    def matched_dest_id(self) -> str:
        return self.timespans[0].matched_dest_id if self.timespans else ""

    @property
    def rating_plan_id(self) -> str:
        return self.timespans[0].rating_plan_id if self.timespans else ""

    # --- EventCost ---------------------------------------------------------------------------

    def charge_rows(self) -> list[list[Increment]]:
        """Increments per timespan, with the connect fee as a zero-usage increment first."""
        rows = [list(ts.increments) for ts in self.timespans]
        if self.connect_fee and rows:
            rows[0].insert(0, Increment(0, self.connect_fee, 1))
        return rows

    def event_cost_amount(self) -> Decimal:
        """EventCost.Cost: per interval Round(Σ cost×compress, G), summed, rounded with G."""
        g = self.rounding_decimals
        total = Decimal(0)
        for incs in self.charge_rows():
            total += round_money(sum((i.cost * i.compress_factor for i in incs), Decimal(0)), g, MIDDLE)
        return round_money(total, g, MIDDLE)

    def to_event_cost(self) -> dict[str, Any]:
        """CGRateS's EventCost JSON shape (Decimal money, int-ns durations).

        IDs are deterministic 7-char digests of the referenced object (CGRateS uses random ones;
        equal objects still share one id), so the same rating always gives the same document.
        """
        tables = _EventCostTables()
        charges: list[dict[str, Any]] = []
        for ts, incs in zip(self.timespans, self.charge_rows(), strict=True):
            interval = {
                "RatingID": tables.rating_id(ts),
                "Increments": [
                    {
                        "Usage": i.duration_ns,
                        "Cost": i.cost,
                        "AccountingID": "",
                        "CompressFactor": i.compress_factor,
                    }
                    for i in incs
                ],
                "CompressFactor": 1,
            }
            if charges and _same_interval(charges[-1], interval):
                charges[-1]["CompressFactor"] += 1
            else:
                charges.append(interval)
        return {
            "CGRID": self.cgrid,
            "RunID": self.run_id,
            "StartTime": self.time_start,
            "Usage": _charges_usage(charges),
            "Cost": _charges_cost(charges, self.rounding_decimals),
            "Charges": charges,
            "AccountSummary": None,
            "Rating": tables.ratings,
            "Accounting": {},
            "RatingFilters": tables.filters,
            "Rates": tables.rates,
            "Timings": tables.timings,
        }

    # --- CallCost JSON ---------------------------------------------------------------------------

    def to_call_cost_json(self, *, account_summary: dict[str, Any] | None = None) -> dict[str, Any]:
        """CGRateS v0.10's ``engine.CallCost`` JSON (what ``Responder.GetCost`` answers).

        ``Cost`` is CallCost.Cost (DestinationRate-rounded). Timespans carry their own
        increments only: the connect fee lives in ``RateInterval.Rating.ConnectFee`` and is
        inside ``Cost``, not in any increment (the EventCost view adds it as an increment).
        ``BalanceInfo`` is the empty DebitInfo of a rating without an account. Durations are
        int ns, money Decimal. Difference: identical consecutive timespans are not merged
        (every span has CompressFactor 1; CGRateS may merge equal-length identical spans) —
        the totals are the same.
        """
        spans = []
        for ts in self.timespans:
            ri = ts.rate_interval
            r = ri.rating
            spans.append({
                "TimeStart": ts.time_start,
                "TimeEnd": ts.time_end,
                "Cost": ts.cost,
                "RateInterval": {
                    # engine.RITiming has no ID field in v0.10
                    "Timing": {**_timing_json(ri.timing), "EndTime": ""},
                    "Rating": {
                        "ConnectFee": r.connect_fee,
                        "RoundingMethod": r.rounding_method,
                        "RoundingDecimals": r.rounding_decimals,
                        "MaxCost": r.max_cost,
                        "MaxCostStrategy": r.max_cost_strategy,
                        "Rates": [
                            {
                                "GroupIntervalStart": s.group_interval_start_ns,
                                "Value": s.value,
                                "RateIncrement": s.increment_ns,
                                "RateUnit": s.unit_ns,
                            }
                            for s in r.rates
                        ],
                    },
                    "Weight": ri.weight,
                },
                "DurationIndex": ts.duration_index_ns,
                "Increments": [
                    {
                        "Duration": i.duration_ns,
                        "Cost": i.cost,
                        "BalanceInfo": {"Unit": None, "Monetary": None, "AccountID": ""},
                        "CompressFactor": i.compress_factor,
                    }
                    for i in ts.increments
                ],
                "RoundIncrement": None,
                "MatchedSubject": ts.matched_subject,
                "MatchedPrefix": ts.matched_prefix,
                "MatchedDestId": ts.matched_dest_id,
                "RatingPlanId": ts.rating_plan_id,
                "CompressFactor": 1,
            })
        return {
            "Category": self.category,
            "Tenant": self.tenant,
            "Subject": self.subject,
            "Account": self.account,
            "Destination": self.destination,
            "ToR": self.tor,
            "Cost": self.cost,
            "Timespans": spans,
            "RatedUsage": self.usage_ns,
            "AccountSummary": account_summary,
        }


def _timing_json(t: Timing) -> dict[str, Any]:
    return {
        "Years": list(t.years),
        "Months": list(t.months),
        "MonthDays": list(t.month_days),
        "WeekDays": list(t.week_days),
        "StartTime": t.start_time,
    }


def _put(table: dict[str, Any], obj: Any) -> str:
    ident = hashlib.sha1(dumps_exact(obj).encode()).hexdigest()[:7]
    table.setdefault(ident, obj)
    return ident


def _same_interval(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["RatingID"] == b["RatingID"] and a["Increments"] == b["Increments"]


@dataclass
class _EventCostTables:
    """The EventCost's shared tables (Timings, Rates, RatingFilters, Rating), each object stored
    once under its digest id."""

    timings: dict[str, Any] = field(default_factory=dict)
    rates: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    ratings: dict[str, Any] = field(default_factory=dict)

    def rating_id(self, ts: TimeSpan) -> str:
        """The id of the timespan's Rating entry (adding it and what it references)."""
        ri = ts.rate_interval
        r = ri.rating
        timing_id = _put(self.timings, _timing_json(ri.timing))
        rates_id = _put(self.rates, [
            {
                "GroupIntervalStart": s.group_interval_start_ns,
                "Value": s.value,
                "RateIncrement": s.increment_ns,
                "RateUnit": s.unit_ns,
            }
            for s in r.rates
        ])
        filters_id = _put(self.filters, {
            "Subject": ts.matched_subject,
            "DestinationPrefix": ts.matched_prefix,
            "DestinationID": ts.matched_dest_id,
            "RatingPlanID": ts.rating_plan_id,
        })
        return _put(self.ratings, {
            "ConnectFee": r.connect_fee,
            "RoundingMethod": r.rounding_method,
            "RoundingDecimals": r.rounding_decimals,
            "MaxCost": r.max_cost,
            "MaxCostStrategy": r.max_cost_strategy,
            "TimingID": timing_id,
            "RatesID": rates_id,
            "RatingFiltersID": filters_id,
        })


def _charges_usage(charges: list[dict[str, Any]]) -> int:
    return sum(
        inc["Usage"] * inc["CompressFactor"] * ch["CompressFactor"]
        for ch in charges
        for inc in ch["Increments"]
    )


def _charges_cost(charges: list[dict[str, Any]], g: int) -> Decimal:
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
