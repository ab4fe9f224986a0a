"""Debits and refunds served on the event loop (``LiveStore.apply_inline``,
``AccountService.debit_inline``/``refund_debits_inline``): the same contract as the worker-thread
path — a reply means committed, a request id charges once, nothing changes when the inline try
gives way — and the same session EventCost, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from services.rals.accounts.live import LiveStore
from services.rals.accounts.model import AccountError
from services.rals.accounts.service import AccountService
from services.rals.accounts.store import AccountStore
from tests.rals.test_accounts_live import T, _add, _running_balance_ok
from tests.rals.test_session_event_cost import piece


def _warm(live: LiveStore, account: str, amount: str = "100") -> None:
    live.apply(T, account, _add(amount), request_id=f"init:{account}", reason="set", create=True)
    live.peek(T, account)  # in memory: what the inline path serves


async def test_inline_commits_before_answering_and_replays(live: LiveStore, engine: Engine) -> None:
    _warm(live, "a")
    accounts = [f"b{i}" for i in range(20)]
    for a in accounts:
        _warm(live, a)
    batches = live.committer.batches
    outs = await asyncio.gather(*[live.apply_inline(T, a, _add("-1.5"), request_id=f"d:{a}",
                                                    reason="debit") for a in accounts])
    assert all(o is not None and o.result == {"value": Decimal("98.5")} for o in outs)
    assert live.committer.batches - batches < len(accounts)  # grouped, one loop wake-up each
    fresh = AccountStore(engine)  # another process sees every answered debit
    assert all(fresh.get_account(T, a).balances[0].value == Decimal("98.5") for a in accounts)
    again = await live.apply_inline(T, "b0", _add("-1.5"), request_id="d:b0", reason="debit")
    assert again is not None and again.replayed
    assert fresh.get_account(T, "b0").balances[0].value == Decimal("98.5")
    assert live.peek(T, "b0").balances[0].value == Decimal("98.5")
    assert _running_balance_ok(live, "b0") == Decimal("98.5")


async def test_inline_gives_way_without_changing_anything(live: LiveStore, engine: Engine) -> None:
    live.apply(T, "cold", _add("10"), request_id="init", reason="set", create=True)
    live.evict()
    assert await live.apply_inline(T, "cold", _add("-1"), request_id="c1", reason="d") is None
    _warm(live, "busy")
    lock = live._lock((T, "busy"))  # a worker thread is changing the account
    with lock:
        assert await live.apply_inline(T, "busy", _add("-1"), request_id="b1", reason="d") is None
    live.owns = lambda _t, _a: False
    assert await live.apply_inline(T, "busy", _add("-1"), request_id="b2", reason="d") is None
    live.owns = lambda _t, _a: True
    with pytest.raises(AccountError):  # the change's own error: nothing written, lock free
        await live.apply_inline(T, "busy", _add("-1000"), request_id="b3", reason="d")
    fresh = AccountStore(engine)
    assert fresh.get_account(T, "cold").balances[0].value == Decimal(10)
    assert fresh.get_account(T, "busy").balances[0].value == Decimal(100)
    assert all(fresh.request_result(r) is None for r in ("c1", "b1", "b2", "b3"))
    out = await live.apply_inline(T, "busy", _add("-1"), request_id="b4", reason="d")
    assert out is not None and not lock.locked()


async def test_stale_cache_makes_inline_give_way(live: LiveStore, engine: Engine) -> None:
    _warm(live, "s", "10")
    AccountStore(engine).apply(T, "s", _add("-4"), request_id="other", reason="debit")
    # the fence refuses the cached version: nothing committed, the thread path decides
    assert await live.apply_inline(T, "s", _add("-1"), request_id="s1", reason="debit") is None
    out = await asyncio.to_thread(live.apply, T, "s", _add("-1"), request_id="s1", reason="debit")
    assert out.result == {"value": Decimal(5)}
    assert _running_balance_ok(live, "s") == Decimal(5)


async def test_cancelled_caller_still_leaves_the_account_consistent(live: LiveStore,
                                                                     engine: Engine) -> None:
    """gRPC cancels a handler whose client went away: the change it queued still commits (or
    not) as a whole, the account's lock is released and the cache follows the StorDB."""
    _warm(live, "x", "10")
    task = asyncio.create_task(live.apply_inline(T, "x", _add("-2"), request_id="x1",
                                                 reason="debit"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(500):  # released when its batch ended
        if not live._lock((T, "x")).locked():
            break
        await asyncio.sleep(0.01)
    stored = AccountStore(engine).get_account(T, "x").balances[0].value
    assert live.peek(T, "x").balances[0].value == stored == Decimal(8)
    again = await live.apply_inline(T, "x", _add("-2"), request_id="x1", reason="debit")
    assert again is not None and again.replayed  # a retry of the cancelled request: once
    assert _running_balance_ok(live, "x") == Decimal(8)


def _without_summary(ec: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(ec)
    out.pop("AccountSummary")
    return out


async def test_inline_session_keeps_the_same_event_cost(live_service: AccountService) -> None:
    """One session run on the worker-thread path, the same run again inline: the same merged,
    trimmed EventCost (only the AccountSummary after it differs: the balance moved twice)."""
    docs, summaries = [], []
    for run, inline in (("t", False), ("i", True)):
        ids = [f"{run}:0", f"{run}:1"]
        live_service.store.peek("cgrates.org", "1001")
        for n, cd in enumerate((piece(0, 70, 0), piece(70, 30, 1))):
            kw = {"max_debit": True, "event_cost": True}
            res = (await live_service.debit_inline(cd, ids[n], **kw)) if inline else live_service.debit(cd, ids[n], **kw)
            assert res is not None and res.event_cost is not None
        flags = {"keep_usage_ns": 85 * 10**9, "round_kept": True, "want_event_cost": True}
        ref = (await live_service.refund_debits_inline(f"{run}:refund", ids, **flags)) if inline else \
            live_service.refund_debits(f"{run}:refund", ids, **flags)
        assert ref is not None and ref.event_cost is not None
        docs.append(ref.event_cost)
        summaries.append(ref.event_cost["AccountSummary"])
        again = live_service.refund_debits(f"{run}:refund", ids, **flags)  # a retry: the same document
        assert again.replayed and again.event_cost == ref.event_cost
    assert _without_summary(docs[0]) == _without_summary(docs[1])
    assert docs[0]["Cost"] == Decimal("0.6418")
    assert live_service.verify("cgrates.org", "1001") == {}


async def test_refund_inline_gives_way_when_a_debit_is_not_in_memory(live_service: AccountService) -> None:
    live_service.debit(piece(0, 70, 0), "m:0", max_debit=True, event_cost=True)
    live_service.store._results.clear()  # e.g. debited by the partition's previous owner
    flags = {"keep_usage_ns": 0, "round_kept": True, "want_event_cost": True}
    assert await live_service.refund_debits_inline("m:refund", ["m:0"], **flags) is None
    ref = live_service.refund_debits("m:refund", ["m:0"], **flags)
    assert ref.refunded > 0 and live_service.verify("cgrates.org", "1001") == {}


async def test_an_inline_change_leaves_no_cycle_for_the_collector(live: LiveStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each change's rows and callback are freed as soon as it is answered, by reference
    counting: a cycle per debit (the commit callback holding its own change) left thousands of
    objects per second to the collector's passes, which stall RALs while they walk them."""
    import gc
    import weakref

    _warm(live, "w")
    seen: list[weakref.ref[Any]] = []
    submit = live.committer.submit

    def spy(p: Any) -> Any:
        seen.append(weakref.ref(p))
        return submit(p)

    monkeypatch.setattr(live.committer, "submit", spy)
    gc.disable()
    try:
        out = await live.apply_inline(T, "w", _add("-1"), request_id="cyc:1", reason="debit")
        assert out is not None and seen
        del out
        await asyncio.sleep(0)
        assert seen[0]() is None  # freed already, with no collector pass
    finally:
        gc.enable()
