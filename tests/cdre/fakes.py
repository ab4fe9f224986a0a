"""An in-memory CdrBackends: tutorial rates read from tariffplans/tutorial/Rates.csv, accounts
with one monetary balance, idempotent debits/refunds, recording what StatS/ThresholdS got.

The real rating engine (services/rals/rating) has no GetCost entry point yet, so this prices
with the increment rules of docs/rating.md for the few tutorial destinations the tests use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from cgrpy.event import CGREvent
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import parse_decimal, parse_duration, round_money
from services.cdre.backends import BackendError, CallDescriptor, RatingResult
from tests.conftest import TARIFFPLANS

G = 5
# Tutorial RatingProfiles → RatingPlans → DestinationRates.
TUTORIAL_DR = {
    ("1001", "1002"): "RT_20CNT",
    ("1001", "1003"): "RT_1CNT_PER_SEC",
    ("1002", "1001"): "RT_20CNT",
    ("1003", "1001"): "RT_10CNT",
}


def _rates() -> dict[str, list[tuple[Decimal, Decimal, int, int, int]]]:
    out: dict[str, list] = {}
    for r in read_folder(TARIFFPLANS / "tutorial")["Rates"]:
        out.setdefault(r["Id"], []).append((
            parse_decimal(r["ConnectFee"]), parse_decimal(r["Rate"]),
            parse_duration(r["RateUnit"]), parse_duration(r["RateIncrement"]),
            parse_duration(r["GroupIntervalStart"]),
        ))
    return out


RATES = _rates()


def tariff_cost(subject: str, destination: str, usage_ns: int, rates=None) -> Decimal:
    """EventCost-style cost: connect fee + per-slot increments, each rounded to G decimals."""
    rate_id = TUTORIAL_DR.get((subject, destination))
    if rate_id is None:
        raise BackendError("UNAUTHORIZED_DESTINATION", f"{subject} -> {destination}")
    slots = sorted((rates or RATES)[rate_id], key=lambda s: s[4])
    total = slots[0][0]
    pos = 0
    for i, (_cf, rate, unit, incr, _gis) in enumerate(slots):
        end = slots[i + 1][4] if i + 1 < len(slots) else None
        if pos >= usage_ns or (end is not None and pos >= end):
            continue
        stop = usage_ns if end is None else min(usage_ns, end)
        n = -(-(stop - pos) // incr)
        total += n * round_money(rate * incr / unit, G)
        pos += n * incr
    return total


@dataclass
class FakeBackends:
    balances: dict[str, Decimal] = field(default_factory=lambda: {
        "1001": Decimal(10), "1002": Decimal(10), "1003": Decimal(10)})
    debits: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # request id -> (acct, cost)
    refunds: dict[str, Decimal] = field(default_factory=dict)
    debit_calls: int = 0
    get_cost_calls: int = 0
    stats_events: list[CGREvent] = field(default_factory=list)
    threshold_events: list[CGREvent] = field(default_factory=list)
    fail_stats: bool = False
    with_raw_run: bool = True
    rates: dict | None = None

    async def attributes_process_event(self, event: CGREvent, context: str) -> CGREvent:
        assert context == "*cdrs"
        raise BackendError("NOT_FOUND")

    async def chargers_process_event(self, event: CGREvent) -> list[CGREvent]:
        runs = []
        d = event.copy()
        d.event["RunID"] = "*default"
        runs.append(d)
        if self.with_raw_run:
            r = event.copy()
            r.event["RunID"] = "*raw"
            r.event["RequestType"] = "*none"  # tutorial charger Raw
            runs.append(r)
        return runs

    def _price(self, cd: CallDescriptor) -> Decimal:
        return tariff_cost(cd.subject, cd.destination, cd.usage_ns, self.rates)

    async def rals_get_cost(self, cd: CallDescriptor) -> RatingResult:
        self.get_cost_calls += 1
        cost = self._price(cd)
        return RatingResult(cost, cd.usage_ns, {"Cost": cost, "Usage": cd.usage_ns})

    async def rals_debit(self, cd: CallDescriptor, request_id: str, request_type: str) -> RatingResult:
        self.debit_calls += 1
        if request_id in self.debits:
            _acct, cost = self.debits[request_id]
            return RatingResult(cost, cd.usage_ns, {"Cost": cost, "Usage": cd.usage_ns}, True)
        if cd.account not in self.balances:
            raise BackendError("ACCOUNT_NOT_FOUND", cd.account)
        cost = round_money(self._price(cd), 4, "*up")  # PerformRounding: DR *up 4
        self.balances[cd.account] -= cost
        self.debits[request_id] = (cd.account, cost)
        return RatingResult(cost, cd.usage_ns, {"Cost": cost, "Usage": cd.usage_ns})

    async def rals_refund(self, request_id: str, refund_id: str, keep_usage_ns: int = 0) -> Decimal:
        assert keep_usage_ns == 0
        if refund_id in self.refunds:
            return self.refunds[refund_id]
        acct, cost = self.debits[request_id]
        self.balances[acct] += cost
        self.refunds[refund_id] = cost
        return cost

    async def stats_process_event(self, event: CGREvent) -> None:
        if self.fail_stats:
            raise BackendError("SERVER_ERROR", "stats down")
        self.stats_events.append(event)

    async def thresholds_process_event(self, event: CGREvent) -> None:
        self.threshold_events.append(event)

    # Batch forms: like StatS/ThresholdS, skip an event id already counted (at-least-once
    # senders); a failing StatS fails the whole batch.
    async def stats_process_events(self, events: list[CGREvent]) -> None:
        if self.fail_stats:
            raise BackendError("SERVER_ERROR", "stats down", transient=True)
        seen = {e.id for e in self.stats_events}
        self.stats_events.extend(e for e in events if e.id not in seen)

    async def thresholds_process_events(self, events: list[CGREvent]) -> None:
        seen = {e.id for e in self.threshold_events}
        self.threshold_events.extend(e for e in events if e.id not in seen)

