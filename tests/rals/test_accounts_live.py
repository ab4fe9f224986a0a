"""LiveStore on SQLite and Postgres: reads from memory, group commits, and the version fence
that keeps a stale cache (another process, an admin write) from losing or doubling a debit."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import Engine, event

from services.rals.accounts.live import LiveStore
from services.rals.accounts.model import MONETARY, Account, AccountError, Balance
from services.rals.accounts.store import AccountStore

T = "cgrates.org"


def _add(amount: str):  # noqa: ANN202
    def change(acc: Account) -> dict:
        bal = next((b for b in acc.balances if b.id == "main"), None)
        if bal is None:
            bal = Balance(type=MONETARY, id="main", weight=Decimal(10))
            acc.balances.append(bal)
        bal.value += Decimal(amount)
        if bal.value < 0:
            raise AccountError("INSUFFICIENT_CREDIT", acc.id)
        return {"value": bal.value}

    return change


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, stmt, *_a: seen.append(stmt.split()[0].upper()))
    return seen


def _running_balance_ok(store: AccountStore, account: str) -> Decimal:
    running = Decimal(0)
    for j in store.journal(T, account):
        running += j["delta"]
        assert j["value_after"] == running  # journal in id order is the balance's history
    assert store.verify(T, account) == {}
    return running


def test_reads_come_from_memory_and_writes_commit(live: LiveStore, engine: Engine) -> None:
    live.apply(T, "a", _add("10"), request_id="init", reason="set", create=True)
    live.apply(T, "a", _add("-1"), request_id="d0", reason="debit")  # caches the account
    seen = _statements(engine)
    for _ in range(5):
        assert live.peek(T, "a").balances[0].value == Decimal(9)
    assert seen == []  # GetMaxUsage's read touches no database
    out = live.apply(T, "a", _add("-2.5"), request_id="d1", reason="debit")
    assert out.result == {"value": Decimal("6.5")} and not out.replayed
    assert "SELECT" not in seen  # the write path only writes
    # committed before the answer: a fresh store (another process) sees it
    assert AccountStore(engine).get_account(T, "a").balances[0].value == Decimal("6.5")
    again = live.apply(T, "a", _add("-2.5"), request_id="d1", reason="debit")
    assert again.replayed and again.result == out.result
    assert _running_balance_ok(live, "a") == Decimal("6.5")


def test_failed_change_changes_nothing(live: LiveStore) -> None:
    live.apply(T, "a", _add("1"), request_id="init", reason="set", create=True)
    live.apply(T, "a", _add("-0.5"), request_id="d0", reason="debit")
    with pytest.raises(AccountError, match="INSUFFICIENT_CREDIT"):
        live.apply(T, "a", _add("-5"), request_id="d1", reason="debit")
    assert live.peek(T, "a").balances[0].value == Decimal("0.5")
    assert live.request_result("d1") is None
    assert _running_balance_ok(live, "a") == Decimal("0.5")


def test_concurrent_debits_share_transactions(live: LiveStore) -> None:
    accounts = [f"acc{i}" for i in range(8)]
    for a in accounts:
        live.apply(T, a, _add("100"), request_id=f"init:{a}", reason="set", create=True)

    def worker(a: str) -> None:
        for k in range(25):
            live.apply(T, a, _add("-0.01"), request_id=f"{a}:{k}", reason="debit")

    before = (live.committer.batches, live.committer.changes)
    threads = [threading.Thread(target=worker, args=(a,)) for a in accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batches = live.committer.batches - before[0]
    changes = live.committer.changes - before[1]
    assert changes == 8 * 25
    assert batches < changes  # debits arriving together committed together
    for a in accounts:
        assert _running_balance_ok(live, a) == Decimal("99.75")


def test_stale_cache_is_fenced_and_retried(live: LiveStore, engine: Engine) -> None:
    """Another writer changes the account behind the cache: the next group commit fails its
    version fence and the change is re-run on the current row — nothing lost, nothing doubled."""
    live.apply(T, "a", _add("10"), request_id="init", reason="set", create=True)
    live.apply(T, "a", _add("-1"), request_id="d0", reason="debit")
    other = AccountStore(engine)  # e.g. another RALs process on the locked path
    other.apply(T, "a", _add("-2"), request_id="other", reason="debit")
    out = live.apply(T, "a", _add("-3"), request_id="d1", reason="debit")
    assert out.result == {"value": Decimal(4)}
    # a request id the other writer committed is replayed, not charged again
    again = live.apply(T, "a", _add("-2"), request_id="other", reason="debit")
    assert again.replayed and again.result == {"value": Decimal(7)}
    assert live.peek(T, "a").balances[0].value == Decimal(4)
    assert _running_balance_ok(live, "a") == Decimal(4)


def test_two_live_stores_on_one_account_stay_exact(live: LiveStore, engine: Engine) -> None:
    """Two caching processes debiting one account at once (no ownership at all): slower, exact."""
    second = LiveStore(engine)
    try:
        live.apply(T, "a", _add("1000"), request_id="init", reason="set", create=True)

        def worker(store: LiveStore, name: str) -> None:
            for k in range(40):
                store.apply(T, "a", _add("-0.25"), request_id=f"{name}:{k}", reason="debit")
                store.apply(T, "a", _add("-0.25"), request_id=f"{name}:{k}", reason="debit")

        threads = [threading.Thread(target=worker, args=(s, n))
                   for s, n in ((live, "p0"), (second, "p1"), (live, "p2"), (second, "p3"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        second.close()
    assert _running_balance_ok(live, "a") == Decimal(1000) - 160 * Decimal("0.25")
    assert len(live.journal(T, "a")) == 1 + 160


def test_not_owned_accounts_take_the_locked_path(engine: Engine) -> None:
    store = LiveStore(engine, owns=lambda _t, a: a != "theirs")
    try:
        store.apply(T, "theirs", _add("5"), request_id="init", reason="set", create=True)
        store.apply(T, "theirs", _add("-1"), request_id="d0", reason="debit")
        AccountStore(engine).apply(T, "theirs", _add("-1"), request_id="d1", reason="debit")
        assert store.peek(T, "theirs").balances[0].value == Decimal(3)  # never stale
        assert store.committer.changes == 0
        assert store.evict() == 0
    finally:
        store.close()
