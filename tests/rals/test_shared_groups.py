"""Shared groups in RALs debits (SharedGroups.csv), on SQLite and Postgres, on the locked store
and on the in-memory one: a call of one member paid from another member's shared balance, to
the cent, every member's journal provable; the strategies; refunds; concurrent debits of two
members (two stores on one Postgres, each owning one account) never overspend the balance."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND
from services.rals.accounts.live import LiveStore
from services.rals.accounts.model import MONETARY, AccountError, Balance
from services.rals.accounts.service import AccountService
from services.rals.accounts.shared import order_by_strategy
from services.rals.rating import CallDescriptor
from tests.conftest import TARIFFPLANS

T0 = datetime(2014, 8, 4, 13, 0, 0, tzinfo=UTC)  # a Monday, peak: RP_RETAIL1 -> RT_40CNT
OLD = read_folder(TARIFFPLANS / "oldtutorial")
TEN = "cgrates.org"


def rows_with(strategy: str) -> dict[str, list[dict[str, str]]]:
    """oldtutorial with SHARED_A's strategy changed and none of its accounts (so the only
    members are the test's)."""
    rows = copy.deepcopy(OLD)
    rows["AccountActions"] = []
    rows["SharedGroups"] = [{"Id": "SHARED_A", "Account": "*any", "Strategy": strategy,
                             "RatingSubject": ""}]
    return rows


def make(db_url: str, rows: dict, kind: str) -> AccountService:
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    store = LiveStore(engine) if kind == "live" else None
    s = AccountService(engine, rows, tpid="old", store=store)
    s.provision()
    return s


def close(s: AccountService) -> None:
    if isinstance(s.store, LiveStore):
        s.store.close()
    s.store.engine.dispose()


@pytest.fixture(params=["locked", "live"])
def svc(db_url: str, request: pytest.FixtureRequest) -> Iterator[AccountService]:
    s = make(db_url, OLD, request.param)
    yield s
    close(s)


def call(account: str, seconds: int = 60, dest: str = "1002", **kw) -> CallDescriptor:  # noqa: ANN003
    return CallDescriptor(account=account, destination=dest, time_start=T0,
                          usage_ns=seconds * SECOND, **kw)


def shared_value(s: AccountService, account: str) -> Decimal:
    [b] = [b for b in s.get_account(TEN, account).balances if "SHARED_A" in b.shared_groups]
    return b.value


def assert_verified(s: AccountService, *accounts: str) -> None:
    for a in accounts:
        assert s.verify(TEN, a) == {}, a


def test_call_of_1007_is_paid_from_the_shared_balance_of_1001(svc: AccountService) -> None:
    # oldtutorial: 1001 holds 5 in SHARED_A (and 5 of its own), 1007 holds 0 in SHARED_A
    assert shared_value(svc, "1001") == Decimal(5) and shared_value(svc, "1007") == 0
    # 0.80 connect fee + 0.40 first minute, then 0.20/min: 5 pays 20 minutes
    assert svc.get_max_usage(call("1007", 3600)) == 1200 * SECOND
    out = svc.debit(call("1007", 60), "sg-d1")
    shared_uuid = next(b.uuid for b in svc.get_account(TEN, "1001").balances
                       if b.shared_groups)
    assert out.cost == Decimal("1.2") and out.usage_ns == 60 * SECOND
    assert {c.money_uuid for c in out.charges} == {shared_uuid}
    assert shared_value(svc, "1001") == Decimal("3.8")
    own = [b.value for b in svc.get_account(TEN, "1001").balances if not b.shared_groups]
    assert own[0] == Decimal(5)  # 1001's own money untouched
    assert shared_value(svc, "1007") == 0
    assert out.account["ID"] == "1007"  # the summary is the caller's, as in v0.10
    again = svc.debit(call("1007", 60), "sg-d1")
    assert again.replayed and shared_value(svc, "1001") == Decimal("3.8")
    # 3.8 left: 0.80 fee + 0.40 first minute, 2.60 at 0.20/min = 13 more minutes
    assert svc.get_max_usage(call("1007", 3600)) == 840 * SECOND
    assert_verified(svc, "1001", "1007")


def test_refund_goes_back_to_the_member_that_paid(svc: AccountService) -> None:
    svc.debit(call("1007", 120), "sg-d2")
    # the second minute: 6 increments of 10 s at 0.20/min, 0.03333 each
    assert shared_value(svc, "1001") == Decimal("3.60002")
    r = svc.refund("sg-r2", TEN, "1007", debit_request_id="sg-d2", keep_usage_ns=60 * SECOND)
    assert r.refunded == Decimal("0.19998")
    assert shared_value(svc, "1001") == Decimal("3.8")
    assert svc.refund("sg-r2", TEN, "1007", debit_request_id="sg-d2",
                      keep_usage_ns=60 * SECOND).replayed
    assert shared_value(svc, "1001") == Decimal("3.8")
    assert_verified(svc, "1001", "1007")


