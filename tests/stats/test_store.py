"""Stored queues survive a restart of the engine, on Postgres and on SQLite."""

from __future__ import annotations

from datetime import timedelta

from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from services.stats.engine import StatEngine
from services.stats.store import StatQueueStore
from tests.stats.fake_filters import FakeFilters
from tests.stats.test_engine import FILTERS, STATS1, STATS1_PDD, T0, e1, e2, e3


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
