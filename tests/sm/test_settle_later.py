"""RALs away at the end of a call, and a ProcessCDR that never comes: the money trail is kept.

A settlement (final debit, refund) RALs cannot take is retried until it is done; Terminate still
answers within the deadline and the CDRs wait for the final cost. A terminated call whose
ProcessCDR does not arrive gets its CDRs from the session after ``cdr_wait_s``, once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from cgrpy.cgrid import cgrid_of
from cgrpy.event import CGREvent
from services.sm.sessions.core import CDR_NOT_CONFIRMED, CDR_POSTED, SessionManager, SMConfig
from services.sm.sessions.types import SessionFlags
from tests.sm.fakes import FakeBackends

MS = 1_000_000


@dataclass
class FlakyRals(FakeBackends):
    """RALs that refuses connections while ``down``."""

    down: bool = False

    async def rals_debit(self, *a, **kw):  # type: ignore[override]
        if self.down:
            raise ConnectionError("rals: connection refused")
        return await super().rals_debit(*a, **kw)

    async def rals_refund(self, *a, **kw):  # type: ignore[override]
        if self.down:
            raise ConnectionError("rals: connection refused")
        return await super().rals_refund(*a, **kw)


def _event(**extra) -> CGREvent:
    fields = {"OriginID": "late-1@h", "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
              "Account": "1001", "Destination": "1002", "AnswerTime": "1795677153"}
    return CGREvent(event=fields | extra)


async def test_refund_while_rals_is_down_is_done_later_and_cdr_waits_for_it() -> None:
    fb = FlakyRals()
    sm = SessionManager(fb, SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=0.3, cdr_wait_s=0))
    await sm.initiate(_event(), SessionFlags())
    await asyncio.sleep(0.08)
    fb.down = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await sm.terminate(_event(Usage="75ms")) is None  # answered by the deadline
    assert loop.time() - started < 0.6
    # no CDR without its final cost: not stored by the deadline, so not answered OK either
    assert await sm.process_cdr(_event(Usage="75ms")) == CDR_NOT_CONFIRMED
    assert fb.cdrs == []
    assert sm.metrics.get("settlements_retried", "*default") >= 1
    fb.down = False
    for _ in range(100):
        if fb.cdrs:
            break
        await asyncio.sleep(0.05)
    (cdr, flags), = fb.cdrs
    assert cdr.get("Cost") == Decimal("0.08") and cdr.get("CostSource") == "*sessions"
    assert fb.balances["1001"] == Decimal("99.92")  # ceil(75/10) increments, refunded once
    s = sm.get_session(cgrid_of(_event()))
    assert s is not None and not s.unsettled and s.cdr_state == CDR_POSTED
    await sm.shutdown()


async def test_cdrs_posted_from_the_session_when_process_cdr_never_comes() -> None:
    fb = FakeBackends()
    sm = SessionManager(fb, SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=0.3, cdr_wait_s=0.2))
    await sm.initiate(_event(), SessionFlags())
    await asyncio.sleep(0.06)
    assert await sm.terminate(_event(Usage="60ms")) is None
    await asyncio.sleep(0.1)
    assert fb.cdrs == []  # still waiting for the switch's ProcessCDR
    await asyncio.sleep(0.3)
    (cdr, _), = fb.cdrs
    assert cdr.get("Usage") == 60 * MS and cdr.get("Cost") == Decimal("0.06")
    assert sm.metrics.get("cdrs_from_session") == 1
    assert await sm.process_cdr(_event(Usage="60ms")) is None  # late: adds no CDR
    assert len(fb.cdrs) == 1
    await sm.shutdown()


async def test_refused_call_never_gets_cdrs_from_the_session() -> None:
    fb = FakeBackends(balances={"1001": Decimal(0)})
    sm = SessionManager(fb, SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=0.3, cdr_wait_s=0.05))
    res = await sm.initiate(_event(), SessionFlags())
    assert res.error is not None
    await asyncio.sleep(0.2)
    assert fb.cdrs == []
    await sm.shutdown()
