"""Restart safety: sessions persisted to SQLite, restored by a new SessionManager, charged once."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from cgrpy.event import CGREvent, loads_exact
from services.sm.sessions.core import SessionManager, SMConfig
from services.sm.sessions.types import SessionFlags
from services.sm.store import SessionStore, default_path, session_from_record, session_record
from tests.sm.fakes import FakeBackends

MS = 1_000_000


def _event(origin: str = "call-1@h", **extra) -> CGREvent:
    fields = {"OriginID": origin, "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
              "Account": "1001", "Destination": "1002", "AnswerTime": "1795677153",
              "DialogID": 515806928, "DialogEntry": 1891}
    fields.update(extra)
    return CGREvent(event=fields)


def _sm(fb: FakeBackends, store: SessionStore) -> SessionManager:
    return SessionManager(fb, SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=0.5), store=store)


async def _crash(sm: SessionManager, store: SessionStore) -> None:
    """What SIGKILL leaves behind: the store as last written, no terminate."""
    await sm.shutdown()
    store.close()


def test_default_path_is_next_to_the_spool() -> None:
    assert default_path("var/sm_cdr_spool.sqlite") == Path("var/sm_sessions.sqlite")


async def test_record_roundtrip_keeps_exact_state(tmp_path: Path) -> None:
    fb = FakeBackends(price=Decimal("0.00167"))
    store = SessionStore(tmp_path / "s.sqlite")
    sm = _sm(fb, store)
    await sm.initiate(_event(), SessionFlags())
    s = sm.get_session(next(iter(sm._active)))
    assert s is not None
    back = session_from_record(session_record(s))
    assert back.cgrid == s.cgrid and back.event.event == s.event.event
    assert back.start_event is not None and back.start_event.get("DialogID") == 515806928
    r0, r1 = s.runs[0], back.runs[0]
    assert (r1.loop_index, r1.charged_ns, r1.duration_index, r1.debit_ids) == \
        (r0.loop_index, r0.charged_ns, r0.duration_index, r0.debit_ids)
    assert r1.cost == Decimal("0.00835") and isinstance(r1.cost, Decimal)  # 5 increments, exact
    assert abs(back.started - s.started) < 0.05
    (loaded,) = store.load()
    assert loaded.runs[0].cost == Decimal("0.00835")
    await sm.shutdown()
    store.close()


async def test_restart_keeps_charging_and_terminate_charges_once(tmp_path: Path) -> None:
    fb = FakeBackends()  # 0.01 per 10 ms increment, balance 100
    path = tmp_path / "s.sqlite"
    store = SessionStore(path)
    sm = _sm(fb, store)
    assert (await sm.initiate(_event(), SessionFlags())).error is None
    await asyncio.sleep(0.07)  # debits at 0 and 50 ms
    await _crash(sm, store)
    charged_before = fb.balances["1001"]
    assert charged_before <= Decimal("99.90")

    store2 = SessionStore(path)
    sm2 = _sm(fb, store2)
    (restored,) = sm2.restore(store2.load())
    assert restored.restored and restored.runs[0].loop_index >= 2
    await asyncio.sleep(0.12)
    assert fb.balances["1001"] == charged_before  # not charged until OpenSIPS confirms it
    assert await sm2.confirm_restored({("call-1@h", "127.0.0.1")}) == []
    await asyncio.sleep(0.02)  # confirmed: the loop catches up on the time SM was away
    assert fb.balances["1001"] < charged_before
    assert await sm2.terminate(_event(Usage="200ms")) is None
    # 200 ms = 20 increments of 0.01, whatever the loops debited before and after the restart
    assert fb.balances["1001"] == Decimal("99.80")
    # the closed session is kept (flag closed) for a ProcessCDR
    assert store2.count(closed=True) == 1 and store2.count(closed=False) == 0
    await sm2.shutdown()
    store2.close()


async def test_debit_applied_before_the_crash_is_not_charged_again(tmp_path: Path) -> None:
    fb = FakeBackends()
    path = tmp_path / "s.sqlite"
    store = SessionStore(path)
    sm = SessionManager(fb, SMConfig(debit_interval_ns=1000 * MS, reply_deadline_s=0.5), store=store)
    await sm.initiate(_event(), SessionFlags())
    (s,) = sm.active_sessions()
    run = s.runs[0]
    # RALs applied loop debit #1, then SM died before writing it down
    await fb.rals_debit(run.event, 1000 * MS, f"{s.cgrid}:{run.run_id}:1", offset_ns=run.duration_index,
                        loop_index=1)
    await _crash(sm, store)
    assert fb.balances["1001"] == Decimal(98)  # two seconds paid

    store2 = SessionStore(path)
    sm2 = SessionManager(fb, SMConfig(debit_interval_ns=1000 * MS, reply_deadline_s=0.5), store=store2)
    (r,) = sm2.restore(store2.load())
    assert r.runs[0].loop_index == 1  # the store knew only of debit #0
    await sm2.confirm_restored({("call-1@h", "127.0.0.1")})
    await asyncio.sleep(1.1)  # the resumed loop repeats request :1 -> RALs's journal answer
    assert fb.balances["1001"] == Decimal(98)
    assert [rid for rid, _ in fb.debit_calls].count(f"{s.cgrid}:*default:1") == 1
    assert await sm2.terminate(_event(Usage="1500ms")) is None
    assert fb.balances["1001"] == Decimal("98.50")
    await sm2.shutdown()
    store2.close()


async def test_restored_session_opensips_forgot_is_closed_with_cdrs(tmp_path: Path) -> None:
    fb = FakeBackends()
    path = tmp_path / "s.sqlite"
    store = SessionStore(path)
    sm = _sm(fb, store)
    await sm.initiate(_event("gone@h"), SessionFlags())
    await sm.initiate(_event("alive@h"), SessionFlags())
    await _crash(sm, store)

    store2 = SessionStore(path)
    sm2 = _sm(fb, store2)
    assert len(sm2.restore(store2.load())) == 2
    ended = await sm2.confirm_restored({("alive@h", "127.0.0.1")})
    assert len(ended) == 1
    assert [s.origin_id for s in sm2.active_sessions()] == ["alive@h"]
    (cdr, flags), = fb.cdrs
    assert cdr.get("OriginID") == "gone@h" and cdr.get("CostSource") == "*sessions"
    assert cdr.get("Usage") == 50 * MS and cdr.get("Cost") == Decimal("0.05")  # the paid interval
    assert flags == {"chargers": False, "attributes": False, "rals": False}
    assert sm2.metrics.get("disconnects", "RESTART_SYNC") == 1
    await sm2.shutdown()
    store2.close()


async def test_process_cdr_after_restart_uses_the_persisted_closed_session(tmp_path: Path) -> None:
    fb = FakeBackends()
    path = tmp_path / "s.sqlite"
    store = SessionStore(path)
    sm = _sm(fb, store)
    await sm.initiate(_event(), SessionFlags())
    assert await sm.terminate(_event(Usage="30ms")) is None
    await _crash(sm, store)

    store2 = SessionStore(path)
    sm2 = _sm(fb, store2)
    assert sm2.restore(store2.load()) == []
    assert await sm2.process_cdr(_event(Usage="30ms")) is None
    (cdr, flags), = fb.cdrs
    assert cdr.get("Cost") == Decimal("0.03") and cdr.get("CostSource") == "*sessions"
    assert flags["chargers"] is False and flags["rals"] is False  # not rated (charged) again
    assert fb.balances["1001"] == Decimal("99.97")
    await sm2.shutdown()
    store2.close()


async def test_channel_survives_a_restart(tmp_path: Path) -> None:
    """A restored session is still disconnected on the channel it came from."""
    fb = FakeBackends()
    store = SessionStore(tmp_path / "s.sqlite")
    sm = _sm(fb, store)
    await sm.initiate(_event("ev@h"), SessionFlags(), channel="events")
    await sm.initiate(_event("mod@h"), SessionFlags(), channel="cgrates")
    await _crash(sm, store)
    store2 = SessionStore(tmp_path / "s.sqlite")
    assert {s.origin_id: s.channel for s in store2.load()} == {"ev@h": "events", "mod@h": "cgrates"}
    store2.close()


class _CountingStore(SessionStore):
    """The real store, counting what kind of record each write was."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[str] = []

    def save(self, s) -> None:  # type: ignore[no-untyped-def]
        self.writes.append("snapshot")
        super().save(s)

    def save_closed(self, s) -> None:  # type: ignore[no-untyped-def]
        self.writes.append("snapshot-closed")
        super().save_closed(s)

    def save_progress(self, s, *, closed: bool = False) -> bool:  # type: ignore[no-untyped-def]
        self.writes.append("progress-closed" if closed else "progress")
        return super().save_progress(s, closed=closed)


