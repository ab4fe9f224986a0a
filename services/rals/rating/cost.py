"""The result of rating (:class:`CallCost`) and its CGRateS EventCost view (docs/rating.md).

Two cost surfaces exist, as in CGRateS: ``CallCost.cost`` is connect fee + span costs rounded once
with the DestinationRate rule; :meth:`CallCost.event_cost_amount` / ``to_event_cost()["Cost"]`` is
recomputed from the increments with the global decimals and no DestinationRate rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cgrpy.eventcost import MIDDLE, EventCostBuilder, RatingEntries, increment, rating_entries
from cgrpy.units import round_money

from .plan import RateInterval
from .timespans import Increment, TimeSpan
from .timings import Timing


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
        """CGRateS's EventCost JSON shape (Decimal money, int-ns durations; see
        :mod:`cgrpy.eventcost`). A rating without an account: no AccountingID, no summary."""
        b = EventCostBuilder()
        for ts, incs in zip(self.timespans, self.charge_rows(), strict=True):
            b.add_interval(span_rating_id(b, ts),
                           [increment(i.duration_ns, i.cost, i.compress_factor) for i in incs])
        return b.document(cgrid=self.cgrid, run_id=self.run_id, start_time=self.time_start,
                          decimals=self.rounding_decimals)

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
                        "Rates": rates_json(ts),
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


def rates_json(ts: TimeSpan) -> list[dict[str, Any]]:
    return [
        {
            "GroupIntervalStart": s.group_interval_start_ns,
            "Value": s.value,
            "RateIncrement": s.increment_ns,
            "RateUnit": s.unit_ns,
        }
        for s in ts.rate_interval.rating.rates
    ]


# (id of the RateInterval, matched subject, prefix, destination id, rating plan) -> (that
# RateInterval, its Rating id, the table entries). Every debit and GetCost rates its spans on the
# tariff plan's few RateIntervals, so the digests (JSON + SHA-1 of each table object) are made
# once per RateInterval and match instead of per span. Keyed by identity (the interval is kept
# in the value, so its id cannot be reused while the key exists); equal identity means equal
# objects, hence the same digests. Cleared when large (a reloaded plan brings new intervals).
_RATING_MEMO: dict[tuple[int, str, str, str, str], tuple[RateInterval, str, RatingEntries]] = {}
_RATING_MEMO_MAX = 4096


def span_rating_id(b: EventCostBuilder, ts: TimeSpan) -> str:
    """The id of the timespan's Rating entry in ``b`` (adding it and what it references)."""
    ri = ts.rate_interval
    info = ts.rating_info
    key = (id(ri), info.matched_subject, info.matched_prefix, info.matched_dest_id,
           info.rating_plan_id)
    hit = _RATING_MEMO.get(key)
    if hit is None or hit[0] is not ri:
        rating_id, entries = _span_rating_entries(ts)
        if len(_RATING_MEMO) >= _RATING_MEMO_MAX:
            _RATING_MEMO.clear()
        hit = _RATING_MEMO[key] = (ri, rating_id, entries)
    b.add_entries(hit[2])
    return hit[1]


def _span_rating_entries(ts: TimeSpan) -> tuple[str, RatingEntries]:
    ri = ts.rate_interval
    r = ri.rating
    return rating_entries(
        {
            "ConnectFee": r.connect_fee,
            "RoundingMethod": r.rounding_method,
            "RoundingDecimals": r.rounding_decimals,
            "MaxCost": r.max_cost,
            "MaxCostStrategy": r.max_cost_strategy,
        },
        _timing_json(ri.timing),
        rates_json(ts),
        {
            "Subject": ts.matched_subject,
            "DestinationPrefix": ts.matched_prefix,
            "DestinationID": ts.matched_dest_id,
            "RatingPlanID": ts.rating_plan_id,
        },
    )
