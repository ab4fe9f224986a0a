"""ProcessCDR per request type, idempotence, crash recovery (docs/rating.md)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from cgrpy.event import CGREvent
from cgrpy.units import SECOND
from services.cdre.backends import BackendError
from services.cdre.outbox import OutboxDeliverer
from services.cdre.pipeline import (
    PipelineConfig,
    ProcessError,
    ProcessFlags,
    RatingUnavailable,
    process_cdr,
    resume_pending,
)
from services.cdre.store import CdrFilter, CdrStore, SessionCost
from tests.cdre.fakes import FakeBackends, tariff_cost

NO_WAIT = PipelineConfig(session_cost_retries=0)


def _event(rt: str = "*postpaid", usage: str = "85s", origin: str = "call-1", **kw) -> CGREvent:
    ev = {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "OriginID": origin, "Account": "1001",
          "Destination": "1002", "RequestType": rt, "Usage": usage,
          "AnswerTime": "2014-08-04T13:00:00Z", "DisconnectCause": "Downstream BYE"}
    ev.update(kw)
    return CGREvent(tenant="cgrates.org", event=ev)


async def _deliver(store: CdrStore, be: FakeBackends) -> int:
    """Run the outbox deliverer until the outbox is empty (what cdre's loop does in the
    background); returns how many rows it delivered."""
    out = OutboxDeliverer(store, be)
    while await out.deliver_once():
        pass
    return out.delivered


def _run(store: CdrStore, run_id: str):
    return store.get_cdrs(CdrFilter(run_ids=[run_id]))


def test_fake_tariff_matches_spec_examples():
    assert tariff_cost("1001", "1002", 20 * SECOND) == Decimal("0.6")
    assert tariff_cost("1001", "1002", 85 * SECOND) == Decimal("0.64175")
    assert tariff_cost("1001", "1002", 130 * SECOND) == Decimal("0.7169")
    assert tariff_cost("1001", "1002", 3600 * SECOND) == Decimal("6.5118")
    assert tariff_cost("1003", "1001", 1 * SECOND) == Decimal("0.3")


async def test_postpaid_is_debited_and_raw_run_stored_unrated(store: CdrStore):
    be = FakeBackends()
    res = await process_cdr(_event(), ProcessFlags(), be, store, NO_WAIT)
    assert [r.duplicate for r in res.runs] == [False, False]
    assert not res.duplicate and not res.partially_executed
    default, = _run(store, "*default")
    raw, = _run(store, "*raw")
    assert default.cost == Decimal("0.6418") and default.cost_source == "*cdrs"
    assert default.usage_ns == 85 * SECOND
    assert raw.cost == Decimal(-1) and raw.request_type == "*none"
    assert be.balances["1001"] == Decimal("9.3582")
    assert be.debit_calls == 1
    assert store.get_stored(CdrFilter(run_ids=["*default"]))[0].debit_request_id == (
        f"{default.cgrid}:*default")
    assert be.stats_events == []  # the reply does not wait for StatS/ThresholdS
    assert await _deliver(store, be) == 4
    assert [e.event["RunID"] for e in be.stats_events] == ["*default", "*raw"]
    assert be.threshold_events[0].event["EventType"] == "CDR"
    assert be.threshold_events[0].event["Cost"] == Decimal("0.6418")


async def test_same_cdr_twice_is_stored_and_charged_once(store: CdrStore):
    be = FakeBackends()
    await process_cdr(_event(), ProcessFlags(), be, store, NO_WAIT)
    again = await process_cdr(_event(), ProcessFlags(), be, store, NO_WAIT)
    assert again.duplicate
    assert again.runs[0].cdr.cost == Decimal("0.6418")
    assert store.count_cdrs() == 2
    assert be.debit_calls == 1 and be.balances["1001"] == Decimal("9.3582")
    assert await _deliver(store, be) == 4  # duplicates are not queued for StatS again
    assert len(be.stats_events) == 2


async def test_concurrent_posts_charge_once(store: CdrStore):
    be = FakeBackends(with_raw_run=False)
    results = await asyncio.gather(*(
        process_cdr(_event(), ProcessFlags(), be, store, NO_WAIT) for _ in range(4)))
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert be.debit_calls == 1 and store.count_cdrs() == 1


async def test_prepaid_takes_the_session_cost(store: CdrStore):
    be = FakeBackends(with_raw_run=False)
    ev = _event("*prepaid")
    from services.cdre.cdr import cdr_from_event
    cid = cdr_from_event(ev).cgrid
    store.store_session_cost(SessionCost(cgrid=cid, run_id="*default", cost=Decimal("0.6418"),
                                         usage_ns=85 * SECOND, cost_details={"Usage": 85 * SECOND}))
    await process_cdr(ev, ProcessFlags(), be, store, NO_WAIT)
    cdr, = store.get_cdrs()
    assert cdr.cost == Decimal("0.6418") and cdr.cost_source == "*sessions"
    assert cdr.cost_details == {"Usage": 85 * SECOND}
    assert be.debit_calls == 0 and be.balances["1001"] == Decimal(10)


async def test_prepaid_session_cost_found_after_retry(store: CdrStore):
    be = FakeBackends(with_raw_run=False)
    ev = _event("*prepaid")
    from services.cdre.cdr import cdr_from_event
    cid = cdr_from_event(ev).cgrid

    delays: list[int] = []

    def later(n: int) -> float:
        delays.append(n)
        if n == 2:  # SM's StoreSessionCost lands while we wait
            store.store_session_cost(SessionCost(cid, "*default", Decimal("0.5"), 85 * SECOND))
        return 0.0

    await process_cdr(ev, ProcessFlags(), be, store, PipelineConfig(session_cost_retries=3, retry_delay=later))
    assert delays == [1, 2]
    assert store.get_cdrs()[0].cost == Decimal("0.5") and be.debit_calls == 0


async def test_prepaid_without_session_cost_is_debited(store: CdrStore):
    be = FakeBackends(with_raw_run=False)
    await process_cdr(_event("*prepaid", usage="20s"), ProcessFlags(), be, store, NO_WAIT)
    assert store.get_cdrs()[0].cost == Decimal("0.6")
    assert be.balances["1001"] == Decimal("9.4")


async def test_pseudoprepaid_goes_negative(store: CdrStore):
    be = FakeBackends(with_raw_run=False, balances={"1001": Decimal("0.1")})
    await process_cdr(_event("*pseudoprepaid", usage="20s"), ProcessFlags(), be, store, NO_WAIT)
    assert store.get_cdrs()[0].cost == Decimal("0.6")
    assert be.balances["1001"] == Decimal("-0.5")


async def test_rated_uses_get_cost_or_the_given_cost(store: CdrStore):
    be = FakeBackends(with_raw_run=False)
    await process_cdr(_event("*rated", origin="a"), ProcessFlags(), be, store, NO_WAIT)
    await process_cdr(_event("*rated", origin="b", Cost=Decimal("1.23")), ProcessFlags(), be,
                      store, NO_WAIT)
    a, b = store.get_cdrs()
    assert a.cost == Decimal("0.64175")  # EventCost, no DestinationRate rounding
    assert b.cost == Decimal("1.23")
    assert be.get_cost_calls == 1 and be.debit_calls == 0
    assert be.balances["1001"] == Decimal(10)


async def test_none_and_prerated_are_not_rated(store: CdrStore):
    be = FakeBackends(with_raw_run=False)
    await process_cdr(_event("*none", origin="a"), ProcessFlags(), be, store, NO_WAIT)
    await process_cdr(_event("*postpaid", origin="b", PreRated=True, Cost=Decimal("0.7")),
                      ProcessFlags(), be, store, NO_WAIT)
    a, b = store.get_cdrs()
    assert a.cost == Decimal(-1) and b.cost == Decimal("0.7")
    assert be.debit_calls == 0 and be.get_cost_calls == 0


async def test_rating_error_is_stored_with_extra_info(store: CdrStore):
    be = FakeBackends(with_raw_run=False)
    await process_cdr(_event(Destination="4917"), ProcessFlags(), be, store, NO_WAIT)
    await process_cdr(_event(origin="x", AnswerTime=None), ProcessFlags(), be, store, NO_WAIT)
    bad_dest, no_time = store.get_cdrs()
    assert bad_dest.cost == Decimal(-1)
    assert bad_dest.extra_info == "UNAUTHORIZED_DESTINATION: 1001 -> 4917"
    assert no_time.extra_info.startswith("MANDATORY_IE_MISSING")
    assert store.get_stored()[0].rating_state == "rated"


async def test_bad_event_stores_nothing(store: CdrStore):
    with pytest.raises(ProcessError, match="Usage"):
        await process_cdr(_event(usage="soon"), ProcessFlags(), FakeBackends(), store, NO_WAIT)
    assert store.count_cdrs() == 0


async def test_stats_down_keeps_the_event_in_the_outbox(store: CdrStore):
    be = FakeBackends(with_raw_run=False, fail_stats=True)
    res = await process_cdr(_event(), ProcessFlags(), be, store, NO_WAIT)
    assert not res.partially_executed and store.count_cdrs() == 1
    out = OutboxDeliverer(store, be, max_backoff_s=0)  # retry at once, not after a backoff
    assert await out.deliver_once() == 1  # one row: the event, for both receivers
    # ThresholdS took its event; StatS's waits (released with a backoff) until StatS is back
    assert len(be.threshold_events) == 1 and be.stats_events == []
    assert [r.targets for r in store.claim_outbox(10, 0)] == [("stats",)]
    be.fail_stats = False
    assert await out.deliver_once() == 1
    assert len(be.stats_events) == 1 and store.outbox_depth() == 0


async def test_store_false_feeds_stats_inline_and_reports_failure(store: CdrStore):
    be = FakeBackends(with_raw_run=False, fail_stats=True)
    flags = ProcessFlags.parse(["*store:false"])
    res = await process_cdr(_event(), flags, be, store, NO_WAIT)
    assert res.partially_executed and store.count_cdrs() == 0 and store.outbox_depth() == 0


async def test_flags_switch_steps_off(store: CdrStore):
    be = FakeBackends()
    flags = ProcessFlags.parse(["*chargers:false", "*rals:false", "*stats:false"])
    res = await process_cdr(_event(RunID="custom"), flags, be, store, NO_WAIT)
    assert [r.cdr.run_id for r in res.runs] == ["custom"]
    assert store.get_cdrs()[0].cost == Decimal(-1)
    await _deliver(store, be)
    assert be.debit_calls == 0 and be.stats_events == [] and len(be.threshold_events) == 1
    with pytest.raises(ProcessError, match="unknown CDR flag"):
        ProcessFlags.parse(["*ralz"])


class CrashAfterDebit(FakeBackends):
    async def rals_debit(self, cd, request_id, request_type):
        await super().rals_debit(cd, request_id, request_type)
        raise RuntimeError("process killed after the debit")


async def test_crash_after_debit_is_resumed_without_a_second_charge(store: CdrStore):
    crashing = CrashAfterDebit(with_raw_run=False)
    with pytest.raises(RuntimeError):
        await process_cdr(_event(), ProcessFlags(), crashing, store, NO_WAIT)
    st, = store.get_stored()
    assert st.rating_state == "pending" and crashing.balances["1001"] == Decimal("9.3582")
    # The restarted process (same RALs, whose journal knows the request id) sweeps.
    be = FakeBackends(with_raw_run=False, balances=crashing.balances, debits=crashing.debits)
    # fresh pending: maybe still in flight elsewhere, so not resumed; not "stored" either (that
    # would end the sender's retries while no cost is written): retry later
    with pytest.raises(RatingUnavailable):
        await process_cdr(_event(), ProcessFlags(), be, store, replace(NO_WAIT, other_rating_wait_s=0.05))
    assert be.debit_calls == 0
    assert await resume_pending(be, store, older_than=timedelta(0)) == 1
    st, = store.get_stored()
    assert st.rating_state == "rated" and st.cdr.cost == Decimal("0.6418")
    assert be.balances["1001"] == Decimal("9.3582")
    assert await resume_pending(be, store, older_than=timedelta(0)) == 0


async def test_charger_error_is_reported(store: CdrStore):
    class Broken(FakeBackends):
        async def chargers_process_event(self, event):
            raise BackendError("SERVER_ERROR", "down")
    with pytest.raises(ProcessError, match="CHARGERS_ERROR"):
        await process_cdr(_event(), ProcessFlags(), Broken(), store, NO_WAIT)
    assert store.count_cdrs() == 0
