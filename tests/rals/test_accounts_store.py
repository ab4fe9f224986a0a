"""AccountStore on SQLite and Postgres: journal, idempotency, row locking."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from services.rals.accounts.model import MONETARY, Account, AccountError, Balance
from services.rals.accounts.store import AccountStore


def _engine(url: str) -> Engine:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    return engine


@pytest.fixture
def store(db_url: str) -> AccountStore:
    return AccountStore(_engine(db_url))


def _money(acc: Account, balance_id: str = "test") -> Balance:
    for b in acc.balances:
        if b.id == balance_id:
            return b
    b = Balance(type=MONETARY, id=balance_id, weight=Decimal(10))
    acc.balances.append(b)
    return b


def _add(amount: str, balance_id: str = "test"):  # noqa: ANN202
    def change(acc: Account) -> dict:
        b = _money(acc, balance_id)
        b.value += Decimal(amount)
        return {"value": b.value}

    return change


def test_set_topup_debit_and_journal(store: AccountStore) -> None:
    store.apply("cgrates.org", "1001", _add("10"), request_id="r1", reason="set", create=True)
    store.apply("cgrates.org", "1001", _add("2.5"), request_id="r2", reason="*topup")
    out = store.apply("cgrates.org", "1001", _add("-0.64175"), request_id="r3", reason="debit")
    assert out.result == {"value": Decimal("11.85825")}
    acc = store.get_account("cgrates.org", "1001")
    assert [b.value for b in acc.balances] == [Decimal("11.85825")]
    journal = store.journal("cgrates.org", "1001")
    assert [j["delta"] for j in journal] == [Decimal(10), Decimal("2.5"), Decimal("-0.64175")]
    assert journal[-1]["value_after"] == Decimal("11.85825")
    assert [j["reason"] for j in journal] == ["set", "*topup", "debit"]
    assert sum(j["delta"] for j in journal) == acc.balances[0].value
    assert store.verify("cgrates.org", "1001") == {}


def test_same_request_id_twice_changes_once(store: AccountStore) -> None:
    store.apply("cgrates.org", "1001", _add("10"), request_id="init", reason="set", create=True)
    first = store.apply("cgrates.org", "1001", _add("-1.5"), request_id="k", reason="debit")
    for _ in range(5):
        again = store.apply("cgrates.org", "1001", _add("-1.5"), request_id="k", reason="debit")
        assert again.replayed and again.result == first.result
    assert store.get_account("cgrates.org", "1001").balances[0].value == Decimal("8.5")
    assert len(store.journal("cgrates.org", "1001")) == 2


def test_failed_change_changes_nothing(store: AccountStore) -> None:
    store.apply("cgrates.org", "1001", _add("10"), request_id="init", reason="set", create=True)

    def boom(acc: Account) -> dict:
        acc.balances[0].value = Decimal(0)
        raise AccountError("INSUFFICIENT_CREDIT", "test")

    with pytest.raises(AccountError, match="INSUFFICIENT_CREDIT"):
        store.apply("cgrates.org", "1001", boom, request_id="x", reason="debit")
    assert store.get_account("cgrates.org", "1001").balances[0].value == Decimal(10)
    assert store.request_result("x") is None
    # the key was not consumed: a corrected retry works
    store.apply("cgrates.org", "1001", _add("-1"), request_id="x", reason="debit")
    assert store.get_account("cgrates.org", "1001").balances[0].value == Decimal(9)


def test_unknown_account_is_not_found(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="NOT_FOUND"):
        store.get_account("cgrates.org", "nobody")
    with pytest.raises(AccountError, match="NOT_FOUND"):
        store.apply("cgrates.org", "nobody", _add("1"), request_id="r", reason="debit")


def test_removed_balance_journals_its_value(store: AccountStore) -> None:
    store.apply("cgrates.org", "1001", _add("3"), request_id="a", reason="set", create=True)

    def remove(acc: Account) -> dict:
        acc.balances.clear()
        return {}

    store.apply("cgrates.org", "1001", remove, request_id="b", reason="*remove_balance")
    journal = store.journal("cgrates.org", "1001")
    assert [j["delta"] for j in journal] == [Decimal(3), Decimal(-3)]
    assert store.get_account("cgrates.org", "1001").balances == []


def test_concurrent_debits_never_lose_an_update(pg_url: str) -> None:
    store = AccountStore(_engine(pg_url))
    store.apply("cgrates.org", "1001", _add("100"), request_id="init", reason="set", create=True)
    n_threads, per_thread = 4, 25

    def worker(t: int) -> None:
        for i in range(per_thread):
            store.apply("cgrates.org", "1001", _add("-0.01"), request_id=f"d-{t}-{i}",
                        reason="debit")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    acc = store.get_account("cgrates.org", "1001")
    assert acc.balances[0].value == Decimal("99.00")
    assert len(store.journal("cgrates.org", "1001")) == 1 + n_threads * per_thread
    assert store.verify("cgrates.org", "1001") == {}
