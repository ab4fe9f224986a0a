"""CdrSender (services/sm/cdrsend.py) on its own: CDRs put close together share one send, a batch
is bounded, only the CDRs the send did not store reach the spool (a real SQLite spool), a failed
spool commit fails the put, and close() finishes what is queued. The send here is a callable
standing for cdre's ProcessCDRs; the end-to-end cases are in test_cdr_direct.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from cgrpy.event import CGREvent
from services.sm.cdrsend import DIRECT, SPOOLED, CdrSender
from services.sm.spool import CdrSpool


def _cdr(i: int) -> CGREvent:
    return CGREvent("cgrates.org", f"cdr-{i}", datetime(2026, 1, 1, tzinfo=UTC), {"OriginID": f"call-{i}"})


class Cdre:
    def __init__(self, *, refuse: set[str] = frozenset(), delay_s: float = 0.0, down: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.timeouts: list[float] = []
        self.refuse, self.delay_s, self.down = refuse, delay_s, down

    async def send(self, items: list[tuple[CGREvent, dict[str, bool]]], timeout_s: float,
                   ) -> Sequence[BaseException | None]:
        self.batches.append([ev.event["OriginID"] for ev, _ in items])
        self.timeouts.append(timeout_s)
        await asyncio.sleep(self.delay_s)
        if self.down:
            raise ConnectionError("cdre down")
        return [ValueError("INVALID_ARGUMENT") if ev.event["OriginID"] in self.refuse else None
                for ev, _ in items]


@pytest.fixture
async def spool(tmp_path):
    sp = CdrSpool(tmp_path / "spool.sqlite")
    yield sp
    await sp.close()


async def test_cdrs_put_together_travel_in_one_send_and_touch_no_spool(spool) -> None:
    cdre = Cdre()
    s = CdrSender(cdre.send, spool, timeout_s=0.5, batch_size=4)
    paths = await asyncio.gather(*(s.put(_cdr(i), {"rals": True}) for i in range(10)))
    assert paths == [DIRECT] * 10
    assert [len(b) for b in cdre.batches] == [4, 4, 2]  # bounded batches
    assert cdre.timeouts == [0.5] * 3
    assert s.counts == {DIRECT: 10, SPOOLED: 0} and spool.depth() == 0 and spool.commits == 0


async def test_only_what_cdre_did_not_store_is_spooled(spool) -> None:
    cdre = Cdre(refuse={"call-1"})
    s = CdrSender(cdre.send, spool, timeout_s=0.5)
    paths = await asyncio.gather(*(s.put(_cdr(i), {}) for i in range(3)))
    assert paths == [DIRECT, SPOOLED, DIRECT]
    assert spool.depth() == 1 and s.counts == {DIRECT: 2, SPOOLED: 1}


async def test_down_or_slow_cdre_spools_the_batch(spool) -> None:
    for cdre in (Cdre(down=True), Cdre(delay_s=5.0)):
        s = CdrSender(cdre.send, spool, timeout_s=0.1)
        t0 = asyncio.get_running_loop().time()
        assert await asyncio.gather(s.put(_cdr(1), {}), s.put(_cdr(2), {})) == [SPOOLED, SPOOLED]
        assert asyncio.get_running_loop().time() - t0 < 1.0
    assert spool.depth() == 4


async def test_a_failed_spool_commit_fails_the_put() -> None:
    s = CdrSender(Cdre(down=True).send, _Refusing(), timeout_s=0.1)
    with pytest.raises(OSError):
        await s.put(_cdr(1), {})
    assert s.counts == {DIRECT: 0, SPOOLED: 0}


class _Refusing:
    async def aput(self, event: CGREvent, flags: dict[str, bool]) -> int:
        raise OSError("disk full")


async def test_close_finishes_what_is_queued(spool) -> None:
    cdre = Cdre()
    s = CdrSender(cdre.send, spool, timeout_s=0.5, window_s=10.0)
    put = asyncio.ensure_future(s.put(_cdr(1), {}))
    await asyncio.sleep(0.01)
    assert cdre.batches == []  # still gathering
    await s.close()
    assert await put == DIRECT and cdre.batches == [["call-1"]]


async def test_by_default_a_batch_waits_only_for_the_loop_turn(spool) -> None:
    """The runs of one call are put in the same turn and share a send; a CDR put a turn later
    does not wait for more company (every OpenSIPS worker waits for its ProcessCDR answer)."""
    cdre = Cdre()
    s = CdrSender(cdre.send, spool, timeout_s=0.5)

    async def later() -> str:
        await asyncio.sleep(0.01)
        return await s.put(_cdr(9), {})

    paths = await asyncio.gather(s.put(_cdr(0), {}), s.put(_cdr(1), {}), later())
    assert paths == [DIRECT] * 3
    assert cdre.batches == [["call-0", "call-1"], ["call-9"]]


async def test_a_window_groups_cdrs_put_within_it(spool) -> None:
    cdre = Cdre()
    s = CdrSender(cdre.send, spool, timeout_s=0.5, window_s=0.2)

    async def later() -> str:
        await asyncio.sleep(0.01)
        return await s.put(_cdr(9), {})

    await asyncio.gather(s.put(_cdr(0), {}), later())
    assert cdre.batches == [["call-0", "call-9"]]
