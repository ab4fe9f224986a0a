"""Restart safety: sessions persisted to SQLite, restored by a new SessionManager, charged once."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from cgrpy.event import CGREvent
from services.sm.persist import SessionStore, default_path, session_from_record, session_record
from services.sm.sessions.core import SessionManager, SMConfig
from services.sm.sessions.types import SessionFlags
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
    await asyncio.sleep(0.12)  # the restored loop keeps debiting
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
    ended = await sm2.close_restored({("alive@h", "127.0.0.1")})
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
