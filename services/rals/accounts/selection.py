"""Which balances may pay for a call, and in which order (docs/rating.md).

For a ToR ``T`` the candidates are the account's balances of type ``T`` (plus ``*generic`` ones
when ``T`` is a unit type). Excluded: disabled, expired at the call start, value ≤ 0 unless a
blocker or in a shared group, category not listed. Destination filter: no destination ids (or
``*any``) matches with precision 0; otherwise the longest prefix of the number whose destination
ids intersect the balance's list decides (all includes → precision = prefix length; any ``!``
exclusion → unusable); a list of only exclusions matches any number known to some destination,
with that prefix's length as precision. Order: precision desc, then weight desc; ties keep the
account's order (CGRateS leaves them unstable; we choose the stable order). A balance with
TimingIDs pays only when one of its timings is active at the call (piece) start, as v0.10's
debits check ``Balance.IsActiveAt(cd.TimeStart)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from cgrpy.units import to_unix_nano
from services.rals.accounts.model import GENERIC, MONETARY, Account, Balance
from services.rals.rating.timings import ANY, Timing, local_day

# prefix -> destination ids having that prefix (RatingData.prefix_index)
PrefixIndex = Mapping[str, Sequence[str]]


def destination_precision(
    balance: Balance, destination: str, prefix_index: PrefixIndex
) -> int | None:
    """Precision of ``balance`` for ``destination`` (0 = unrestricted) or None if not usable."""
    dests = balance.destination_ids
    if not dests:
        return 0
    known_prefix_len = 0
    for n in range(len(destination), 0, -1):
        ids = prefix_index.get(destination[:n])
        if not ids:
            continue
        if not known_prefix_len:
            known_prefix_len = n
        hits = [dests[i] for i in ids if i in dests]
        if hits:
            return n if all(hits) else None
    if known_prefix_len and not any(dests.values()):
        return known_prefix_len
    return None


def timing_active(balance: Balance, at: datetime, timings: Mapping[str, Timing]) -> bool:
    """v0.10 Balance.IsActiveAt: no TimingIDs, or one of them (a Timings.csv tag; ``*any``)
    active at ``at`` in its zone. An id the tariff plan does not know is never active."""
    if not balance.timing_ids or ANY in balance.timing_ids:
        return True
    ns = to_unix_nano(at)
    day = local_day(ns, at.tzinfo or UTC)
    for tid in balance.timing_ids:
        t = timings.get(tid)
        if t is not None and t.active_at(day, ns - day.start_ns):
            return True
    return False


def usable_balances(
    account: Account,
    tor: str,
    *,
    at: datetime,
    category: str,
    destination: str,
    prefix_index: PrefixIndex,
    timings: Mapping[str, Timing] | None = None,
    only_group: str | None = None,
) -> list[Balance]:
    """The balances able to pay for ``tor`` (a balance type), in debit order; with
    ``timings`` a balance with TimingIDs only while one is active at ``at``; with
    ``only_group`` only the balances of that shared group (a member's share of it)."""
    types = {tor}
    if tor not in (MONETARY, GENERIC):
        types.add(GENERIC)
    ranked: list[tuple[int, int, Balance]] = []
    for pos, b in enumerate(account.balances):
        if b.type not in types or b.disabled or b.expired(at):
            continue
        if only_group is not None and only_group not in b.shared_groups:
            continue
        if b.value <= 0 and not (b.blocker or b.shared_groups):
            continue
        if b.categories and category not in b.categories:
            continue
        if b.timing_ids and not timing_active(b, at, timings or {}):
            continue
        precision = destination_precision(b, destination, prefix_index)
        if precision is None:
            continue
        ranked.append((precision, pos, b))
    ranked.sort(key=lambda t: (-t[0], -t[2].weight, t[1]))
    return [b for _, _, b in ranked]
