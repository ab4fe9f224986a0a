"""Stored queues survive a restart of the engine, on Postgres and on SQLite."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cgrpy.event import CGREvent
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from services.stats.engine import StatEngine
from services.stats.store import StatQueueStore
from tests.stats.fake_filters import FakeFilters
from tests.stats.test_engine import ANSWER, FILTERS, STATS1, STATS1_PDD, T0, e1, e2, e3


def test_stored_queue_survives_restart(db_url: str) -> None:
    upgrade(db_url)
    db = make_engine(db_url)
    try:
        rows = {"Stats": [dict(STATS1), STATS1_PDD]}
        eng = StatEngine.from_rows(rows, FakeFilters(FILTERS).passes, store=StatQueueStore(db))
        eng.process_event(e1(), now=T0)
        eng.process_event(e2(), now=T0 + timedelta(seconds=1))
        merged = e3()
        merged.id = "event2"  # merged entry must round-trip too
        eng.process_event(merged, now=T0 + timedelta(seconds=2))
        before = eng.get_string_metrics("cgrates.org", "Stats1", now=T0 + timedelta(seconds=2))
        assert before["*tcc"] == "135.1" and before["*asr"] == "66.66667%"

        again = StatEngine.from_rows(rows, FakeFilters(FILTERS).passes, store=StatQueueStore(db))
        assert again.get_string_metrics(
            "cgrates.org", "Stats1", now=T0 + timedelta(seconds=2)) == before
        # expiry times were persisted: e1 leaves at T0+10s
        after = again.get_string_metrics("cgrates.org", "Stats1", now=T0 + timedelta(seconds=10))
        assert (after["*tcc"], after["*tcd"]) == ("12.1", "45s")
        third = StatEngine.from_rows(rows, FakeFilters(FILTERS).passes, store=StatQueueStore(db))
        assert third.get_string_metrics(
            "cgrates.org", "Stats1", now=T0 + timedelta(seconds=10)) == after
    finally:
        db.dispose()


def test_unstored_queue_is_not_saved(db_url: str) -> None:
    upgrade(db_url)
    db = make_engine(db_url)
    try:
        rows = {"Stats": [dict(STATS1, Stored="false", MinItems="0"), STATS1_PDD]}
        eng = StatEngine.from_rows(rows, FakeFilters(FILTERS).passes, store=StatQueueStore(db))
        eng.process_event(e1(), now=T0)
        assert StatQueueStore(db).load_all() == {}
    finally:
        db.dispose()


class _CountingStore(StatQueueStore):
    """The real store, counting its transactions; ``fail`` makes the next ones raise."""

    def __init__(self, engine, fail: int = 0) -> None:
        super().__init__(engine)
        self.transactions = 0
        self.fail = fail

    def save_many(self, queues) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("StorDB down")
        self.transactions += 1
        super().save_many(queues)


def _no_cost(eid: str) -> CGREvent:
    # what SM sends at authorize: no Cost yet, so *tcc/*acc cannot count it
    return CGREvent("cgrates.org", eid, None, {"Account": "1001", "AnswerTime": ANSWER, "Usage": "10s"})


def test_a_batch_saves_each_changed_queue_once(db_url: str) -> None:
    upgrade(db_url)
    db = make_engine(db_url)
    try:
        rows = {"Stats": [dict(STATS1), STATS1_PDD]}
        store = _CountingStore(db)
        eng = StatEngine.from_rows(rows, FakeFilters(FILTERS).passes, store=store)
        dirty: dict = {}
        eng.process_event(e1(), now=T0, defer=dirty)
        eng.process_event(e2(), now=T0 + timedelta(seconds=1), defer=dirty)
        assert store.transactions == 0 and StatQueueStore(db).load_all() == {}
        eng.persist(dirty)
        assert store.transactions == 1
        now = T0 + timedelta(seconds=1)
        again = StatEngine.from_rows(rows, FakeFilters(FILTERS).passes, store=StatQueueStore(db))
        assert again.get_string_metrics("cgrates.org", "Stats1", now=now) == \
            eng.get_string_metrics("cgrates.org", "Stats1", now=now)
        assert again.get_string_metrics("cgrates.org", "Stats1", now=now)["*tcc"] == "135.1"
    finally:
        db.dispose()


def test_an_event_that_changes_no_queue_writes_nothing(db_url: str) -> None:
    upgrade(db_url)
    db = make_engine(db_url)
    try:
        rows = {"Stats": [dict(STATS1), STATS1_PDD]}
        store = _CountingStore(db)
        eng = StatEngine.from_rows(rows, FakeFilters(FILTERS).passes, store=store)
        assert eng.process_event(_no_cost("auth1"), now=T0).partially_executed
        assert store.transactions == 0
        eng.process_event(e1(), now=T0)
        assert store.transactions == 1
        # e1 expires at T0+10s: the same kind of event now changes the queue, so it is saved
        assert eng.process_event(_no_cost("auth2"), now=T0 + timedelta(seconds=11)).partially_executed
        assert store.transactions == 2
        again = StatEngine.from_rows(rows, FakeFilters(FILTERS).passes, store=StatQueueStore(db))
        assert again.get_queue("cgrates.org", "Stats1").items == []
    finally:
        db.dispose()


def test_a_failed_batch_save_is_saved_with_the_next_batch(db_url: str) -> None:
    upgrade(db_url)
    db = make_engine(db_url)
    try:
        rows = {"Stats": [dict(STATS1), STATS1_PDD]}
        store = _CountingStore(db, fail=1)
        eng = StatEngine.from_rows(rows, FakeFilters(FILTERS).passes, store=store)
        dirty: dict = {}
        eng.process_event(e1(), now=T0, defer=dirty)
        with pytest.raises(OSError):
            eng.persist(dirty)
        assert StatQueueStore(db).load_all() == {}
        eng.persist({})  # the next batch (here: one that changed nothing) saves what was left
        assert store.transactions == 1
        again = StatEngine.from_rows(rows, FakeFilters(FILTERS).passes, store=StatQueueStore(db))
        assert [i.event_id for i in again.get_queue("cgrates.org", "Stats1", now=T0).items] == ["event1"]
    finally:
        db.dispose()
