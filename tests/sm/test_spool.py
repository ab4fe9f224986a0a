"""The CDR spool keeps every accepted CDR until cdre has it, across failures and restarts;
writes are group-committed and delivery goes in batches."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from cgrpy.event import CGREvent
from services.sm.spool import CdrSpool


def _ev(i: int) -> CGREvent:
    return CGREvent("cgrates.org", f"e{i}", None, {"OriginID": f"call-{i}", "Cost": Decimal("0.6"), "Usage": 2_000_000_000})


async def _drain(spool: CdrSpool, tries: int = 200) -> None:
    for _ in range(tries):
        if spool.depth() == 0:
            return
        await asyncio.sleep(0.02)


async def test_spool_survives_failures_and_restart(tmp_path):
    path = tmp_path / "spool.sqlite"
    spool = CdrSpool(path)
    for i in range(3):
        spool.put(_ev(i), {"rals": True})
    await spool.close()  # "crash" before anything was delivered

    delivered: list[tuple[str, Decimal, dict]] = []
    failures = {"left": 2}

    async def deliver(items):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("cdre down")
        delivered.extend((ev.get("OriginID"), ev.get("Cost"), flags) for ev, flags in items)
        return [None] * len(items)

    spool = CdrSpool(path)
    assert spool.depth() == 3
    spool.start(deliver, max_backoff_s=0.05)
    await _drain(spool)
    assert spool.depth() == 0
    # in order, each once, exact money kept
    assert delivered == [(f"call-{i}", Decimal("0.6"), {"rals": True}) for i in range(3)]
    await spool.close()


async def test_concurrent_puts_share_commits_and_are_durable(tmp_path):
    path = tmp_path / "spool.sqlite"
    spool = CdrSpool(path)
    ids = await asyncio.gather(*(spool.aput(_ev(i), {"rals": True}) for i in range(200)))
    assert len(set(ids)) == 200
    # one fsync'd commit per batch, not per CDR
    assert spool.commits < 200
    await spool.close()
    reopened = CdrSpool(path)  # every acknowledged CDR is on disk
    assert reopened.depth() == 200
    await reopened.close()


async def test_delivery_is_batched_and_a_refused_cdr_stays(tmp_path):
    spool = CdrSpool(tmp_path / "spool.sqlite", batch_size=50)
    for i in range(120):
        spool.put(_ev(i), {"rals": True})
    calls: list[int] = []
    stored: list[str] = []
    refuse = {"call-7"}

    async def deliver(items):
        calls.append(len(items))
        out: list[BaseException | None] = []
        for ev, _flags in items:
            oid = ev.get("OriginID")
            if oid in refuse:
                out.append(RuntimeError("SERVER_ERROR: try later"))
            else:
                if oid not in stored:
                    stored.append(oid)
                out.append(None)
        return out

    spool.start(deliver, max_backoff_s=0.01)
    for _ in range(200):
        if spool.depth() == 1:
            break
        await asyncio.sleep(0.02)
    assert spool.depth() == 1  # only the refused one is left, retried
    # batches (the refused CDR rides along again), not one call per CDR
    assert calls[:3] == [50, 50, 22]
    assert len(stored) == 119 and "call-7" not in stored
    refuse.clear()
    await _drain(spool)
    assert spool.depth() == 0 and stored.count("call-7") == 1
    await spool.close()


async def test_a_wrong_answer_keeps_the_whole_batch(tmp_path):
    spool = CdrSpool(tmp_path / "spool.sqlite")
    for i in range(3):
        spool.put(_ev(i), {"rals": True})
    seen = {"n": 0}

    async def deliver(items):
        seen["n"] += 1
        return [None]  # answers one of three: nothing is trusted

    spool.start(deliver, max_backoff_s=0.01)
    for _ in range(50):
        if seen["n"] >= 2:
            break
        await asyncio.sleep(0.02)
    assert seen["n"] >= 2 and spool.depth() == 3
    await spool.close()


async def test_cdrs_arriving_within_the_window_travel_together_and_a_restart_still_delivers(tmp_path):
    """The forwarder, woken by a CDR, waits the window so that CDRs of calls ending together go
    in one delivery; it hands over the CDRs it was given (no decoding), and after a restart the
    ones left in the file are read back whole."""
    path = tmp_path / "spool.sqlite"
    spool = CdrSpool(path, window_s=0.2)
    batches: list[list[str]] = []

    async def deliver(items):
        batches.append([ev.get("OriginID") for ev, _ in items])
        return [None] * len(items)

    spool.start(deliver)
    await spool.aput(_ev(0), {"rals": True})
    await asyncio.sleep(0.05)
    await asyncio.gather(*(spool.aput(_ev(i), {"rals": True}) for i in (1, 2)))
    await _drain(spool)
    assert batches == [["call-0", "call-1", "call-2"]]
    assert spool._kept == {}  # delivered: nothing kept in memory
    await spool.close()

    spool = CdrSpool(path)
    spool.put(_ev(3), {"rals": False})
    await spool.close()
    spool = CdrSpool(path)  # restarted: nothing in memory, read from the file
    got: list[tuple[str, Decimal, dict]] = []

    async def deliver2(items):
        got.extend((ev.get("OriginID"), ev.get("Cost"), fl) for ev, fl in items)
        return [None] * len(items)

    spool.start(deliver2)
    await _drain(spool)
    assert got == [("call-3", Decimal("0.6"), {"rals": False})]
    await spool.close()