def test_1001_uses_its_own_money_before_the_shared_balance(svc: AccountService) -> None:
    # 1001's own balance weighs 20, its shared one 10: the own pays first
    svc.debit(call("1001", 60, dest="1005"), "sg-d3")  # no voice balance for 1005
    vals = {bool(b.shared_groups): b.value for b in svc.get_account(TEN, "1001").balances
            if b.type == MONETARY}
    assert vals[True] == Decimal(5) and vals[False] < Decimal(5)
    assert_verified(svc, "1001")


@pytest.mark.parametrize(("strategy", "payer"), [
    ("*lowest", "C"), ("*highest", "B"), ("*mine_lowest", "A"), ("*mine_highest", "A"),
    ("*mine_random", "A"),
])
def test_strategy_picks_the_member_whose_balance_pays(sqlite_url: str, strategy: str,
                                                      payer: str) -> None:
    s = make(sqlite_url, rows_with(strategy), "live")
    try:
        start = {"A": Decimal(2), "B": Decimal(10), "C": Decimal("1.5")}
        for acc, v in start.items():
            s.set_balance(TEN, acc, MONETARY, v, balance_id="pool", shared_groups=["SHARED_A"])
        out = s.debit(call("A", 60), f"sg-{strategy}")
        assert out.cost == Decimal("1.2")
        after = {a: shared_value(s, a) for a in start}
        assert after == {a: v - (Decimal("1.2") if a == payer else 0) for a, v in start.items()}
        assert_verified(s, *start)
    finally:
        close(s)


def test_random_strategy_debits_exactly_once_from_some_member(sqlite_url: str) -> None:
    s = make(sqlite_url, rows_with("*random"), "live")
    try:
        for acc in ("A", "B", "C"):
            s.set_balance(TEN, acc, MONETARY, Decimal(10), balance_id="pool",
                          shared_groups=["SHARED_A"])
        for i in range(6):
            s.debit(call("A", 60), f"sg-rnd-{i}")
        assert sum(shared_value(s, a) for a in "ABC") == Decimal(30) - 6 * Decimal("1.2")
        assert_verified(s, "A", "B", "C")
    finally:
        close(s)


def test_a_balance_of_an_unknown_group_pays_nothing_and_set_balance_refuses_one(
        sqlite_url: str) -> None:
    s = make(sqlite_url, OLD, "live")
    try:
        with pytest.raises(AccountError, match="NOT_FOUND"):
            s.set_balance(TEN, "X", MONETARY, Decimal(3), balance_id="p", shared_groups=["NOPE"])
        assert s.verify(TEN, "1001") == {}
    finally:
        close(s)


