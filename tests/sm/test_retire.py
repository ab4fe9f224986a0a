"""A closed session whose CDRs are posted is retired: it keeps only what answers duplicates.

SM keeps closed sessions for ``closed_session_keep_s`` (600 s), i.e. cps x 600 of them, and the
garbage collector walks every object they hold on each middle and full pass. These tests check
what a retired session still holds (counted with ``gc.get_referents``, which is what the
collector walks) and that duplicates are still answered without posting or charging twice."""

from __future__ import annotations

import asyncio
import gc
from decimal import Decimal

import pytest

from services.sm.opensips.messages import cgrid_of
from services.sm.sessions.core import CDR_POSTED, SessionManager, SMConfig
from services.sm.sessions.types import SessionFlags
from tests.sm.fakes import FakeBackends
from tests.sm.test_core import MS, _event


def _tracked_reachable(root: object) -> int:
    """Objects the collector tracks that ``root`` reaches, not counting what SM shares."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        o = todo.pop()
        if id(o) in seen or not gc.is_tracked(o) or isinstance(o, SessionManager | type):
            continue
        if isinstance(o, asyncio.AbstractEventLoop):
            continue
        seen.add(id(o))
        todo.extend(gc.get_referents(o))
    return len(seen)


async def _call(sm: SessionManager, origin: str) -> None:
    assert (await sm.initiate(_event(origin), SessionFlags(get_max_usage=True))).error is None
    await asyncio.sleep(0.12)  # two debits of the loop
    assert await sm.terminate(_event(origin, Usage="120ms")) is None
    assert await sm.process_cdr(_event(origin, Usage="120ms")) is None


async def test_a_posted_session_drops_what_it_held_for_the_call() -> None:
    fb = FakeBackends(balances={"1001": Decimal(100)})
    sm = SessionManager(fb, SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=1.0))
    await _call(sm, "call-r@h")
    s = sm.get_session(cgrid_of(_event("call-r@h")))
    assert s is not None and s.cdr_state == CDR_POSTED
    assert s.loops == [] and s.cdr_timer is None and s.start_event is None and s.client is None
    assert s.done.is_set() and s.ready.is_set() and s.stop.is_set()
    # the three events are one shared object: a retired session reaches far fewer objects than
    # a closed one still waiting for its ProcessCDR
    fb2 = FakeBackends(balances={"1001": Decimal(100)})
    sm2 = SessionManager(fb2, SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=1.0))
    assert (await sm2.initiate(_event("call-w@h"), SessionFlags(get_max_usage=True))).error is None
    await asyncio.sleep(0.12)
    assert await sm2.terminate(_event("call-w@h", Usage="120ms")) is None
    waiting = sm2.get_session(cgrid_of(_event("call-w@h")))
    assert waiting is not None and waiting.cdr_timer is not None and waiting.loops
    assert _tracked_reachable(s) < _tracked_reachable(waiting) - 8
    assert await sm2.process_cdr(_event("call-w@h", Usage="120ms")) is None


async def test_a_retired_session_still_answers_duplicates_once() -> None:
    fb = FakeBackends(balances={"1001": Decimal(100)})
    sm = SessionManager(fb, SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=1.0))
    await _call(sm, "call-d@h")
    balance, cdrs, calls = fb.balances["1001"], len(fb.cdrs), list(fb.calls)
    assert await sm.terminate(_event("call-d@h", Usage="120ms")) is None
    assert await sm.process_cdr(_event("call-d@h", Usage="120ms")) is None
    assert fb.balances["1001"] == balance and len(fb.cdrs) == cdrs and fb.calls == calls
    s = sm.get_session(cgrid_of(_event("call-d@h")))
    assert s is not None
    with pytest.raises(RuntimeError):
        s.done.clear()  # shared by every retired session: never cleared


async def test_the_cdr_wait_timer_is_cancelled_when_the_cdr_comes() -> None:
    fb = FakeBackends(balances={"1001": Decimal(100)})
    sm = SessionManager(fb, SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=1.0, cdr_wait_s=0.2))
    assert (await sm.initiate(_event("call-t@h"), SessionFlags(get_max_usage=True))).error is None
    assert await sm.terminate(_event("call-t@h", Usage="0s")) is None
    s = sm.get_session(cgrid_of(_event("call-t@h")))
    assert s is not None and s.cdr_timer is not None
    timer = s.cdr_timer
    assert await sm.process_cdr(_event("call-t@h", Usage="0s")) is None
    assert timer.cancelled()  # not kept (with the session) for cdr_wait_s
    cdrs = len(fb.cdrs)
    await asyncio.sleep(0.3)  # past cdr_wait_s: nothing posted again
    assert len(fb.cdrs) == cdrs and sm.metrics.get("cdrs_from_session") == 0


async def test_a_one_shot_charge_keeps_its_whole_answer_for_a_repeat() -> None:
    fb = FakeBackends(balances={"1001": Decimal(100)})
    sm = SessionManager(fb, SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=1.0))
    ev = _event("sms-1@h", Usage="1s")
    first = await sm.charge(ev)
    assert first.error is None
    assert await sm.process_cdr(ev) is None
    s = sm.get_session(cgrid_of(ev))
    assert s is not None and s.done is not None and s.cdr_state == CDR_POSTED and s.loops == []
    balance = fb.balances["1001"]
    assert await sm.charge(ev) is first and fb.balances["1001"] == balance


async def test_a_call_keeps_only_the_grant_of_its_answer() -> None:
    fb = FakeBackends(balances={"1001": Decimal(100)})
    sm = SessionManager(fb, SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=1.0))
    flags = SessionFlags(get_max_usage=True, get_attributes=True, process_stats=True)
    answer = await sm.initiate(_event("call-a@h"), flags)
    assert answer.attributes is not None
    assert await sm.terminate(_event("call-a@h", Usage="0s")) is None
    assert await sm.process_cdr(_event("call-a@h", Usage="0s")) is None
    s = sm.get_session(cgrid_of(_event("call-a@h")))
    assert s is not None and s.init_result is not None
    assert s.init_result.attributes is None and s.init_result.max_usage_ns == answer.max_usage_ns
