"""``get_cost``: rate a call descriptor against a compiled tariff plan (docs/rating.md).

Also ``rating_max_usage``: the usage a call may last before MaxCost ``*disconnect`` (or MaxRate)
cuts it, from rating alone (no balances; the accounts engine adds those limits).
"""

from __future__ import annotations

from decimal import Decimal

from cgrpy.units import round_money

from .cost import MIDDLE, CallCost
from .descriptor import VOICE, CallDescriptor
from .plan import RatingData
from .selection import rating_infos
from .timespans import Increment, TimeSpan, split

DEFAULT_ROUNDING_DECIMALS = 5
DEFAULT_MAX_INCREMENTS = 1_000_000
FREE = "*free"
DISCONNECT = "*disconnect"


def get_cost(
    data: RatingData,
    cd: CallDescriptor,
    *,
    rounding_decimals: int = DEFAULT_ROUNDING_DECIMALS,
    max_increments: int = DEFAULT_MAX_INCREMENTS,
    subject_prefix_matching: bool = False,
    max_computed_usage: dict[str, int] | None = None,
) -> CallCost:
    """Rate ``cd``; raises :class:`RatingError` (RATING_PLAN_NOT_FOUND, UNAUTHORIZED_DESTINATION,
    MAX_USAGE_EXCEEDED). Its defaults (tenant, category, subject, ToR) are applied first."""
    cd = cd.with_defaults()
    cd.check_max_usage(max_computed_usage)
    tz = cd.time_start.tzinfo
    assert tz is not None
    infos = rating_infos(data, cd, subject_prefix_matching=subject_prefix_matching)
    start, end = cd.start_ns, cd.end_ns
    spans = split(infos, start, end, cd.duration_index_ns, tz, voice=cd.tor == VOICE)

    g = rounding_decimals
    for ts in spans:
        _cost_span(ts, g, max_increments)
    so_far = _apply_free_max_cost(spans, cd.max_cost_so_far)

    usage = end - start
    connect_fee = Decimal(0)
    if cd.loop_index == 0 and usage > 0 and spans:
        # Only the first span's rating counts: a later span's fee is never charged.
        connect_fee = spans[0].rate_interval.rating.connect_fee
    raw = connect_fee + sum((ts.cost for ts in spans), Decimal(0))
    return CallCost(
        tenant=cd.tenant,
        category=cd.category,
        subject=cd.subject,
        account=cd.account,
        destination=cd.destination,
        tor=cd.tor,
        cgrid=cd.cgrid,
        run_id=cd.run_id,
        time_start=cd.time_start,
        timespans=spans,
        connect_fee=connect_fee,
        raw_cost=raw,
        cost=final_rounding(raw, spans),
        rounding_decimals=g,
        max_cost_so_far=so_far,
    )


def final_rounding(raw: Decimal, spans: list[TimeSpan]) -> Decimal:
    """Round once with the method/decimals of the first span having the largest decimals."""
    if not spans:
        return raw
    chosen = spans[0].rate_interval.rating
    for ts in spans[1:]:
        r = ts.rate_interval.rating
        if r.rounding_decimals > chosen.rounding_decimals:
            chosen = r
    return round_money(raw, chosen.rounding_decimals, chosen.rounding_method)


def _cost_span(ts: TimeSpan, g: int, max_increments: int) -> None:
    d = ts.duration_ns
    if d == 0:
        ts.increments, ts.cost = [], Decimal(0)
        return
    slot = ts.rate_slot
    inc = slot.effective_increment_ns
    n = d // inc  # d is a multiple of inc after round_to_increments
    span_cost = round_money(Decimal(d) * slot.value / Decimal(slot.effective_unit_ns), g, MIDDLE)
    if n > max_increments:
        # CGRateS builds no increments here; one whole-span increment keeps the cost details and
        # the debit engine consistent with the cost.
        ts.increments, ts.cost = [Increment(d, span_cost, 1)], span_cost
        return
    each = round_money(span_cost / n, g, MIDDLE)
    ts.increments = [Increment(inc, each, n)]
    ts.cost = each * n


