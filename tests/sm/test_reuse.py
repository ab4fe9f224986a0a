"""Initiate reuses Authorize's AttributeS/ChargerS answers only while they provably still hold."""

from __future__ import annotations

import asyncio
from typing import Any

from cgrpy.event import CGREvent
from services.sm.sessions.core import SessionManager, SMConfig
from services.sm.sessions.reuse import ReuseCache
from services.sm.sessions.types import AttributesReply, ProfileSet, SessionFlags
from tests.sm.fakes import FakeBackends

MS = 1_000_000
FLAGS = SessionFlags(get_max_usage=True, get_attributes=True)


def _event(origin: str = "call-1@h", **extra: Any) -> CGREvent:
    fields = {"OriginID": origin, "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
              "Account": "1001", "Destination": "1002", "SetupTime": "1795677150"}
    return CGREvent(event=fields | extra)


def _answered(origin: str = "call-1@h", **extra: Any) -> CGREvent:
    """What OpenSIPS sends at answer: the INVITE's fields plus the dialog's."""
    return _event(origin, AnswerTime="1795677153", DialogID=1, DialogEntry=2, **extra)


def _sm(fb: FakeBackends, **cfg: Any) -> SessionManager:
    return SessionManager(fb, SMConfig(**({"debit_interval_ns": 50 * MS, "reply_deadline_s": 1.0} | cfg)))


async def test_initiate_reuses_authorize_answers_and_keeps_the_answer_fields() -> None:
    fb = FakeBackends()
    sm = _sm(fb)
    assert (await sm.authorize(_event(), FLAGS)).error is None
    res = await sm.initiate(_answered(), FLAGS)
    assert res.error is None
    assert fb.calls.count("attributes") == 1 and fb.calls.count("chargers") == 1
    assert sm.metrics.get("reused", "attributes") == 1 and sm.metrics.get("reused", "chargers") == 1
    (s,) = sm.active_sessions()
    assert s.event.get("OfficeGroup") == "Marketing" and s.event.get("AnswerTime") == "1795677153"
    run_ev = s.runs[0].event
    assert run_ev.get("RunID") == "*default" and run_ev.get("DialogID") == 1
    assert run_ev.get("OfficeGroup") == "Marketing"
    assert res.attributes is not None and res.attributes.digest() == "OfficeGroup:Marketing"
    assert len(sm._reuse) == 0  # used once, then dropped
    await sm.terminate(_answered(Usage="10ms"))
    await sm.shutdown()


async def test_a_changed_input_field_asks_again() -> None:
    fb = FakeBackends(balances={"1001": 100, "1002": 100})
    sm = _sm(fb)
    await sm.authorize(_event(), FLAGS)
    await sm.initiate(_answered(Account="1002"), FLAGS)  # Account is what the profiles read
    assert fb.calls.count("attributes") == 2
    assert sm.metrics.get("reused", "attributes") == 0
    await sm.shutdown()


async def test_a_reload_seen_in_between_asks_again() -> None:
    fb = FakeBackends()
    sm = _sm(fb)
    await sm.authorize(_event("a@h"), FLAGS)
    fb.attributes_version, fb.chargers_version = "attributes:2", "chargers:2"
    await sm.authorize(_event("b@h"), FLAGS)  # another call's answer shows the new profiles
    await sm.initiate(_answered("a@h"), FLAGS)
    assert fb.calls.count("attributes") == 3 and fb.calls.count("chargers") == 3
    assert sm.metrics.get("reused", "attributes") == 0
    await sm.initiate(_answered("b@h"), FLAGS)  # b was kept under the new version: reused
    assert sm.metrics.get("reused", "attributes") == 1 and sm.metrics.get("reused", "chargers") == 1
    await sm.shutdown()


async def test_not_reusable_or_expired_answers_are_never_used() -> None:
    fb = FakeBackends(reusable=False)
    sm = _sm(fb)
    await sm.authorize(_event(), FLAGS)
    await sm.initiate(_answered(), FLAGS)
    assert fb.calls.count("attributes") == 2 and fb.calls.count("chargers") == 2
    fb2 = FakeBackends()
    sm2 = _sm(fb2, reuse_ttl_s=0.0)
    await sm2.authorize(_event(), FLAGS)
    await sm2.initiate(_answered(), FLAGS)
    assert fb2.calls.count("attributes") == 2
    await sm.shutdown()
    await sm2.shutdown()


async def test_marker_left_in_the_answer_event_asks_again() -> None:
    fb = FakeBackends()
    sm = _sm(fb)
    await sm.authorize(_event(), FLAGS)
    await sm.initiate(_answered(Password="*attributes"), FLAGS)
    assert sm.metrics.get("reused", "attributes") == 0
    await sm.shutdown()


def test_authorize_without_initiate_does_not_leak() -> None:
    cache = ReuseCache(ttl_s=10.0, max_entries=3)
    ps = ProfileSet("v1", frozenset(), True)
    cache.observe("attributes", ps)
    reply = AttributesReply(_event(), [], [], ps)
    for i in range(5):
        cache.keep_attributes(f"c{i}", _event(), reply, now=float(i))
    assert len(cache) == 3  # capped, oldest out
    cache.keep_attributes("late", _event(), reply, now=13.5)  # c2, c3 are older than 10 s
    assert len(cache) == 2 and cache.attributes_for("c4", _event(), now=13.5) is not None
    assert cache.attributes_for("c4", _event(), now=14.0) is None  # expired even if not swept


async def test_stats_and_thresholds_only_reached_when_the_tenant_has_some() -> None:
    flags = SessionFlags(get_max_usage=True, process_stats=True, process_thresholds=True)
    fb = FakeBackends(thresholds={})  # StatS has a queue, ThresholdS nothing
    sm = _sm(fb, profiles_check_s=60.0)
    res = await sm.authorize(_event("a@h"), flags)
    assert res.stat_queue_ids == ["Stats2"] and res.threshold_ids == []  # as a NOT_FOUND reads
    await sm.initiate(_answered("a@h"), flags)
    await sm.authorize(_event("b@h"), flags)
    assert fb.calls.count("stats") == 3 and fb.calls.count("thresholds") == 0
    assert fb.calls.count("thresholds_ids") == 1 and fb.calls.count("stats_ids") == 1  # asked once
    await sm.shutdown()


async def test_profiles_loaded_later_are_seen_after_the_check_interval() -> None:
    flags = SessionFlags(process_thresholds=True)
    fb = FakeBackends(thresholds={})
    sm = _sm(fb, profiles_check_s=0.05)
    await sm.authorize(_event("a@h"), flags)
    fb.thresholds = {"cgrates.org": ["THD_1"]}
    await asyncio.sleep(0.06)
    await sm.authorize(_event("b@h"), flags)
    assert fb.calls.count("thresholds") == 1
    fb.errors["thresholds_ids"] = "SERVER_ERROR"  # the question fails: send the events anyway
    await asyncio.sleep(0.06)
    await sm.authorize(_event("c@h"), flags)
    assert fb.calls.count("thresholds") == 2
    await sm.shutdown()
