"""How long an account can talk (GetMaxSessionDuration, docs/rating.md).

A dry-run debit (no debt) on a copy of the account, then a walk of the resulting increments in
time order that stops at: a rate above ``cd.max_rate / cd.max_rate_unit_ns``; MaxCost
``*disconnect`` reached (MaxCostSoFar ≥ MaxCost before an increment, carried from earlier
pieces); an increment paid with debt from ``*default``. An unpayable connect fee gives 0;
``AllowNegative`` gives −1 (unlimited) without looking at balances. Never more than requested.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from services.rals.accounts.debit import Rater, check_account, debit_account
from services.rals.accounts.model import DEFAULT_BALANCE_ID, MONETARY, Account
from services.rals.accounts.selection import PrefixIndex
from services.rals.accounts.shared import SharedView
from services.rals.rating import CallDescriptor
from services.rals.rating.timings import Timing

UNLIMITED = -1
DISCONNECT = "*disconnect"


def max_usage(
    account: Account, cd: CallDescriptor, rate: Rater, prefix_index: PrefixIndex,
    *, decimals: int = 5, timings: Mapping[str, Timing] | None = None,
    shared: SharedView | None = None,
) -> int:
    """Usage in ns (≤ requested) the account can pay for; −1 for AllowNegative accounts.
    ``shared``: the other members of the account's shared groups (left unchanged)."""
    check_account(account)
    if account.allow_negative:
        return UNLIMITED
    cd = cd.with_defaults()
    requested = cd.usage
    clone = account.copy()
    default = clone.default_balance(create=False)
    default_budget = max(default.value, Decimal(0)) if default is not None else Decimal(0)
    default_uuid = default.uuid if default is not None else None
    if shared is not None:
        shared = SharedView(shared.groups, {k: a.copy() for k, a in shared.members.items()},
                            shared.rng)
    out = debit_account(clone, cd, rate, prefix_index, dry_run=True, go_negative=False,
                        decimals=decimals, timings=timings, shared=shared)
    if out.negative_connect_fee:
        return 0
    if default_uuid is None:
        d = clone.default_balance(create=False)
        default_uuid = d.uuid if d is not None else None
    so_far = cd.max_cost_so_far
    from_default = Decimal(0)
    used = 0
    for ch in out.charges:
        if ch.connect_fee:
            so_far += ch.cost
            continue
        if cd.max_rate > 0 and ch.rate_unit_ns:
            unit = cd.max_rate_unit_ns or 1_000_000_000
            if ch.rate_value * unit > cd.max_rate * ch.rate_unit_ns:
                return min(used, requested)
        k = ch.count
        if ch.max_cost_strategy == DISCONNECT and ch.max_cost > 0:
            if so_far >= ch.max_cost:
                return min(used, requested)
            if ch.cost > 0:
                # increments are paid until the accumulator reaches MaxCost (that one included)
                whole, rest = divmod(ch.max_cost - so_far, ch.cost)
                k = min(k, int(whole) + (1 if rest else 0))
        if ch.money_uuid is not None and ch.money_uuid == default_uuid and ch.cost > 0:
            k = min(k, int((default_budget - from_default) // ch.cost))
            from_default += ch.cost * k
        used += ch.duration_ns * k
        so_far += ch.cost * k
        if k < ch.count:
            return min(used, requested)
    return min(used, requested)


__all__ = ["DEFAULT_BALANCE_ID", "MONETARY", "UNLIMITED", "max_usage"]