async def test_one_snapshot_per_call_then_small_progress_records(tmp_path: Path) -> None:
    fb = FakeBackends()
    store = _CountingStore(tmp_path / "s.sqlite")
    sm = _sm(fb, store)  # debit every 50 ms
    await sm.initiate(_event(), SessionFlags())
    await asyncio.sleep(0.12)  # two loop debits
    assert await sm.terminate(_event(Usage="120ms", DisconnectCause="16")) is None
    assert store.writes[0] == "snapshot" and store.writes.count("snapshot") == 1
    assert store.writes[-1] == "progress-closed"
    assert set(store.writes[1:-1]) == {"progress"} and len(store.writes) >= 4
    (snap, progress), = store._db.execute("SELECT data, progress FROM sm_sessions").fetchall()
    assert len(progress) < len(snap) / 2  # the events are not written again
    (loaded,) = store.load()
    (live,) = sm._closed.values()
    r0, r1 = live.runs[0], loaded.runs[0]
    assert (r1.loop_index, r1.charged_ns, r1.cost, r1.debit_ids, r1.total_usage_ns) == \
        (r0.loop_index, r0.charged_ns, r0.cost, r0.debit_ids, r0.total_usage_ns)
    assert r1.event.get("Usage") == 120 * MS and r1.event.get("DisconnectCause") == "16"
    assert r1.event.get("Cost") == Decimal("0.12") and loaded.done.is_set()
    await sm.shutdown()
    store.close()


