"""Session core: debit loop, disconnect on no credit, refunds, idempotent retries, deadlines."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from cgrpy.cgrid import cgrid_of
from cgrpy.event import CGREvent
from services.sm.sessions.core import Session, SessionManager, SMConfig
from services.sm.sessions.types import SessionFlags
from tests.sm.fakes import FakeBackends

MS = 1_000_000
ALL = SessionFlags(get_max_usage=True, get_attributes=True, get_suppliers=True,
                   process_thresholds=True, process_stats=True)


def _event(origin: str = "call-1@h", account: str = "1001", reqtype: str = "*prepaid", **extra) -> CGREvent:
    fields = {"OriginID": origin, "OriginHost": "127.0.0.1", "RequestType": reqtype,
              "Account": account, "Destination": "1002", "AnswerTime": "1795677153"}
    fields.update(extra)
    return CGREvent(event=fields)


def _sm(fb: FakeBackends, **cfg) -> tuple[SessionManager, list[tuple[str, str]]]:
    disconnected: list[tuple[str, str]] = []
    sm_ref: list[SessionManager] = []

    async def disconnector(s: Session, reason: str) -> bool:
        disconnected.append((s.origin_id, reason))
        # OpenSIPS answers "OK" then sends TerminateSession with the real usage.
        elapsed_ms = int((time.monotonic() - s.started) * 1000)
        asyncio.get_running_loop().call_soon(
            lambda: asyncio.ensure_future(sm_ref[0].terminate(_event(s.origin_id, Usage=f"{elapsed_ms}ms")))
        )
        return True

    conf = {"debit_interval_ns": 50 * MS, "reply_deadline_s": 0.3} | cfg
    sm = SessionManager(fb, SMConfig(**conf), disconnector)
    sm_ref.append(sm)
    return sm, disconnected


async def test_authorize_min_over_runs_and_digests() -> None:
    fb = FakeBackends(balances={"1001": Decimal("1.5")})
    sm, _ = _sm(fb)
    res = await sm.authorize(_event(), ALL)
    assert res.error is None
    assert res.max_usage_ns == 150 * 10 * MS  # 150 increments of 10 ms affordable
    assert res.attributes is not None and res.attributes.digest() == "OfficeGroup:Marketing"
    assert res.suppliers is not None and res.suppliers.digest() == "supplier1,supplier2"
    assert res.threshold_ids == [] and res.stat_queue_ids == ["Stats2"]


async def test_authorize_no_credit_is_an_error_reply() -> None:
    fb = FakeBackends(balances={"1001": Decimal(0)})
    sm, _ = _sm(fb)
    res = await sm.authorize(_event(), ALL)
    assert res.error == "RALS_ERROR:INSUFFICIENT_CREDIT"
    fb.errors["max_usage"] = "ACCOUNT_NOT_FOUND"
    assert (await sm.authorize(_event("c2"), ALL)).error == "RALS_ERROR:ACCOUNT_NOT_FOUND"


async def test_postpaid_authorize_does_not_ask_rals() -> None:
    fb = FakeBackends(balances={"1001": Decimal(0)})
    sm, _ = _sm(fb)
    res = await sm.authorize(_event(reqtype="*postpaid", Usage="60s"), ALL)
    assert res.error is None and res.max_usage_ns == 60 * 1000 * MS
    assert "max_usage" not in fb.calls


async def test_duplicate_authorizations_share_one_computation() -> None:
    fb = FakeBackends(delay={"max_usage": 0.05})
    sm, _ = _sm(fb)
    a, b = await asyncio.gather(sm.authorize(_event(), ALL), sm.authorize(_event(), ALL))
    assert a.max_usage_ns == b.max_usage_ns and fb.calls.count("max_usage") == 1


async def test_debit_loop_disconnects_when_credit_ends() -> None:
    fb = FakeBackends(balances={"1001": Decimal("0.12")})  # 12 increments = 120 ms
    sm, disconnected = _sm(fb)
    init = await sm.initiate(_event(), SessionFlags())
    assert init.error is None and init.max_usage_ns == 3 * 3600 * 1000 * MS
    assert fb.balances["1001"] == Decimal("0.07")  # first interval debited before replying
    for _ in range(60):
        await asyncio.sleep(0.01)
        if disconnected and not sm.active_sessions():
            break
    assert disconnected == [("call-1@h", "INSUFFICIENT_CREDIT")]
    # debits at t=0, 50, 100 ms: 5 + 5 + 2 increments, then disconnect after the 20 ms granted
    loop = [(rid.rsplit(":", 1)[1], u) for rid, u in fb.debit_calls]
    assert loop[:3] == [("0", 50 * MS), ("1", 50 * MS), ("2", 50 * MS)]
    # OpenSIPS's Terminate reports the real usage (> the 120 ms paid): CGRateS debits the
    # rest with goNegative, so at most a few increments of debt remain.
    assert all(k == "final" for k, _ in loop[3:])
    assert Decimal("-0.03") <= fb.balances["1001"] <= 0
    assert sm.metrics.get("disconnects", "INSUFFICIENT_CREDIT") == 1
    await sm.shutdown()


async def test_refund_on_terminate() -> None:
    fb = FakeBackends()
    sm, _ = _sm(fb)
    await sm.initiate(_event(), SessionFlags())
    await asyncio.sleep(0.12)  # loop debits at 0, 50, 100 ms
    assert len(fb.debit_calls) >= 2
    assert await sm.terminate(_event(Usage="75ms")) is None
    # whatever was debited, the account ends charged exactly ceil(75/10) = 8 increments
    assert fb.balances["1001"] == Decimal("99.92")
    assert sm.metrics.get("refunds", "*default") == 1
    s = sm.get_session(_event().get("OriginID") and cgrid_of(_event()))
    assert s is not None and s.runs[0].cost == Decimal("0.08")
    assert s.runs[0].event.get("Usage") == 75 * MS
    await asyncio.sleep(0.07)
    assert fb.balances["1001"] == Decimal("99.92")  # the loop is really stopped
    assert sm.active_sessions() == []


async def test_terminate_time_charging_with_debit_interval_zero() -> None:
    fb = FakeBackends(balances={"1001": Decimal(5)})
    sm, _ = _sm(fb, debit_interval_ns=0)
    init = await sm.initiate(_event(), SessionFlags())
    assert init.max_usage_ns == 500 * 10 * MS  # all the credit reserved: 5.00 / 0.01
    assert fb.balances["1001"] == 0
    await sm.terminate(_event(Usage="2s"))
    assert fb.balances["1001"] == Decimal(3)


async def test_extra_usage_debited_at_terminate() -> None:
    fb = FakeBackends()
    sm, _ = _sm(fb, debit_interval_ns=10_000 * MS)  # one 10 s debit, no loop tick in the test
    await sm.initiate(_event(), SessionFlags())
    assert fb.balances["1001"] == Decimal(90)
    await sm.terminate(_event(Usage="12s"))
    assert fb.balances["1001"] == Decimal(88)


async def test_retried_debit_never_charges_twice() -> None:
    fb = FakeBackends(lose_replies={"debit": 1})
    sm, _ = _sm(fb)
    init = await sm.initiate(_event(), SessionFlags())
    assert init.error is None
    assert fb.balances["1001"] == Decimal("99.95")  # one interval, though RALs was called twice
    assert fb.calls.count("debit") == 2 and len(fb.debit_calls) == 1
    await sm.terminate(_event(Usage="50ms"))
    assert fb.balances["1001"] == Decimal("99.95")


async def test_initiate_without_credit_refused_and_nothing_left_charged() -> None:
    fb = FakeBackends(balances={"1001": Decimal(0)})
    sm, _ = _sm(fb)
    res = await sm.initiate(_event(), SessionFlags())
    assert res.error == "RALS_ERROR:INSUFFICIENT_CREDIT"
    assert sm.active_sessions() == [] and fb.balances["1001"] == 0


async def test_duplicate_initiate_returns_first_answer() -> None:
    fb = FakeBackends()
    sm, _ = _sm(fb)
    a = await sm.initiate(_event(), SessionFlags())
    b = await sm.initiate(_event(), SessionFlags())
    assert a is b and len(fb.debit_calls) == 1
    await sm.terminate(_event(Usage="0s"))
    assert fb.balances["1001"] == Decimal(100)


async def test_unknown_terminate_charged_one_shot_and_duplicate_ignored() -> None:
    fb = FakeBackends()
    sm, _ = _sm(fb)
    assert await sm.terminate(_event("lost@h", Usage="2s")) is None
    assert fb.balances["1001"] == Decimal(98)
    assert await sm.terminate(_event("lost@h", Usage="2s")) is None
    assert fb.balances["1001"] == Decimal(98)


async def test_process_cdr_uses_session_runs_or_forwards_raw() -> None:
    fb = FakeBackends()
    sm, _ = _sm(fb)
    await sm.initiate(_event(), SessionFlags())
    await sm.terminate(_event(Usage="30ms"))
    await sm.process_cdr(_event(Usage="30ms", DisconnectCause="Downstream BYE"))
    (ev, flags), = fb.cdrs
    assert flags == {"chargers": False, "attributes": False, "rals": False}
    assert ev.get("RunID") == "*default" and ev.get("Cost") == Decimal("0.03")
    assert ev.get("CostSource") == "*sessions" and ev.get("DisconnectCause") == "Downstream BYE"
    await sm.process_cdr(_event("missed@h", Usage="0s"))
    ev2, flags2 = fb.cdrs[1]
    assert flags2 == {"chargers": True, "attributes": True, "rals": True}
    assert ev2.get("OriginID") == "missed@h"


async def test_slow_backend_bounded_reply_deny_and_allow() -> None:
    fb = FakeBackends(delay={"max_usage": 2.0, "debit": 2.0})
    sm, _ = _sm(fb, reply_deadline_s=0.1)
    t0 = time.monotonic()
    res = await sm.authorize(_event(), ALL)
    assert time.monotonic() - t0 < 0.5
    assert res.error == "SERVER_ERROR"
    assert sm.metrics.get("replies_over_deadline", "authorize") == 1
    sm2, _ = _sm(fb, reply_deadline_s=0.1, failed_backend_policy="allow",
                 failed_backend_allow_usage_ns=60_000 * MS)
    t0 = time.monotonic()
    res = await sm2.authorize(_event(), ALL)
    init = await sm2.initiate(_event("c9"), SessionFlags())
    assert time.monotonic() - t0 < 0.5
    assert res.error is None and res.max_usage_ns == 60_000 * MS
    assert init.error is None and init.max_usage_ns == 60_000 * MS
    await sm.shutdown()
    await sm2.shutdown()


async def test_late_init_after_deny_is_refunded() -> None:
    fb = FakeBackends(delay={"debit": 0.2})
    sm, _ = _sm(fb, reply_deadline_s=0.05)
    res = await sm.initiate(_event(), SessionFlags())
    assert res.error == "SERVER_ERROR"
    await asyncio.sleep(0.6)
    assert fb.balances["1001"] == Decimal(100) and sm.active_sessions() == []


async def test_sync_terminates_sessions_opensips_no_longer_has() -> None:
    fb = FakeBackends()
    sm, _ = _sm(fb, debit_interval_ns=10_000 * MS)
    await sm.initiate(_event("gone@h"), SessionFlags())
    await sm.initiate(_event("alive@h"), SessionFlags())
    ended = await sm.sync_active({("alive@h", "127.0.0.1")}, time.monotonic())
    assert len(ended) == 1 and [s.origin_id for s in sm.active_sessions()] == ["alive@h"]
    assert len(fb.cdrs) == 1 and fb.cdrs[0][0].get("OriginID") == "gone@h"
    await sm.shutdown()


async def test_config_rejects_bad_policy() -> None:
    import pytest

    with pytest.raises(ValueError, match="failed_backend_policy"):
        SMConfig(failed_backend_policy="maybe")


async def test_unit_tors_debit_their_usage_once_not_by_time() -> None:
    """*sms/*data count messages/bytes: debited once for the usage (default per ToR), no loop."""
    fb = FakeBackends(increment_ns=1, price=Decimal("0.00001"))
    sm, _ = _sm(fb, debit_interval_ns=20 * MS)
    sms = await sm.initiate(_event("sms-1", ToR="*sms"), SessionFlags())
    data = await sm.initiate(_event("data-1", ToR="*data", Usage="2048"), SessionFlags())
    nodflt = await sm.initiate(_event("data-2", ToR="*data"), SessionFlags())
    assert (sms.error, sms.max_usage_ns) == (None, 1)
    assert (data.error, data.max_usage_ns) == (None, 2048)
    assert (nodflt.error, nodflt.max_usage_ns) == (None, 1048576)
    await asyncio.sleep(0.1)  # a time loop would have debited 20e6 units by now
    assert sorted(u for _, u in fb.debit_calls) == [1, 2048, 1048576]
    assert await sm.terminate(_event("data-1", ToR="*data", Usage="1000")) is None
    assert fb.balances["1001"] == Decimal(100) - Decimal("0.00001") * (1 + 1000 + 1048576)
    await sm.shutdown()


async def test_process_cdr_waits_for_a_slow_terminate_and_posts_the_cdrs() -> None:
    # Under load the settlement at Terminate can outlast the reply deadline; the ProcessCDR that
    # follows at once must still post the call's CDRs once the session is closed.
    fb = FakeBackends(delay={"refund": 0.4})
    sm, _ = _sm(fb, reply_deadline_s=0.1)
    await sm.initiate(_event(), SessionFlags())
    term = asyncio.ensure_future(sm.terminate(_event(Usage="30ms")))
    await asyncio.sleep(0.01)
    await sm.process_cdr(_event(Usage="30ms", DisconnectCause="Downstream BYE"))
    await term
    await asyncio.sleep(0.6)
    (ev, _flags), = fb.cdrs
    assert ev.get("Cost") == Decimal("0.03") and ev.get("Usage") == 30 * MS
    assert fb.balances["1001"] == Decimal("99.97")
    await sm.shutdown()


async def test_process_cdr_past_the_deadline_is_not_answered_ok_and_the_cdr_still_arrives_once() -> None:
    # A reply means committed: a CDR still being stored at the deadline gets an error answer,
    # and is stored all the same, once.
    fb = FakeBackends(delay={"cdrs": 0.3})
    sm, _ = _sm(fb, reply_deadline_s=0.1)
    answer = await sm.process_cdr(_event(OriginID="late-cdr", Usage="30ms"))
    assert answer is not None and answer.startswith("SERVER_ERROR") and "not confirmed" in answer
    assert fb.cdrs == []
    await asyncio.sleep(0.4)
    assert len(fb.cdrs) == 1
    await sm.shutdown()


async def test_process_cdr_without_terminate_closes_the_session_at_the_cdr_usage() -> None:
    # The Terminate was lost: the CDR is the call's end, so it settles the session and posts.
    fb = FakeBackends()
    sm, _ = _sm(fb, reply_deadline_s=0.1, debit_interval_ns=10_000 * MS)
    await sm.initiate(_event(), SessionFlags())
    await sm.process_cdr(_event(Usage="40ms", DisconnectCause="Downstream BYE"))
    await asyncio.sleep(0.3)
    (ev, _flags), = fb.cdrs
    assert ev.get("Usage") == 40 * MS and ev.get("Cost") == Decimal("0.04")
    assert fb.balances["1001"] == Decimal("99.96") and sm.active_sessions() == []
    await sm.shutdown()
