"""A tariff plan compiled for rating: :class:`RatingData` built from raw ``TariffPlanRows``.

Compilation follows the tariff-plan rules of docs/rating.md: rates are slots sorted by
GroupIntervalStart whose connect fee is the one of the first *loaded* row; rating plans map
destination id -> rate intervals
``{timing, rating, weight}``; rating profiles keep their activation history sorted by time and
their RatesFallbackSubject keys sorted and de-duplicated (as the CGRateS loader stores them).
A reference to something missing (rate, destination rate, destination, timing, rating plan) is an
error naming the file and id: a plan that half-loads would rate calls wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.units import SECOND, UnitError, parse_decimal, parse_duration, parse_time, to_unix_nano

from .timings import ANY, IMPLICIT_TIMINGS, Timing, TimingError, timing_from_row

OUT = "*out"  # v0.10 rating profile keys still carry the direction
# Go's zero time, so a profile without ActivationTime is active for every call.
EARLIEST_NS = -(2**62)

T = TypeVar("T")


class RatingDataError(ValueError):
    """The tariff plan cannot be compiled; the message names the file, the id and the problem."""

    def __init__(self, file: str, ident: str, message: str) -> None:
        super().__init__(f"{file} {ident}: {message}")
        self.file, self.ident, self.message = file, ident, message


@dataclass(frozen=True)
class RateSlot:
    """One Rates.csv row: ``value`` money per ``unit_ns``, charged by ``increment_ns``, applying
    from call offset ``group_interval_start_ns``. Zero unit/increment mean 1 s."""

    group_interval_start_ns: int
    value: Decimal
    unit_ns: int
    increment_ns: int

    @property
    def effective_unit_ns(self) -> int:
        return self.unit_ns or SECOND

    @property
    def effective_increment_ns(self) -> int:
        return self.increment_ns or SECOND


@dataclass(frozen=True)
class Rate:
    id: str
    connect_fee: Decimal
    slots: tuple[RateSlot, ...]


@dataclass(frozen=True)
class Rating:
    """What a DestinationRates row attaches to a destination (CGRateS RIRate)."""

    rates_id: str
    connect_fee: Decimal
    rounding_method: str
    rounding_decimals: int
    max_cost: Decimal
    max_cost_strategy: str
    rates: tuple[RateSlot, ...]

    def slot_at(self, offset_ns: int) -> RateSlot:
        """The slot applying at a call offset: the last one whose GIS is not after it."""
        chosen = self.rates[0]
        for s in self.rates:
            if s.group_interval_start_ns <= offset_ns:
                chosen = s
            else:
                break
        return chosen


@dataclass(frozen=True)
class RateInterval:
    timing: Timing
    rating: Rating
    weight: Decimal


@dataclass(frozen=True)
class DestinationRate:
    id: str
    destination_id: str
    rates_id: str
    rounding_method: str
    rounding_decimals: int
    max_cost: Decimal
    max_cost_strategy: str


@dataclass(frozen=True)
class RatingPlan:
    id: str
    # destination id (or "*any") -> its rate intervals, in load order
    destination_rates: dict[str, tuple[RateInterval, ...]]


@dataclass(frozen=True)
class Activation:
    activation_ns: int
    rating_plan_id: str
    fallback_keys: tuple[str, ...]  # full profile keys, sorted + de-duplicated


@dataclass(frozen=True)
class RatingProfile:
    key: str  # *out:<tenant>:<category>:<subject>
    activations: tuple[Activation, ...]  # sorted by activation time


def profile_key(tenant: str, category: str, subject: str) -> str:
    return f"{OUT}:{tenant}:{category}:{subject}"


@dataclass
class RatingData:
    timings: dict[str, Timing] = field(default_factory=dict)
    destinations: dict[str, tuple[str, ...]] = field(default_factory=dict)  # id -> prefixes
    prefix_index: dict[str, tuple[str, ...]] = field(default_factory=dict)  # prefix -> ids
    rates: dict[str, Rate] = field(default_factory=dict)
    destination_rates: dict[str, tuple[DestinationRate, ...]] = field(default_factory=dict)
    rating_plans: dict[str, RatingPlan] = field(default_factory=dict)
    rating_profiles: dict[str, RatingProfile] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: TariffPlanRows) -> RatingData:
        data = cls()
        data.timings = dict(IMPLICIT_TIMINGS)
        for row in rows.get("Timings", []):
            tag = _cell(row, "Tag")
            try:
                data.timings[tag] = timing_from_row(row)
            except TimingError as exc:
                raise RatingDataError("Timings.csv", tag, str(exc)) from None
        data._load_destinations(rows.get("Destinations", []))
        data._load_rates(rows.get("Rates", []))
        data._load_destination_rates(rows.get("DestinationRates", []))
        data._load_rating_plans(rows.get("RatingPlans", []))
        data._load_rating_profiles(rows.get("RatingProfiles", []))
        return data

    def unsane_rates(self) -> list[tuple[str, str]]:
        """CGRateS's "unsane rating" loader check: (rate id, problem) pairs for slots
        whose GIS do not strictly increase, whose GIS is not a multiple of the previous slot's
        increment, or whose unit/increment is zero. Rating still works (zero means 1 s)."""
        problems: list[tuple[str, str]] = []
        for ident, rate in self.rates.items():
            prev: RateSlot | None = None
            for slot in rate.slots:
                if slot.unit_ns <= 0 or slot.increment_ns <= 0:
                    problems.append((ident, "RateUnit and RateIncrement must be positive"))
                if prev is not None:
                    gis = slot.group_interval_start_ns
                    if gis <= prev.group_interval_start_ns:
                        problems.append((ident, "GroupIntervalStart values must strictly increase"))
                    elif prev.increment_ns > 0 and gis % prev.increment_ns:
                        problems.append(
                            (ident, f"GroupIntervalStart {gis}ns is not a multiple of the previous "
                                    f"increment {prev.increment_ns}ns")
                        )
                prev = slot
        return problems

    # --- compilation steps -------------------------------------------------------------------

    def _load_destinations(self, rows: Iterable[dict[str, str]]) -> None:
        dests: dict[str, list[str]] = {}
        index: dict[str, list[str]] = {}
        for row in rows:
            ident, prefix = _cell(row, "Id"), _cell(row, "Prefix")
            if not ident or not prefix:
                raise RatingDataError("Destinations.csv", ident or "?", "empty Id or Prefix")
            plist = dests.setdefault(ident, [])
            if prefix not in plist:
                plist.append(prefix)
            ids = index.setdefault(prefix, [])
            if ident not in ids:
                ids.append(ident)
        self.destinations = {k: tuple(v) for k, v in dests.items()}
        self.prefix_index = {k: tuple(v) for k, v in index.items()}

    def _load_rates(self, rows: Iterable[dict[str, str]]) -> None:
        fees: dict[str, Decimal] = {}
        slots: dict[str, list[RateSlot]] = {}
        for row in rows:
            ident = _cell(row, "Id")
            slot = _parse(
                "Rates.csv",
                ident,
                lambda row=row: RateSlot(
                    group_interval_start_ns=parse_duration(_cell(row, "GroupIntervalStart")),
                    value=parse_decimal(_cell(row, "Rate")),
                    unit_ns=parse_duration(_cell(row, "RateUnit")),
                    increment_ns=parse_duration(_cell(row, "RateIncrement")),
                ),
            )
            # Only the first loaded row's connect fee counts.
            if ident not in fees:
                fees[ident] = _parse(
                    "Rates.csv", ident, lambda row=row: parse_decimal(_cell(row, "ConnectFee"))
                )
            slots.setdefault(ident, []).append(slot)
        self.rates = {
            ident: Rate(
                ident,
                fees[ident],
                tuple(sorted(sl, key=lambda s: s.group_interval_start_ns)),
            )
            for ident, sl in slots.items()
        }

    def _load_destination_rates(self, rows: Iterable[dict[str, str]]) -> None:
        out: dict[str, list[DestinationRate]] = {}
        for row in rows:
            ident = _cell(row, "Id")
            dest = _cell(row, "DestinationId") or ANY
            rates_id = _cell(row, "RatesTag")
            if dest != ANY and dest not in self.destinations:
                raise RatingDataError("DestinationRates.csv", ident, f"unknown destination {dest!r}")
            if rates_id not in self.rates:
                raise RatingDataError("DestinationRates.csv", ident, f"unknown rate {rates_id!r}")
            method = _cell(row, "RoundingMethod")
            decimals_cell = _cell(row, "RoundingDecimals") or "0"
            if not decimals_cell.lstrip("-").isdigit():
                raise RatingDataError(
                    "DestinationRates.csv", ident, f"RoundingDecimals {decimals_cell!r} is not an integer"
                )
            strategy = _cell(row, "MaxCostStrategy")
            if strategy not in ("", "*free", "*disconnect"):
                raise RatingDataError(
                    "DestinationRates.csv", ident, f"unknown MaxCostStrategy {strategy!r}"
                )
            out.setdefault(ident, []).append(
                DestinationRate(
                    id=ident,
                    destination_id=dest,
                    rates_id=rates_id,
                    rounding_method=method,
                    rounding_decimals=int(decimals_cell),
                    max_cost=_parse(
                        "DestinationRates.csv", ident, lambda row=row: parse_decimal(_cell(row, "MaxCost"))
                    ),
                    max_cost_strategy=strategy,
                )
            )
        self.destination_rates = {k: tuple(v) for k, v in out.items()}

    def _load_rating_plans(self, rows: Iterable[dict[str, str]]) -> None:
        plans: dict[str, dict[str, list[RateInterval]]] = {}
        for row in rows:
            ident = _cell(row, "Id")
            dr_id = _cell(row, "DestinationRatesId")
            timing_id = _cell(row, "TimingTag") or ANY
            drs = self.destination_rates.get(dr_id)
            if drs is None:
                raise RatingDataError("RatingPlans.csv", ident, f"unknown destination rates {dr_id!r}")
            timing = self.timings.get(timing_id)
            if timing is None:
                raise RatingDataError("RatingPlans.csv", ident, f"unknown timing {timing_id!r}")
            weight = _parse("RatingPlans.csv", ident, lambda row=row: parse_decimal(_cell(row, "Weight")))
            by_dest = plans.setdefault(ident, {})
            for dr in drs:
                rate = self.rates[dr.rates_id]
                rating = Rating(
                    rates_id=rate.id,
                    connect_fee=rate.connect_fee,
                    rounding_method=dr.rounding_method,
                    rounding_decimals=dr.rounding_decimals,
                    max_cost=dr.max_cost,
                    max_cost_strategy=dr.max_cost_strategy,
                    rates=rate.slots,
                )
                by_dest.setdefault(dr.destination_id, []).append(RateInterval(timing, rating, weight))
        self.rating_plans = {
            ident: RatingPlan(ident, {d: tuple(v) for d, v in by_dest.items()})
            for ident, by_dest in plans.items()
        }

    def _load_rating_profiles(self, rows: Iterable[dict[str, str]]) -> None:
        acts: dict[str, dict[int, Activation]] = {}
        for row in rows:
            tenant, category = _cell(row, "Tenant"), _cell(row, "Category")
            subject = _cell(row, "Subject")
            key = profile_key(tenant, category, subject)
            plan_id = _cell(row, "RatingPlanId")
            if plan_id not in self.rating_plans:
                raise RatingDataError("RatingProfiles.csv", key, f"unknown rating plan {plan_id!r}")
            when = _parse(
                "RatingProfiles.csv", key, lambda row=row: parse_time(_cell(row, "ActivationTime"))
            )
            at_ns = EARLIEST_NS if when is None else to_unix_nano(when)
            fallbacks = sorted(
                {
                    profile_key(tenant, category, s.strip())
                    for s in _cell(row, "RatesFallbackSubject").split(";")
                    if s.strip()
                }
            )
            # A repeated activation time replaces the earlier row, as a reload would.
            acts.setdefault(key, {})[at_ns] = Activation(at_ns, plan_id, tuple(fallbacks))
        self.rating_profiles = {
            key: RatingProfile(key, tuple(a for _, a in sorted(by_time.items())))
            for key, by_time in acts.items()
        }


def _cell(row: dict[str, str], column: str) -> str:
    return (row.get(column) or "").strip()


def _parse(file: str, ident: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except UnitError as exc:
        raise RatingDataError(file, ident, str(exc)) from None


def forced_plan_view(data: RatingData, tenant: str, category: str, subject: str, plan_id: str) -> RatingData:
    """A view of ``data`` in which ``tenant:category:subject`` is rated by ``plan_id`` alone
    (active since the epoch, no fallbacks): how SupplierS prices a supplier's rating plan."""
    from dataclasses import replace

    from services.rals.rating.errors import RATING_PLAN_NOT_FOUND, RatingError

    if plan_id not in data.rating_plans:
        raise RatingError(RATING_PLAN_NOT_FOUND, f"rating plan {plan_id!r}")
    key = profile_key(tenant, category, subject)
    return replace(data, rating_profiles={key: RatingProfile(key, (Activation(0, plan_id, ()),))})