def test_concurrent_debits_of_two_members_owned_by_two_stores(pg_url: str) -> None:
    """Two RALs stores on one Postgres, each owning one member (as two replicas would):
    40 one-minute calls at once (0.80 connect fee + 0.40), half from each member, against one
    shared balance of 10, debt refused. Whatever the order: 8 calls leave 0.40; the 9th pays
    its fee from its caller's *default (a fee always goes there when no balance covers it) and
    the minute from the last 0.40; every later one is refused with nothing changed. So exactly
    9 pass, the shared balance ends at exactly 0, never below, and both journals prove it."""
    rows = rows_with("*highest")
    owners = {"A": "one", "B": "two"}
    engine = make_engine(pg_url)
    Base.metadata.create_all(engine)
    stores = {n: LiveStore(engine, owns=lambda _t, a, n=n: owners.get(a) == n) for n in ("one", "two")}
    svcs = {n: AccountService(engine, rows, tpid="old", store=st) for n, st in stores.items()}
    try:
        svcs["one"].set_balance(TEN, "A", MONETARY, Decimal(0), balance_id="pool",
                                shared_groups=["SHARED_A"])
        svcs["two"].set_balance(TEN, "B", MONETARY, Decimal(10), balance_id="pool",
                                shared_groups=["SHARED_A"])
        ok: list[Decimal] = []
        refused: list[str] = []
        lock = threading.Lock()

        def one_call(acc: str, i: int) -> None:
            s = svcs[owners[acc]]
            try:
                out = s.debit(call(acc, 60, deny_negative_account=True), f"cc-{acc}-{i}")
            except AccountError as exc:
                with lock:
                    refused.append(exc.word)
                return
            with lock:
                ok.append(out.cost)

        threads = [threading.Thread(target=one_call, args=(acc, i))
                   for i in range(20) for acc in ("A", "B")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(ok) == 9 and sum(ok) == Decimal("10.8")
        assert len(refused) == 31 and set(refused) == {"INSUFFICIENT_CREDIT"}
        assert [shared_value(svcs["one"], a) for a in ("A", "B")] == [0, 0]
        debt = [b.value for a in ("A", "B") for b in svcs["two"].get_account(TEN, a).balances
                if b.id == "*default"]
        assert debt == [Decimal("-0.8")]
        assert_verified(svcs["one"], "A", "B")
    finally:
        for st in stores.values():
            st.close()
        engine.dispose()


def test_prepaid_session_max_debit_then_refund_by_debit_ids(svc: AccountService) -> None:
    """What SM does for a *prepaid call of 1007: MaxDebit pieces paid from 1001's shared balance,
    then the surplus refunded by the pieces' request ids at terminate, back to 1001."""
    # first piece: 0.80 + 0.40 (first minute), second piece: 60 s at 0.20/min = 0.19998
    svc.debit(call("1007", 60), "sess:0", max_debit=True)
    second = replace(call("1007", 60), loop_index=1, duration_index_ns=120 * SECOND)
    svc.debit(second, "sess:1", max_debit=True)
    assert shared_value(svc, "1001") == Decimal("3.60002")
    # the call lasted 70 s: keep 70 s (the increment spanning it included), refund the rest
    r = svc.refund_debits("sess:refund", ["sess:0", "sess:1"], keep_usage_ns=70 * SECOND)
    assert r.refunded == Decimal("0.16665")  # 5 of the 6 increments of 10 s
    assert shared_value(svc, "1001") == Decimal("3.76667")
    assert svc.refund_debits("sess:refund", ["sess:0", "sess:1"],
                             keep_usage_ns=70 * SECOND).replayed
    assert shared_value(svc, "1001") == Decimal("3.76667")
    assert_verified(svc, "1001", "1007")


def test_max_debit_is_shortened_to_what_the_group_can_pay(svc: AccountService) -> None:
    # 5 in the group pays 20 minutes (1.20, then 114 increments of 0.03333); ask for an hour
    out = svc.debit(call("1007", 3600), "sess-long", max_debit=True)
    assert out.usage_ns == 1200 * SECOND and out.cost == Decimal("4.99962")
    assert shared_value(svc, "1001") == Decimal("0.00038")
    assert svc.get_max_usage(call("1007", 60)) == 0
    assert_verified(svc, "1001", "1007")


def test_a_row_for_an_account_gives_its_own_strategy(sqlite_url: str) -> None:
    """SharedGroups.csv rows name an account's parameters (v0.10 AccountParameters): A debits
    its own share first (*mine_lowest), anyone else takes the largest (*any *highest)."""
    rows = rows_with("*highest")
    rows["SharedGroups"].append({"Id": "SHARED_A", "Account": "cgrates.org:A",
                                 "Strategy": "*mine_lowest", "RatingSubject": ""})
    s = make(sqlite_url, rows, "live")
    try:
        for acc, v in (("A", 5), ("B", 10), ("C", 3)):
            s.set_balance(TEN, acc, MONETARY, Decimal(v), balance_id="pool",
                          shared_groups=["SHARED_A"])
        s.debit(call("A", 60), "own-a")
        s.debit(call("C", 60), "own-c")
        assert [shared_value(s, a) for a in "ABC"] == [Decimal("3.8"), Decimal("8.8"), Decimal(3)]
        assert s.get_shared_group("SHARED_A") == {
            "Id": "SHARED_A",
            "AccountParameters": {"*any": {"Strategy": "*highest", "RatingSubject": ""},
                                  "cgrates.org:A": {"Strategy": "*mine_lowest", "RatingSubject": ""}},
            "MemberIds": {"cgrates.org:A": True, "cgrates.org:B": True, "cgrates.org:C": True},
        }
        assert_verified(s, "A", "B", "C")
    finally:
        close(s)


def test_order_by_strategy_unknown_word_is_mine_random() -> None:
    mine, other = Balance(type=MONETARY, value=Decimal(1)), Balance(type=MONETARY, value=Decimal(9))
    for _ in range(5):
        assert order_by_strategy("*bogus", mine, [other, mine])[0] is mine
    assert order_by_strategy("*lowest", other, [other, mine]) == [mine, other]
    assert order_by_strategy("*mine_highest", mine, [other, mine]) == [mine, other]


def test_the_same_request_on_two_stores_at_once_debits_once(pg_url: str) -> None:
    """A hung owner's request is served by another replica while the owner may still finish it
    (docs/rals-accounts.md): the same shared-group debit (same request id) run by two stores at
    the same moment is applied once, and both answer the same result."""
    rows = rows_with("*highest")
    engine = make_engine(pg_url)
    Base.metadata.create_all(engine)
    stores = [LiveStore(engine), LiveStore(engine, owns=lambda _t, _a: False)]
    svcs = [AccountService(engine, rows, tpid="old", store=st) for st in stores]
    try:
        svcs[0].set_balance(TEN, "A", MONETARY, Decimal(0), balance_id="pool",
                            shared_groups=["SHARED_A"])
        svcs[0].set_balance(TEN, "B", MONETARY, Decimal(100), balance_id="pool",
                            shared_groups=["SHARED_A"])
        results: dict[str, list[Decimal]] = {}
        lock = threading.Lock()

        def run(svc: AccountService, rid: str) -> None:
            out = svc.debit(call("A", 60), rid)
            with lock:
                results.setdefault(rid, []).append(out.cost)

        threads = [threading.Thread(target=run, args=(svc, f"twice-{i}"))
                   for i in range(10) for svc in svcs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(costs == [Decimal("1.2")] * 2 for costs in results.values()) and len(results) == 10
        assert shared_value(svcs[0], "B") == Decimal(100) - 10 * Decimal("1.2")
        assert_verified(svcs[0], "A", "B")
    finally:
        for st in stores:
            st.close()
        engine.dispose()