async def test_update_that_changes_the_event_writes_a_new_snapshot(tmp_path: Path) -> None:
    fb = FakeBackends()
    store = _CountingStore(tmp_path / "s.sqlite")
    sm = SessionManager(fb, SMConfig(debit_interval_ns=0, reply_deadline_s=0.5), store=store)
    await sm.initiate(_event(Usage="1s"), SessionFlags())
    await sm.update(_event(Usage="1s", LastUsed="1s"), SessionFlags())  # LastUsed is new
    await sm.update(_event(Usage="1s", LastUsed="1s"), SessionFlags())  # nothing new: progress
    await sm.update(_event(Usage="1s", LastUsed="1s", Extra="x"), SessionFlags())
    assert store.writes == ["snapshot", "snapshot", "progress", "snapshot"]
    (loaded,) = store.load()
    assert loaded.event.get("Extra") == "x"
    await sm.shutdown()
    store.close()


def test_a_store_written_before_progress_records_still_loads(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE sm_sessions (cgrid TEXT PRIMARY KEY, closed INTEGER NOT NULL, "
               "updated INTEGER NOT NULL, data TEXT NOT NULL)")
    fb_session = session_from_record(_old_record())
    from cgrpy.event import dumps_exact
    db.execute("INSERT INTO sm_sessions VALUES (?, 0, 1, ?)",
               (fb_session.cgrid, dumps_exact(session_record(fb_session))))
    db.commit()
    db.close()
    store = SessionStore(path)
    (s,) = store.load()
    assert s.cgrid == "c1" and s.runs[0].cost == Decimal("0.05")
    assert store.save_progress(s) is True
    store.close()


def _old_record() -> dict:
    ev = {"tenant": "cgrates.org", "id": "x", "time": None, "event": {"OriginID": "o", "OriginHost": "h"}}
    return {"cgrid": "c1", "event": ev, "start_event": None, "started_wall_ns": 0, "closed": False,
            "disconnect_reason": "",
            "runs": [{"run_id": "*default", "event": ev, "request_type": "*prepaid", "extra_ns": 0,
                      "last_usage_ns": 0, "total_usage_ns": 0, "charged_ns": 0, "duration_index": 0,
                      "loop_index": 1, "cost": Decimal("0.05"), "debit_ids": ["c1:*default:0"],
                      "backlog_ns": 0}]}


async def test_restored_session_not_confirmed_is_not_charged_and_closed_at_what_was_paid(
    tmp_path: Path,
) -> None:
    """OpenSIPS away after the restart: nothing more is debited; closed at the pre-restart charge."""
    fb = FakeBackends()
    path = tmp_path / "s.sqlite"
    store = SessionStore(path)
    sm = _sm(fb, store)
    await sm.initiate(_event("away@h"), SessionFlags())
    await asyncio.sleep(0.07)  # debits at 0 and 50 ms
    await _crash(sm, store)
    paid = fb.balances["1001"]
    assert paid == Decimal("99.90")

    store2 = SessionStore(path)
    sm2 = _sm(fb, store2)
    (s,) = sm2.restore(store2.load())
    await asyncio.sleep(0.3)  # six intervals: a running loop would have debited them
    assert fb.balances["1001"] == paid and s.awaiting_switch
    assert [x.origin_id for x in sm2.awaiting_switch()] == ["away@h"]
    assert await sm2.close_unconfirmed() == [s.cgrid]
    (cdr, _), = fb.cdrs
    assert cdr.get("Usage") == 100 * MS and cdr.get("Cost") == Decimal("0.10")
    assert fb.balances["1001"] == paid
    assert sm2.metrics.get("disconnects", "RESTART_UNCONFIRMED") == 1
    await sm2.shutdown()
    store2.close()


async def test_restored_event_session_waits_for_its_accounting_event(tmp_path: Path) -> None:
    """GetActiveSessionIDs never lists event-interface calls: not closed by it, not charged;
    its E_ACC_CDR (Terminate) settles it at the usage the switch reports."""
    fb = FakeBackends()
    path = tmp_path / "s.sqlite"
    store = SessionStore(path)
    sm = _sm(fb, store)
    await sm.initiate(_event("ev@h"), SessionFlags(), channel="events")
    await _crash(sm, store)
    store2 = SessionStore(path)
    sm2 = _sm(fb, store2)
    (s,) = sm2.restore(store2.load())
    assert await sm2.confirm_restored(set()) == [] and s.awaiting_switch
    assert await sm2.terminate(_event("ev@h", Usage="230ms")) is None
    assert fb.balances["1001"] == Decimal("99.77")
    await sm2.shutdown()
    store2.close()


async def test_cost_details_survive_a_restart_and_a_disagreeing_one_is_null(tmp_path: Path) -> None:
    """A prepaid run's CostDetails (the EventCost RALs' refund answers) is kept with the closed
    session, so a restart posting its CDR still carries it; one whose Cost is not the run's
    cost is left null rather than stored wrong."""
    fb = FakeBackends(event_cost_skew=Decimal(0))
    path = tmp_path / "s.sqlite"
    store = SessionStore(path)
    sm = _sm(fb, store)
    await sm.initiate(_event(), SessionFlags())
    assert await sm.terminate(_event(Usage="30ms")) is None
    await _crash(sm, store)
    store2 = SessionStore(path)
    sm2 = _sm(fb, store2)
    sm2.restore(store2.load())
    assert await sm2.process_cdr(_event(Usage="30ms")) is None
    (cdr, _), = fb.cdrs
    details = loads_exact(cdr.get("CostDetails"))
    assert details["Cost"] == cdr.get("Cost") == Decimal("0.03") and details["Usage"] == 30 * MS
    await sm2.shutdown()
    store2.close()

    fb = FakeBackends(event_cost_skew=Decimal("0.00001"))
    sm3 = _sm(fb, SessionStore(tmp_path / "other.sqlite"))
    await sm3.initiate(_event("call-2@h"), SessionFlags())
    assert await sm3.terminate(_event("call-2@h", Usage="30ms")) is None
    assert await sm3.process_cdr(_event("call-2@h", Usage="30ms")) is None
    (cdr, _), = fb.cdrs
    assert cdr.get("CostDetails") is None and cdr.get("Cost") == Decimal("0.03")
    assert sm3.metrics.get("cost_details_dropped", "*default") == 1
    await sm3.shutdown()
