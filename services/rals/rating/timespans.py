"""Splitting a call into timespans and rounding them to rate increments (docs/rating.md).

Order: activation instants and midnights (voice only), then the rate interval choice per span
(which may split at a later interval's start time, voice only), then rate-slot boundaries by call
offset, and last the extension of every span to a multiple of its increment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from cgrpy.units import SECOND

from .errors import UNAUTHORIZED_DESTINATION, RatingError
from .plan import RateInterval, RateSlot
from .selection import RatingInfo
from .timings import LocalDay, local_day


@dataclass(slots=True)
class Increment:
    """``compress_factor`` identical consecutive increments of ``duration_ns`` costing ``cost``
    each (CGRateS compresses them the same way)."""

    duration_ns: int
    cost: Decimal
    compress_factor: int = 1


@dataclass(slots=True)
class TimeSpan:
    start_ns: int  # unix ns
    end_ns: int
    duration_index_ns: int  # call offset at end_ns
    rating_info: RatingInfo
    rate_interval: RateInterval
    tz: tzinfo
    increments: list[Increment] = field(default_factory=list)
    cost: Decimal = Decimal(0)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def group_start_ns(self) -> int:
        """Call offset at start_ns (decides the rate slot)."""
        return self.duration_index_ns - self.duration_ns

    @property
    def rate_slot(self) -> RateSlot:
        return self.rate_interval.rating.slot_at(self.group_start_ns)

    @property
    def time_start(self) -> datetime:
        return _to_dt(self.start_ns, self.tz)

    @property
    def time_end(self) -> datetime:
        return _to_dt(self.end_ns, self.tz)

    @property
    def matched_subject(self) -> str:
        return self.rating_info.matched_subject

    @property
    def matched_prefix(self) -> str:
        return self.rating_info.matched_prefix

    @property
    def matched_dest_id(self) -> str:
        return self.rating_info.matched_dest_id

    @property
    def rating_plan_id(self) -> str:
        return self.rating_info.rating_plan_id

    def expanded_increments(self) -> list[Increment]:
        """The increments one by one (compress factor 1 each), for per-increment debiting."""
        return [Increment(i.duration_ns, i.cost) for i in self.increments for _ in range(i.compress_factor)]


def _to_dt(ns: int, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(ns // SECOND, tz) + timedelta(microseconds=(ns % SECOND) // 1000)


def split(
    infos: list[RatingInfo],
    start_ns: int,
    end_ns: int,
    duration_index_ns: int,
    tz: tzinfo,
    *,
    voice: bool,
) -> list[TimeSpan]:
    """Timespans of [start_ns, end_ns] whose last one ends at call offset ``duration_index_ns``."""
    usage = end_ns - start_ns
    offset0 = max(duration_index_ns, usage) - usage

    # 1-2. Activation instants and midnights (voice only).
    cuts: set[int] = set()
    if voice:
        cuts.update(i.from_ns for i in infos[1:] if start_ns < i.from_ns < end_ns)
        day = local_day(start_ns, tz)
        while day.end_ns < end_ns:
            cuts.add(day.end_ns)
            day = local_day(day.end_ns, tz)
    bounds = [start_ns, *sorted(cuts), end_ns]

    # 3. Rate interval per piece, splitting where a later interval takes over.
    spans: list[TimeSpan] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        info = _info_at(infos, a) if voice else infos[0]
        s = a
        while True:
            day = local_day(s, tz)
            ri, cut = _choose_interval(info.rate_intervals, day, s - day.start_ns, b, voice=voice)
            if ri is None:
                raise RatingError(
                    UNAUTHORIZED_DESTINATION,
                    f"no rate interval of {info.rating_plan_id}/{info.matched_dest_id} active at "
                    f"{_to_dt(s, tz).isoformat()}",
                )
            e = b if cut is None else cut
            spans.append(TimeSpan(s, e, offset0 + (e - start_ns), info, ri, tz))
            if e >= b:
                break
            s = e

    # 4. Rate-slot boundaries (by call offset, not wall time).
    sliced: list[TimeSpan] = []
    for sp in spans:
        group_start = sp.group_start_ns
        for slot in sp.rate_interval.rating.rates:
            gis = slot.group_interval_start_ns
            if group_start < gis < sp.duration_index_ns:
                cut_at = sp.start_ns + (gis - group_start)
                sliced.append(
                    TimeSpan(sp.start_ns, cut_at, gis, sp.rating_info, sp.rate_interval, tz)
                )
                sp.start_ns = cut_at
                group_start = gis
        sliced.append(sp)

    round_to_increments(sliced)
    return sliced


def round_to_increments(spans: list[TimeSpan]) -> None:
    """Extend each span to a multiple of its increment; spans now covered are dropped, a partly
    covered one is shortened (so rated usage can exceed the requested one)."""
    i = 0
    while i < len(spans):
        sp = spans[i]
        inc = sp.rate_slot.effective_increment_ns
        rest = sp.duration_ns % inc
        if rest:
            delta = inc - rest
            sp.end_ns += delta
            sp.duration_index_ns += delta
            j = i + 1
            while j < len(spans) and spans[j].end_ns <= sp.end_ns:
                del spans[j]
            if j < len(spans) and spans[j].start_ns < sp.end_ns:
                spans[j].start_ns = sp.end_ns
        i += 1


def _info_at(infos: list[RatingInfo], ns: int) -> RatingInfo:
    chosen = infos[0]
    for info in infos:
        if info.from_ns <= ns:
            chosen = info
    return chosen


def _choose_interval(
    intervals: tuple[RateInterval, ...], day: LocalDay, tod_ns: int, end_ns: int, *, voice: bool
) -> tuple[RateInterval | None, int | None]:
    """Highest weight among the intervals active at ``tod_ns``, ties to the latest start time;
    and (voice) the instant where a not-lower-weight interval starts later before ``end_ns``."""
    best: RateInterval | None = None
    for ri in intervals:
        t = ri.timing
        if not t.matches_day(day) or t.start_tod_ns > tod_ns:
            continue
        if (
            best is None
            or ri.weight > best.weight
            or (ri.weight == best.weight and t.start_tod_ns > best.timing.start_tod_ns)
        ):
            best = ri
    if best is None or not voice:
        return best, None
    cut: int | None = None
    for ri in intervals:
        t = ri.timing
        if ri.weight < best.weight or t.start_tod_ns <= tod_ns or not t.matches_day(day):
            continue
        at = day.start_ns + t.start_tod_ns
        if at < end_ns and (cut is None or at < cut):
            cut = at
    return best, cut

