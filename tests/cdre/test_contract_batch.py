"""The batch contracts against real servers: cdre ProcessCDRs and the session cost inside
ProcessCDR, StatS/ThresholdS ProcessEvents (dedup by event id), and cdre's outbox (events of a
stored CDR reach StatS/ThresholdS after the reply, also across a cdre restart)."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from decimal import Decimal

import grpc

from cgrates.v1 import (
    cdre_pb2,
    cdre_pb2_grpc,
    common_pb2,
    stats_pb2,
    stats_pb2_grpc,
    thresholds_pb2,
    thresholds_pb2_grpc,
)
from cgrpy.cgrid import cgrid
from cgrpy.event import CGREvent
from cgrpy.storage.db import make_engine
from cgrpy.units import SECOND
from cgrpy.wire import event_to_pb
from services.cdre.server import CdreServer
from services.rals.server import RalsServer
from services.stats.server import StatsServer
from services.thresholds.server import ThresholdsServer
from tests.cdre.conftest import Stack
from tests.cdre.test_contract import NOWHERE, OFF, cdr_event, req
from tests.cdre.test_contract_pipeline import THD_1002, balance, eventually
from tests.harness import serve

STATS2 = common_pb2.TenantID(tenant="cgrates.org", id="Stats2")


def _store(db_url: str):
    from services.cdre.store import CdrStore

    return CdrStore(make_engine(db_url))


async def test_process_cdrs_answers_each_item_in_order(db_url):
    async with serve(CdreServer, db_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        batch = cdre_pb2.ProcessCDRsRequest(cdrs=[
            req(cdr_event("b-1")),
            req(cdr_event("b-2", usage="soon")),  # bad field: INVALID_ARGUMENT, nothing stored
            req(cdr_event("b-1")),  # the same CDR again in the same batch
            cdre_pb2.ProcessCDRRequest(),  # no event
            req(cdr_event("b-3")),
        ])
        resp = await stub.ProcessCDRs(batch)
        r = resp.results
        assert len(r) == 5
        assert r[0].code == 0 and r[4].code == 0 and r[2].code == 0
        assert [c.origin_id for c in r[0].response.cdrs] == ["b-1"]
        # one of the two b-1 items stored it, the other is told duplicate
        assert sorted([r[0].response.duplicate, r[2].response.duplicate]) == [False, True]
        assert r[1].code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and "Usage" in r[1].message
        assert (r[3].code, r[3].message) == (grpc.StatusCode.INVALID_ARGUMENT.value[0],
                                             "MANDATORY_IE_MISSING: [Event]")
        assert (await stub.CountCDRs(cdre_pb2.CDRFilter())).count == 2
        # the whole batch again (a spool retry): everything duplicate, nothing new
        again = await stub.ProcessCDRs(batch)
        assert [x.response.duplicate for x in again.results if x.code == 0] == [True] * 3
        assert (await stub.CountCDRs(cdre_pb2.CDRFilter())).count == 2


async def test_session_cost_travels_inside_process_cdr(db_url):
    async with serve(CdreServer, db_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        cid = cgrid("pre-9", "127.0.0.1")
        r = req(cdr_event("pre-9", rt="*prepaid"), [f for f in OFF if f != "*rals:false"])
        r.session_cost.CopyFrom(cdre_pb2.SessionCost(
            cgrid=cid, run_id="*default", origin_host="127.0.0.1", origin_id="pre-9",
            usage_ns=60 * SECOND, cost="0.6"))
        # RALs is unreachable: the CDR takes the session cost carried in the request
        run, = (await stub.ProcessCDR(r)).cdrs
        assert (run.cost, run.cost_source, run.extra_info) == ("0.6", "*sessions", "")
        store = _store(db_url)
        try:
            sc = await asyncio.to_thread(store.get_session_cost, cid, "*default")
            assert sc is not None and sc.cost == Decimal("0.6") and sc.usage_ns == 60 * SECOND
        finally:
            store.close()
            store.engine.dispose()
        again = await stub.ProcessCDR(r)
        assert again.duplicate and again.cdrs[0].cost == "0.6"
        bad = req(cdr_event("pre-10", rt="*prepaid"))
        bad.session_cost.CopyFrom(cdre_pb2.SessionCost(cgrid="x", cost="1,5"))
        try:
            await stub.ProcessCDR(bad)
            raise AssertionError("a bad session cost was accepted")
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "cost" in e.details()


async def test_concurrent_batches_charge_and_count_once(stack: Stack):
    calls = [req(cdr_event(f"cc-{i}", rt="*postpaid", usage="60s"), []) for i in range(5)]
    batch = cdre_pb2.ProcessCDRsRequest(cdrs=calls)
    replies = await asyncio.gather(*(stack.cdrs.ProcessCDRs(batch) for _ in range(4)))
    for rep in replies:
        assert all(x.code == 0 for x in rep.results), [x.message for x in rep.results]
    # each (CGRID, RunID) stored once, though four batches raced to store it
    assert (await stack.cdrs.CountCDRs(cdre_pb2.CDRFilter())).count == 10  # *default + *raw
    assert await balance(stack.rals, "1001") == Decimal("7")  # 5 x 0.6, once

    async def counted_once() -> None:
        m = await stack.stats.GetQueueStringMetrics(STATS2)
        assert dict(m.metrics) == {"*tcc": "3", "*tcd": "5m0s"}

    await eventually(counted_once)
    await asyncio.sleep(0.3)  # nothing late arrives to count twice
    await counted_once()


def _cdr_like(eid: str, account: str) -> CGREvent:
    return CGREvent("cgrates.org", eid, None, {
        "EventType": "CDR", "RunID": "*default", "Account": account, "Subject": account,
        "Destination": "1002" if account == "1001" else "1001", "Usage": 60 * SECOND,
        "Cost": Decimal("0.6"), "AnswerTime": "2014-08-04T13:00:00Z", "RequestType": "*postpaid",
    })


async def test_stats_and_thresholds_process_events_skip_repeated_ids(stack: Stack):
    ev = _cdr_like("ev-1", "1001")
    sreq = stats_pb2.StatsProcessEventsRequest(events=[
        stats_pb2.StatsProcessEventRequest(event=event_to_pb(ev)),
        stats_pb2.StatsProcessEventRequest(event=event_to_pb(ev)),
    ])
    resp = await stack.stats.ProcessEvents(sreq)
    first, second = resp.results
    assert first.event_id == "ev-1" and "Stats2" in first.ids and not first.duplicate
    assert second.duplicate and not second.ids
    again = await stack.stats.ProcessEvents(sreq)  # an at-least-once sender's retry
    assert [r.duplicate for r in again.results] == [True, True]
    m = await stack.stats.GetQueueStringMetrics(STATS2)
    assert dict(m.metrics) == {"*tcc": "0.6", "*tcd": "1m0s"}
    # an event no queue wants is an answer (NOT_FOUND), not a failed batch
    other = CGREvent("cgrates.org", "ev-none", None, {"Account": "nobody"})
    r = await stack.stats.ProcessEvents(stats_pb2.StatsProcessEventsRequest(events=[
        stats_pb2.StatsProcessEventRequest(event=event_to_pb(other))]))
    assert r.results[0].error == "NOT_FOUND"

    tev = _cdr_like("ev-2", "1002")
    treq = thresholds_pb2.ThresholdsProcessEventsRequest(events=[
        thresholds_pb2.ThresholdsProcessEventRequest(event=event_to_pb(tev))] * 2)
    tr = await stack.thresholds.ProcessEvents(treq)
    assert "THD_ACNT_1002" in tr.results[0].ids and tr.results[1].duplicate
    await stack.thresholds.ProcessEvents(treq)
    thd = json.loads((await stack.thresholds.GetThreshold(THD_1002)).json)
    assert thd["Hits"] == 1


async def test_outbox_events_survive_a_cdre_restart(db_url):
    """CDRs stored while StatS/ThresholdS are unreachable, a deliverer that claimed the
    events and died before acknowledging them: a new cdre delivers each event once."""
    async with AsyncExitStack() as es:
        rals = await es.enter_async_context(serve(RalsServer, db_url))  # loads the plan
        env = {**NOWHERE, "CGRPY_RALS_ADDR": rals.addr}
        flags = ["*attributes:false", "*chargers:false"]  # *rals, *store, *stats, *thresholds
        async with serve(CdreServer, db_url, tariffplan=None, env=env) as first:
            stub = cdre_pb2_grpc.CdrServiceStub(first.channel)
            for i in range(3):
                resp = await stub.ProcessCDR(req(cdr_event(f"ob-{i}", usage="60s"), flags))
                assert resp.cdrs[0].cost == "0.6"  # replied without StatS/ThresholdS
        store = _store(db_url)
        try:
            # one row per CDR's transaction, owed to both receivers
            assert await asyncio.to_thread(store.outbox_depth) == 3
            # the first cdre, stopped while its deliverer was failing, handed its claim back:
            # no row stays held longer than its retry backoff (not the 30 s lease)
            for _ in range(75):
                rows = await asyncio.to_thread(store.claim_outbox, 6, 0)
                if sum(len(r.events) * len(r.targets) for r in rows) == 6:
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("outbox rows still held by a stopped cdre")
            # a deliverer that dies holding its claim: the lease runs out, nothing is lost
            claimed = await asyncio.to_thread(store.claim_outbox, 2, int(0.5 * 1e9))
            assert len(claimed) == 2
        finally:
            store.close()
        thr = await es.enter_async_context(
            serve(ThresholdsServer, db_url, tariffplan=None, env=env))
        env["CGRPY_THRESHOLDS_ADDR"] = thr.addr
        st = await es.enter_async_context(serve(StatsServer, db_url, tariffplan=None, env=env))
        env["CGRPY_STATS_ADDR"] = st.addr
        await es.enter_async_context(serve(CdreServer, db_url, tariffplan=None, env=env))
        stats = stats_pb2_grpc.StatsServiceStub(st.channel)
        thresholds = thresholds_pb2_grpc.ThresholdsServiceStub(thr.channel)

        async def all_delivered() -> None:
            m = await stats.GetQueueStringMetrics(STATS2)
            assert dict(m.metrics) == {"*tcc": "1.8", "*tcd": "3m0s"}
            assert await asyncio.to_thread(store.outbox_depth) == 0

        await eventually(all_delivered, timeout=30)
        # THD_ACNT_1001 is one-shot: it fired (and is gone) on the first delivered event
        try:
            await thresholds.GetThreshold(common_pb2.TenantID(tenant="cgrates.org",
                                                              id="THD_ACNT_1001"))
            raise AssertionError("THD_ACNT_1001 did not fire")
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND
        store.engine.dispose()
