"""Balance selection, debit, refund and max usage on the tutorial plan (docs/rating.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND
from services.rals.accounts.debit import debit_account
from services.rals.accounts.maxusage import max_usage
from services.rals.accounts.model import MONETARY, VOICE, Account, AccountError, Balance
from services.rals.accounts.refund import refund_charges, trim_charges
from services.rals.accounts.selection import usable_balances
from services.rals.rating import CallDescriptor, RatingData, get_cost
from tests.conftest import TARIFFPLANS

DATA = RatingData.from_rows(read_folder(TARIFFPLANS / "tutorial"))
PREFIXES = DATA.prefix_index
T0 = datetime(2014, 8, 4, 13, 0, 0, tzinfo=UTC)


def rate(cd: CallDescriptor):  # noqa: ANN201
    return get_cost(DATA, cd)


def cd(dest: str = "1002", seconds: int = 85, account: str = "1001", **kw) -> CallDescriptor:  # noqa: ANN003
    return CallDescriptor(tenant="cgrates.org", category="call", account=account, subject=account,
                          destination=dest, time_start=T0, usage_ns=seconds * SECOND, **kw)


def acc(*balances: Balance, **kw) -> Account:  # noqa: ANN003
    return Account("cgrates.org", "1001", list(balances), **kw)


def money(value: str, weight: int = 10, **kw) -> Balance:  # noqa: ANN003
    return Balance(type=MONETARY, id=kw.pop("id", f"m{weight}"), value=Decimal(value),
                   weight=Decimal(weight), **kw)


def test_ex2_debit_85s() -> None:
    a = acc(money("10"))
    out = debit_account(a, cd(seconds=85), rate, PREFIXES)
    assert out.cost == Decimal("0.64175")
    assert out.usage_ns == 85 * SECOND
    assert a.balances[0].value == Decimal("9.35825")
    assert [(c.duration_ns // SECOND, c.cost, c.count, c.connect_fee) for c in out.charges] == [
        (0, Decimal("0.4"), 1, True), (60, Decimal("0.2"), 1, False),
        (1, Decimal("0.00167"), 25, False),
    ]


def test_ex1_usage_rounds_up_to_increment() -> None:
    a = acc(money("10"))
    out = debit_account(a, cd(seconds=20), rate, PREFIXES)
    assert (out.cost, out.usage_ns) == (Decimal("0.6"), 60 * SECOND)
    assert a.balances[0].value == Decimal("9.4")


def test_ex5_max_usage_balance_10_three_hours() -> None:
    a = acc(money("10"))
    assert max_usage(a, cd(seconds=3 * 3600), rate, PREFIXES) == 5688 * SECOND
    assert a.balances[0].value == Decimal(10)  # dry run


def test_ex4_max_usage_disconnect_max_cost_12s() -> None:
    a = acc(money("10"))
    assert max_usage(a, cd(dest="1003", seconds=20), rate, PREFIXES) == 12 * SECOND
    assert max_usage(a, cd(dest="1003", seconds=10), rate, PREFIXES) == 10 * SECOND
    # GetCost/Debit ignore *disconnect: the whole 20 s is paid
    assert debit_account(a, cd(dest="1003", seconds=20), rate, PREFIXES).cost == Decimal("0.2")


def test_max_usage_unpayable_connect_fee_is_zero() -> None:
    assert max_usage(acc(money("0.3")), cd(seconds=60), rate, PREFIXES) == 0


def test_allow_negative_max_usage_unlimited_and_disabled() -> None:
    assert max_usage(acc(money("0"), allow_negative=True), cd(), rate, PREFIXES) == -1
    with pytest.raises(AccountError, match="ACCOUNT_DISABLED"):
        max_usage(acc(money("10"), disabled=True), cd(), rate, PREFIXES)
    with pytest.raises(AccountError, match="ACCOUNT_DISABLED"):
        debit_account(acc(money("10"), disabled=True), cd(), rate, PREFIXES)


def test_weights_and_moving_to_next_balance() -> None:
    hi, lo = money("0.5", 20), money("10", 10)
    a = acc(lo, hi)
    out = debit_account(a, cd(seconds=85), rate, PREFIXES)
    # fee 0.4 from the heavier balance; it cannot pay 0.2, the next one pays the rest
    assert hi.value == Decimal("0.1")
    assert lo.value == Decimal("9.75825")
    assert out.cost == Decimal("0.64175")


def test_debit_goes_negative_on_default_balance() -> None:
    a = acc(money("0.5"))
    out = debit_account(a, cd(seconds=120), rate, PREFIXES)
    assert out.cost == Decimal("0.7002")
    default = a.default_balance(create=False)
    assert default is not None and default.value == Decimal("-0.3002")
    assert a.balances[0].value == Decimal("0.1")


def test_deny_negative_leaves_rest_uncovered() -> None:
    a = acc(money("0.5"))
    out = debit_account(a, cd(seconds=120), rate, PREFIXES, go_negative=False)
    assert not out.complete and out.usage_ns == 0 and out.cost == Decimal("0.4")


def test_free_voice_units_before_money_with_destination_filter() -> None:
    voice = Balance(type=VOICE, id="v", value=Decimal(30 * SECOND), destination_ids={"DST_1002": True})
    a = acc(money("10", 10), voice)
    out = debit_account(a, cd(seconds=85), rate, PREFIXES)
    assert voice.value == 0
    # 30 s free, then money from offset 30 s: fee 0.4, one 60 s increment 0.2 (rounded up)
    assert out.usage_ns == 90 * SECOND
    assert a.balances[0].value == Decimal("9.4")
    # a voice balance bound to another destination is not usable
    other = Balance(type=VOICE, id="v3", value=Decimal(30 * SECOND), destination_ids={"DST_1003": True})
    assert usable_balances(acc(other), VOICE, at=T0, category="call", destination="1002",
                           prefix_index=PREFIXES) == []
    excluded = Balance(type=VOICE, id="vx", value=Decimal(1), destination_ids={"DST_1002": False})
    assert usable_balances(acc(excluded), VOICE, at=T0, category="call", destination="1002",
                           prefix_index=PREFIXES) == []
    assert usable_balances(acc(excluded), VOICE, at=T0, category="call", destination="1003",
                           prefix_index=PREFIXES) == [excluded]


def test_selection_order_precision_then_weight_and_exclusions() -> None:
    any_dest = money("1", 50, id="any")
    precise = money("1", 5, id="precise", destination_ids={"DST_1002": True})
    expired = money("1", 90, id="expired", expiry=datetime(2014, 1, 1, tzinfo=UTC))
    disabled = money("1", 90, id="off", disabled=True)
    empty = money("0", 90, id="empty")
    blocker = money("0", 1, id="blk", blocker=True)
    other_cat = money("1", 90, id="sms", categories=frozenset({"sms"}))
    a = acc(any_dest, precise, expired, disabled, empty, blocker, other_cat)
    got = usable_balances(a, MONETARY, at=T0, category="call", destination="1002",
                          prefix_index=PREFIXES)
    assert [b.id for b in got] == ["precise", "any", "blk"]


def test_blocker_stops_debit_and_max_usage() -> None:
    blk = money("0", 20, id="bblocker", blocker=True, destination_ids={"DST_1002": True})
    free = money("20", 10, id="bfree")
    with pytest.raises(AccountError, match="INSUFFICIENT_CREDIT_BALANCE_BLOCKER"):
        debit_account(acc(blk, free), cd(seconds=60), rate, PREFIXES)
    assert max_usage(acc(blk, free), cd(seconds=60), rate, PREFIXES) == 0
    # another destination is not blocked
    assert max_usage(acc(blk, free), cd(dest="1003", seconds=10), rate, PREFIXES) == 10 * SECOND


def test_refund_whole_increments() -> None:
    a = acc(money("10"))
    out = debit_account(a, cd(seconds=85), rate, PREFIXES)
    kept, surplus = trim_charges(out.charges, 60 * SECOND)
    assert sum(c.usage_ns for c in kept) == 60 * SECOND
    assert refund_charges(a, surplus) == Decimal("0.04175")
    assert a.balances[0].value == Decimal("9.4")
    # trimming at 30 s keeps the whole 60 s increment
    kept, surplus = trim_charges(kept, 30 * SECOND)
    assert surplus == []
    # Usage 0 refunds everything, connect fee included
    kept, surplus = trim_charges(kept, 0)
    assert refund_charges(a, surplus) == Decimal("0.6")
    assert a.balances[0].value == Decimal("10")


def test_refund_units() -> None:
    voice = Balance(type=VOICE, id="v", value=Decimal(100 * SECOND))
    a = acc(money("10"), voice)
    out = debit_account(a, cd(seconds=85), rate, PREFIXES)
    assert voice.value == 15 * SECOND and out.cost == 0
    refund_charges(a, out.charges)
    assert voice.value == 100 * SECOND
