"""cdre's StatS/ThresholdS outbox in batch rows: the events of one group-committed transaction
share one row; each receiver gets each event once (a batch it took is not sent to it again, a
batch it failed is sent again whole and its dedup by event id counts it once); rows an earlier
cdre wrote (one event for one receiver) are still delivered after the upgrade. SQLite and
Postgres, real StorDB; the receivers are fakes that dedup by event id as StatS/ThresholdS do."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from cgrpy.event import CGREvent, dumps_exact
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade_engine
from cgrpy.storage.models.cdrs import CdrOutboxRow
from cgrpy.units import to_unix_nano
from services.cdre.backends import BackendError
from services.cdre.outbox import OutboxDeliverer
from services.cdre.pipeline import PipelineConfig, ProcessFlags, process_cdr
from services.cdre.store import CdrStore
from tests.cdre.fakes import FakeBackends

NO_WAIT = PipelineConfig(session_cost_retries=0)
N = 5


@pytest.fixture
def migrated(db_url: str) -> Iterator[CdrStore]:
    """A StorDB built by the migrations (what an upgraded operator's database is)."""
    engine = make_engine(db_url)
    upgrade_engine(engine)
    store = CdrStore(engine)
    yield store
    store.close()
    engine.dispose()


def _event(origin: str) -> CGREvent:
    # *none: stored final in one insert, no debit (the run's whole write is one group-commit op)
    return CGREvent(tenant="cgrates.org", event={
        "Source": "test", "OriginHost": "127.0.0.1", "OriginID": origin, "Account": "1001",
        "Destination": "1002", "RequestType": "*none", "Usage": "60s",
        "AnswerTime": "2014-08-04T13:00:00Z"})


async def _in_one_commit(store: CdrStore, be: FakeBackends, n: int,
                         also: Callable[[object], None] | None = None) -> Future[None] | None:
    """Process ``n`` CDRs whose writes land in one group-committed transaction (with ``also``,
    queued first, if given): the writer is held by a gate write until all of them are queued
    behind it. Returns ``also``'s future."""
    entered, gate = threading.Event(), threading.Event()

    def hold(tx: object) -> None:
        entered.set()
        gate.wait(30)

    store.writer.submit(hold)
    # the gate is taken alone, before anything else is queued: what follows waits behind it
    assert await asyncio.to_thread(entered.wait, 30)
    extra = None if also is None else store.writer.submit(also)
    tasks = [asyncio.create_task(process_cdr(_event(f"c-{i}"), ProcessFlags(), be, store, NO_WAIT))
             for i in range(n)]
    queued = n + (also is not None)
    for _ in range(3000):
        if store.writer._queue.qsize() >= queued:  # noqa: SLF001 - the test holds the writer
            break
        await asyncio.sleep(0.01)
    assert store.writer._queue.qsize() == queued  # noqa: SLF001
    gate.set()
    await asyncio.gather(*tasks)
    return extra


def _owed(store: CdrStore) -> list[tuple[tuple[str, ...], int]]:
    """(receivers, events) of every row free now (a claim with no lease holds nothing)."""
    return [(r.targets, len(r.events)) for r in store.claim_outbox(1000, 0)]


class Counting(FakeBackends):
    """Counts ProcessEvents calls; ``stats_take_then_fail`` StatS calls take the first half of
    the batch and then fail (a batch split by tenant/owner whose second part failed)."""

    def __init__(self) -> None:
        super().__init__(with_raw_run=False)
        self.calls = {"stats": 0, "thresholds": 0}
        self.stats_take_then_fail = 0

    async def stats_process_events(self, events: list[CGREvent]) -> None:
        self.calls["stats"] += 1
        if self.stats_take_then_fail:
            self.stats_take_then_fail -= 1
            await super().stats_process_events(events[: len(events) // 2])
            raise BackendError("SERVER_ERROR", "second part: owner down", transient=True)
        await super().stats_process_events(events)

    async def thresholds_process_events(self, events: list[CGREvent]) -> None:
        self.calls["thresholds"] += 1
        await super().thresholds_process_events(events)


def _ids(events: list[CGREvent]) -> list[str]:
    return sorted(e.id for e in events)


async def test_a_batch_row_is_delivered_once(migrated: CdrStore):
    be = Counting()
    await _in_one_commit(migrated, be, N)
    assert migrated.count_cdrs() == N
    assert _owed(migrated) == [(("thresholds", "stats"), N)]  # one row, not 2 x N
    out = OutboxDeliverer(migrated, be)
    assert await out.deliver_once() == 1
    assert await out.deliver_once() == 0 and migrated.outbox_depth() == 0
    assert be.calls == {"stats": 1, "thresholds": 1} and out.delivered == 2 * N
    want = sorted(f"{c.cgrid}:*default" for c in migrated.get_cdrs())
    assert _ids(be.stats_events) == want and _ids(be.threshold_events) == want


async def test_a_failed_batch_is_retried_and_counted_once(migrated: CdrStore):
    be = Counting()
    be.stats_take_then_fail = 1
    await _in_one_commit(migrated, be, N)
    out = OutboxDeliverer(migrated, be, max_backoff_s=0)  # retry at once
    assert await out.deliver_once() == 1
    # ThresholdS took the batch: the row is kept for StatS only, which took part of it
    assert _owed(migrated) == [(("stats",), N)]
    assert len(be.stats_events) == N // 2 and len(be.threshold_events) == N
    assert await out.deliver_once() == 1
    assert migrated.outbox_depth() == 0
    # the whole batch went to StatS again, ThresholdS was not asked again
    assert be.calls == {"stats": 2, "thresholds": 1}
    assert len(be.stats_events) == N and len(set(_ids(be.stats_events))) == N
    assert len(be.threshold_events) == N


async def test_a_failed_group_commit_keeps_each_event_once(migrated: CdrStore):
    """A batch that fails (one bad write) is rolled back and its writes run one by one: the
    events of the good writes are written once each (their deferred rows went with the
    rollback), the bad write's not at all."""
    be = Counting()

    def bad(tx: object) -> None:
        raise ValueError("a bad write")

    bad_write = await _in_one_commit(migrated, be, 3, also=bad)
    assert bad_write is not None
    with pytest.raises(ValueError):
        bad_write.result(5)
    assert migrated.count_cdrs() == 3
    assert sorted(n for _t, n in _owed(migrated)) == [1, 1, 1]
    out = OutboxDeliverer(migrated, be)
    while await out.deliver_once():
        pass
    assert len(be.stats_events) == 3 == len(set(_ids(be.stats_events)))


def _old_row(target: str, ev: CGREvent) -> dict[str, object]:
    """An outbox row as the cdre before batch rows wrote it: one event, one receiver."""
    body = dumps_exact({"Tenant": ev.tenant, "ID": ev.id, "Time": to_unix_nano(ev.time),
                        "Event": ev.event})
    return {"target": target, "event_id": ev.id, "event": body, "lease_until_ns": 0,
            "attempts": 0}


async def test_rows_of_the_previous_version_are_delivered(migrated: CdrStore):
    """Rows in flight when cdre was upgraded (per event and receiver) and new batch rows are
    delivered alike, each event once per receiver."""
    old = [CGREvent(tenant="cgrates.org", id=f"old-{i}:*default",
                    time=datetime(2026, 12, 1, 12, 0, i, tzinfo=UTC), event={"Account": "1001", "Usage": 60_000_000_000, "Cost": "0.6"})
           for i in range(2)]
    with migrated.engine.begin() as conn:
        conn.execute(insert(CdrOutboxRow.__table__),
                     [_old_row(t, ev) for ev in old for t in ("thresholds", "stats")])
    be = Counting()
    await _in_one_commit(migrated, be, 2)
    assert sorted(_owed(migrated)) == [(("stats",), 1)] * 2 + [(("thresholds",), 1)] * 2 + [
        (("thresholds", "stats"), 2)]
    out = OutboxDeliverer(migrated, be)
    while await out.deliver_once():
        pass
    assert migrated.outbox_depth() == 0 and out.delivered == 8
    want = sorted([e.id for e in old] + [f"{c.cgrid}:*default" for c in migrated.get_cdrs()])
    assert _ids(be.stats_events) == want and _ids(be.threshold_events) == want
    # the old events arrive as they were written
    got = {e.id: e for e in be.stats_events}
    assert got["old-0:*default"].event == old[0].event
    assert got["old-0:*default"].time == old[0].time


async def test_a_batch_held_by_a_dead_replica_is_delivered_by_another(migrated: CdrStore):
    """Replica A claims the batch row and dies before settling it: replica B (its own store and
    writer on the same StorDB) skips the row while A's lease lasts, then delivers it."""
    be = Counting()
    await _in_one_commit(migrated, be, N)
    assert len(migrated.claim_outbox(10, int(0.5e9))) == 1  # A's claim, never settled
    other = CdrStore(make_engine(str(migrated.engine.url.render_as_string(hide_password=False))))
    try:
        out = OutboxDeliverer(other, be)
        assert await out.deliver_once() == 0  # held by A
        await asyncio.sleep(0.6)
        assert await out.deliver_once() == 1 and other.outbox_depth() == 0
        assert len(be.stats_events) == N and len(be.threshold_events) == N
    finally:
        other.close()
        other.engine.dispose()
