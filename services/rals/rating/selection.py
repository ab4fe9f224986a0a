"""Which rating profile, rating plan and destination rate a call uses (docs/rating.md).

The result is a list of :class:`RatingInfo`, one per time range of the call (a call can cross an
activation change), each carrying what matched: profile key, plan, prefix, destination id and the
destination's rate intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from .descriptor import CallDescriptor
from .errors import RATING_PLAN_NOT_FOUND, UNAUTHORIZED_DESTINATION, RatingError
from .plan import RateInterval, RatingData, RatingPlan, RatingProfile, profile_key
from .timings import ANY, local_day

MAX_FALLBACK_DEPTH = 3


@dataclass(frozen=True)
class RatingInfo:
    from_ns: int  # start of the call range this applies to
    matched_subject: str  # the profile key that rated it (*out:tenant:category:subject)
    rating_plan_id: str
    matched_prefix: str
    matched_dest_id: str
    rate_intervals: tuple[RateInterval, ...]


def find_profile(data: RatingData, cd: CallDescriptor, *, subject_prefix_matching: bool) -> RatingProfile:
    """Rule 1-2: exact subject (optionally shortened), else ``*any`` only if none exists."""
    profiles = data.rating_profiles
    subject = cd.subject
    found = profiles.get(profile_key(cd.tenant, cd.category, subject))
    if found is None and subject_prefix_matching:
        for n in range(len(subject) - 1, 0, -1):
            found = profiles.get(profile_key(cd.tenant, cd.category, subject[:n]))
            if found is not None:
                break
    if found is None:
        found = profiles.get(profile_key(cd.tenant, cd.category, ANY))
    if found is None:
        raise RatingError(
            RATING_PLAN_NOT_FOUND, f"no rating profile for {cd.tenant}:{cd.category}:{cd.subject}"
        )
    return found


def rating_infos(
    data: RatingData, cd: CallDescriptor, *, subject_prefix_matching: bool = False
) -> list[RatingInfo]:
    """All rating infos covering [start, end) of the call, in time order; raises
    ``UNAUTHORIZED_DESTINATION`` when some part of the call has no rate."""
    profile = find_profile(data, cd, subject_prefix_matching=subject_prefix_matching)
    tz = cd.time_start.tzinfo
    assert tz is not None
    start, end = cd.start_ns, cd.end_ns
    infos = _cover(data, profile, cd, tz, start, end, depth=0, head_via_any=True)
    if infos is None:
        raise RatingError(
            UNAUTHORIZED_DESTINATION,
            f"no rate for destination {cd.destination!r} of {cd.tenant}:{cd.category}:{cd.subject}",
        )
    return infos


def _cover(
    data: RatingData,
    profile: RatingProfile,
    cd: CallDescriptor,
    tz: tzinfo,
    start: int,
    end: int,
    *,
    depth: int,
    head_via_any: bool,
) -> list[RatingInfo] | None:
    """Rating infos covering [start, end) through ``profile``; None if some part stays unrated."""
    acts = profile.activations
    first = 0
    for i, a in enumerate(acts):
        if a.activation_ns <= start:
            first = i
    chosen = [a for i, a in enumerate(acts) if i >= first and (a.activation_ns < end or i == first)]
    chosen = [a for a in chosen if a.activation_ns <= max(start, end)]
    out: list[RatingInfo] = []
    head_end = chosen[0].activation_ns if chosen else end
    if head_end > start:
        # The subject's plan is not active yet at the start: rule 4 rates the head via *any.
        any_profile = data.rating_profiles.get(profile_key(cd.tenant, cd.category, ANY))
        if not head_via_any or any_profile is None or any_profile.key == profile.key:
            return None
        head = _cover(data, any_profile, cd, tz, start, min(head_end, end), depth=depth, head_via_any=False)
        if head is None:
            return None
        out.extend(head)
    for i, act in enumerate(chosen):
        seg_start = max(act.activation_ns, start)
        seg_end = chosen[i + 1].activation_ns if i + 1 < len(chosen) else end
        seg_end = min(seg_end, end)
        if seg_end < seg_start or (seg_end == seg_start and start != end):
            continue
        plan = data.rating_plans[act.rating_plan_id]
        match = match_destination(data, plan, cd.destination, seg_start, tz)
        if match is not None:
            prefix, dest_id, intervals = match
            out.append(RatingInfo(seg_start, profile.key, plan.id, prefix, dest_id, intervals))
            continue
        # Rule 5: the plan has no rate for the destination -> fallback subjects, in stored order.
        covered = None
        if depth < MAX_FALLBACK_DEPTH:
            for key in act.fallback_keys:
                fb = data.rating_profiles.get(key)
                if fb is None:
                    continue
                covered = _cover(data, fb, cd, tz, seg_start, seg_end, depth=depth + 1, head_via_any=False)
                if covered is not None:
                    break
        if covered is None:
            return None
        out.extend(covered)
    return out or None


def match_destination(
    data: RatingData, plan: RatingPlan, destination: str, at_ns: int, tz: tzinfo
) -> tuple[str, str, tuple[RateInterval, ...]] | None:
    """Longest prefix first; within one prefix length the destination id whose intervals carry the
    highest weight; only ids with an interval active at ``at_ns``. Falls back to ``*any``."""
    by_dest = plan.destination_rates
    if destination and destination != ANY:
        day = local_day(at_ns, tz)
        tod = at_ns - day.start_ns
        for n in range(len(destination), 0, -1):
            prefix = destination[:n]
            ids = data.prefix_index.get(prefix)
            if not ids:
                continue
            best: tuple[str, tuple[RateInterval, ...]] | None = None
            best_weight = None
            for dest_id in ids:
                intervals = by_dest.get(dest_id)
                if not intervals:
                    continue
                active = [ri for ri in intervals if ri.timing.active_at(day, tod)]
                if not active:
                    continue
                w = max(ri.weight for ri in active)
                if best_weight is None or w > best_weight:
                    best, best_weight = (dest_id, intervals), w
            if best is not None:
                return prefix, best[0], best[1]
    any_intervals = by_dest.get(ANY)
    if any_intervals:
        return ANY, ANY, any_intervals
    return None
