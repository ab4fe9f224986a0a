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
    ident = _digest(obj)
    table.setdefault(ident, obj)
    return ident


# (builder table, id, object) of a Rating entry and the entries it references
RatingEntries = tuple[tuple[str, str, Any], ...]


def _digest(obj: Any) -> str:
    return hashlib.sha1(dumps_exact(obj).encode()).hexdigest()[:7]


def rating_entries(rating: Mapping[str, Any], timing: Mapping[str, Any] | None,
                   rates: Sequence[Mapping[str, Any]],
                   filters: Mapping[str, Any]) -> tuple[str, RatingEntries]:
    """(Rating id, the table entries naming it): see :meth:`EventCostBuilder.rating_id`. The
    entries' objects are shared by every document they are added to: never mutate them (no
    EventCost code does; merging already shares them between documents)."""
    entries: list[tuple[str, str, Any]] = []
    timing_id = ""
    if timing is not None:
        t = dict(timing)
        timing_id = _digest(t)
        entries.append(("timings", timing_id, t))
    rates_obj = [dict(r) for r in rates]
    rates_id = _digest(rates_obj)
    filters_obj = dict(filters)
    filters_id = _digest(filters_obj)
    rating_obj = {**rating, "TimingID": timing_id, "RatesID": rates_id,
                  "RatingFiltersID": filters_id}
    rating_id = _digest(rating_obj)
    entries += [("rates", rates_id, rates_obj), ("filters", filters_id, filters_obj),
                ("ratings", rating_id, rating_obj)]
    return rating_id, tuple(entries)


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
        rating_id, entries = rating_entries(rating, timing, rates, filters)
        self.add_entries(entries)
        return rating_id

    def add_entries(self, entries: RatingEntries) -> None:
        """Store table entries made by :func:`rating_entries` (a producer that rates the same
        Rating again reuses them instead of digesting it again)."""
        for table, ident, obj in entries:
            getattr(self, table).setdefault(ident, obj)

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


# --- a session's EventCost: the pieces of its debits merged, trimmed to what was kept ----------

_TABLES = ("Rating", "Accounting", "RatingFilters", "Rates", "Timings")


def _append(charges: list[dict[str, Any]], interval: dict[str, Any]) -> None:
    """Append a copy of ``interval``; one equal to the last (same RatingID and increments)
    raises the last's CompressFactor instead (v0.10 compresses consecutive equal intervals)."""
    last = charges[-1] if charges else None
    if last is not None and last["RatingID"] == interval["RatingID"] \
            and last["Increments"] == interval["Increments"]:
        last["CompressFactor"] += interval["CompressFactor"]
    else:
        charges.append({**interval, "Increments": [dict(i) for i in interval["Increments"]]})


def _with_charges(ec: Mapping[str, Any], charges: list[dict[str, Any]], decimals: int) -> dict[str, Any]:
    return {**ec, "Charges": charges, "Usage": charges_usage(charges),
            "Cost": charges_cost(charges, decimals)}


def merge_event_costs(pieces: Sequence[Mapping[str, Any]], decimals: int) -> dict[str, Any]:
    """One EventCost of a session run's debits, in debit order: CGRID/RunID/StartTime of the
    first, Charges concatenated (an interval equal to the one before it compressed into it),
    the id tables unioned (ids are digests of their object, so an id names the same object in
    every piece), AccountSummary of the last; Usage and Cost are the pieces' sums (recomputed
    from the merged charges, which gives the same sums). ``decimals`` is the global rounding G."""
    if not pieces:
        raise ValueError("merge_event_costs: no EventCost to merge")
    charges: list[dict[str, Any]] = []
    tables: dict[str, dict[str, Any]] = {t: {} for t in _TABLES}
    for ec in pieces:
        for interval in ec["Charges"]:
            _append(charges, interval)
        for t in _TABLES:
            tables[t].update(ec.get(t) or {})
    first, last = pieces[0], pieces[-1]
    return _with_charges({**first, **tables, "AccountSummary": last.get("AccountSummary")},
                         charges, decimals)


def trim_event_cost(ec: Mapping[str, Any], keep_ns: int, decimals: int) -> dict[str, Any]:
    """The EventCost of what stays charged when a session keeps ``keep_ns`` of it (the refund
    of the unused part): only whole increments go, the one spanning ``keep_ns`` stays; a
    zero-usage increment (connect fee) stays while usage is left to keep or none was kept yet;
    ``keep_ns <= 0`` keeps nothing. The same split RALs' refund makes on the debits' charges,
    so the trimmed Cost is what the session kept."""
    charges: list[dict[str, Any]] = []
    used = 0
    for interval in ec["Charges"] if keep_ns > 0 else []:
        for _ in range(interval["CompressFactor"]):
            kept, used = _trim_increments(interval["Increments"], keep_ns, used)
            if kept:
                _append(charges, {"RatingID": interval["RatingID"], "Increments": kept,
                                  "CompressFactor": 1})
    return _with_charges(ec, charges, decimals)


def _trim_increments(incs: Sequence[Mapping[str, Any]], keep_ns: int,
                     used: int) -> tuple[list[dict[str, Any]], int]:
    """The increments of one interval kept when ``used`` of ``keep_ns`` is already kept."""
    kept: list[dict[str, Any]] = []
    for inc in incs:
        if inc["Usage"] == 0:
            if used < keep_ns or used == 0:
                kept.append(dict(inc))
            continue
        room = keep_ns - used
        if room <= 0:
            continue
        need = min(-(-room // inc["Usage"]), inc["CompressFactor"])  # ceil: the spanning one stays
        kept.append({**inc, "CompressFactor": need})
        used += need * inc["Usage"]
    return kept, used


def add_rounding(ec: Mapping[str, Any], diff: Decimal, entry: Mapping[str, Any],
                 decimals: int) -> dict[str, Any]:
    """``ec`` with the session's final rounding ``diff`` charged as a zero-usage increment
    closing its last interval (accounting ``entry``, RatingID ``*rounding``), as a CDR debit's
    rounding is; a compressed last interval gives up one copy to carry it."""
    if not diff or not ec["Charges"]:
        return dict(ec)
    accounting = dict(ec.get("Accounting") or {})
    acc_id = _put(accounting, dict(entry))
    charges = [dict(ch) for ch in ec["Charges"]]
    last = charges.pop()
    if last["CompressFactor"] > 1:
        charges.append({**last, "CompressFactor": last["CompressFactor"] - 1})
    charges.append({**last, "CompressFactor": 1,
                    "Increments": [*last["Increments"], increment(0, diff, 1, acc_id)]})
    return _with_charges({**ec, "Accounting": accounting}, charges, decimals)
