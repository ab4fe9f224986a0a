"""Refunds and trimming charges at whole increments (docs/rating.md).

A refund gives back, per charge, ``units × count`` to its unit balance and ``cost × count`` to
its monetary balance (the connect-fee charge included when it is in the refunded set). Charges
without balance info are skipped, and so are balances no longer on the account ([I] CGRateS
logs and skips them too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from services.rals.accounts.debit import Charge
from services.rals.accounts.model import Account, Balance, round_value


def refund_charges(account: Account, charges: Sequence[Charge], *, decimals: int = 5,
                   others: Sequence[Account] = ()) -> Decimal:
    """Give the charges back to their balances (account mutated; ``others``: the members of
    its shared groups whose balances paid, mutated too); returns the money refunded."""
    money = Decimal(0)

    def find(balance_uuid: str) -> Balance | None:
        for acc in (account, *others):
            b = acc.by_uuid(balance_uuid)
            if b is not None:
                return b
        return None

    for ch in charges:
        if ch.unit_uuid is not None and ch.units:
            b = find(ch.unit_uuid)
            if b is not None:
                b.value = round_value(b.value + ch.units * ch.count, decimals)
        if ch.money_uuid is not None and ch.cost:
            b = find(ch.money_uuid)
            if b is not None:
                b.value = round_value(b.value + ch.cost * ch.count, decimals)
                money += ch.cost * ch.count
    return money


def trim_charges(charges: Sequence[Charge], keep_ns: int) -> tuple[list[Charge], list[Charge]]:
    """Split at usage ``keep_ns``: (kept, surplus). Only whole increments move: the increment
    spanning ``keep_ns`` is kept. ``keep_ns == 0`` gives everything back, connect fee included
    (TerminateSession with Usage 0 refunds it)."""
    kept: list[Charge] = []
    surplus: list[Charge] = []
    used = 0
    for ch in charges:
        if keep_ns <= 0:
            surplus.append(ch)
            continue
        if ch.duration_ns == 0:
            (kept if used < keep_ns or used == 0 else surplus).append(ch)
            continue
        room = keep_ns - used
        if room <= 0:
            surplus.append(ch)
            continue
        need = -(-room // ch.duration_ns)  # increments needed to cover the room (ceil)
        if need >= ch.count:
            kept.append(ch)
            used += ch.usage_ns
        else:
            kept.append(replace(ch, count=need))
            surplus.append(replace(ch, count=ch.count - need,
                                   offset_ns=ch.offset_ns + need * ch.duration_ns))
            used += need * ch.duration_ns
    return kept, surplus