def _apply_free_max_cost(spans: list[TimeSpan], so_far: Decimal) -> Decimal:
    """MaxCost ``*free``: once the increments' running cost reaches MaxCost the rest is free.

    Deviation from v0.10: CGRateS's GetCost adds *cumulative* costs per span to
    its accumulator (so it trips early when a call has several spans). Here the accumulator sums
    each increment once, and the increment crossing MaxCost is charged only up to MaxCost, so the
    call costs exactly min(full cost, MaxCost). The connect fee does not count towards MaxCost.
    """
    for ts in spans:
        rating = ts.rate_interval.rating
        if rating.max_cost_strategy != FREE or rating.max_cost <= 0:
            so_far += ts.cost
            continue
        cap = rating.max_cost
        capped: list[Increment] = []
        for inc in ts.increments:
            parts = _cap_increment(inc, cap - so_far)
            capped.extend(parts)
            so_far += sum((p.cost * p.compress_factor for p in parts), Decimal(0))
        ts.increments = capped
        ts.cost = sum((i.cost * i.compress_factor for i in capped), Decimal(0))
    return so_far


def _cap_increment(inc: Increment, room: Decimal) -> list[Increment]:
    """Split a compressed increment so that at most ``room`` money is charged."""
    full = inc.cost * inc.compress_factor
    if full <= room:
        return [inc]
    if room <= 0 or inc.cost <= 0:
        return [Increment(inc.duration_ns, Decimal(0), inc.compress_factor)]
    paid = int(room // inc.cost)  # increments fully payable
    out: list[Increment] = []
    if paid:
        out.append(Increment(inc.duration_ns, inc.cost, paid))
    left = inc.compress_factor - paid
    part = room - inc.cost * paid
    if part > 0:
        out.append(Increment(inc.duration_ns, part, 1))
        left -= 1
    if left:
        out.append(Increment(inc.duration_ns, Decimal(0), left))
    return out


def rating_max_usage(
    data: RatingData,
    cd: CallDescriptor,
    *,
    rounding_decimals: int = DEFAULT_ROUNDING_DECIMALS,
    subject_prefix_matching: bool = False,
) -> int:
    """Usage (ns) the call may last by rating alone, at most the requested usage.

    Walks the increments in time order (the max-usage dry run without balances):
    stops before the first increment of a span whose rate/unit exceeds ``cd.max_rate /
    cd.max_rate_unit_ns`` (when a max rate is set), and, for MaxCost ``*disconnect``, before the
    first increment met with MaxCostSoFar >= MaxCost (so 1001->1003 on the tutorial stops at 12 s).
    """
    cc = get_cost(data, cd, rounding_decimals=rounding_decimals, subject_prefix_matching=subject_prefix_matching)
    requested = cd.usage
    so_far = cd.max_cost_so_far
    used = 0
    for ts in cc.timespans:
        rating = ts.rate_interval.rating
        if cd.max_rate > 0:
            slot = ts.rate_slot
            unit = cd.max_rate_unit_ns or 1_000_000_000
            # rate/unit > max_rate/max_unit, cross-multiplied to stay exact
            if slot.value * unit > cd.max_rate * slot.effective_unit_ns:
                return min(used, requested)
        limit = rating.max_cost if rating.max_cost_strategy == DISCONNECT and rating.max_cost > 0 else None
        for inc in ts.increments:
            take = inc.compress_factor
            if limit is not None:
                if so_far >= limit:
                    return min(used, requested)
                if inc.cost > 0:
                    # increments paid until the accumulator reaches the limit (that one included)
                    whole, rest = divmod(limit - so_far, inc.cost)
                    take = min(take, int(whole) + (1 if rest else 0))
            used += inc.duration_ns * take
            so_far += inc.cost * take
            if take < inc.compress_factor:
                return min(used, requested)
    return min(used, requested)
