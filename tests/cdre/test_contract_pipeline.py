"""ProcessCDR through every real service on the tutorial plan: ChargerS (with AttributeS),
AttributeS, RALs, StatS, ThresholdS, each its own gRPC server on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import (
    cdre_pb2,
    cdre_pb2_grpc,
    common_pb2,
    rals_pb2,
    rals_pb2_grpc,
    stats_pb2_grpc,
    thresholds_pb2_grpc,
)
from services.attributes.server import AttributesServer
from services.cdre.server import CdreServer
from services.chargers.server import ChargersServer
from services.rals.server import RalsServer
from services.stats.server import StatsServer
from services.thresholds.server import ThresholdsServer
from tests.cdre.test_contract import cdr_event, req
from tests.harness import serve

THD_1001 = common_pb2.TenantID(tenant="cgrates.org", id="THD_ACNT_1001")
THD_1002 = common_pb2.TenantID(tenant="cgrates.org", id="THD_ACNT_1002")


@dataclass
class Stack:
    cdrs: cdre_pb2_grpc.CdrServiceStub
    rals: rals_pb2_grpc.RalsServiceStub
    stats: stats_pb2_grpc.StatsServiceStub
    thresholds: thresholds_pb2_grpc.ThresholdsServiceStub


@pytest.fixture
async def stack(db_url) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as es:
        rals = await es.enter_async_context(serve(RalsServer, db_url))
        env = {"CGRPY_RALS_ADDR": rals.addr}
        attrs = await es.enter_async_context(serve(AttributesServer, db_url, tariffplan=None))
        env["CGRPY_ATTRIBUTES_ADDR"] = attrs.addr
        thr = await es.enter_async_context(
            serve(ThresholdsServer, db_url, tariffplan=None, env=env))
        env["CGRPY_THRESHOLDS_ADDR"] = thr.addr
        st = await es.enter_async_context(serve(StatsServer, db_url, tariffplan=None, env=env))
        env["CGRPY_STATS_ADDR"] = st.addr
        ch = await es.enter_async_context(serve(ChargersServer, db_url, tariffplan=None, env=env))
        env["CGRPY_CHARGERS_ADDR"] = ch.addr
        cdre = await es.enter_async_context(serve(CdreServer, db_url, tariffplan=None, env=env))
        yield Stack(
            cdre_pb2_grpc.CdrServiceStub(cdre.channel),
            rals_pb2_grpc.RalsServiceStub(rals.channel),
            stats_pb2_grpc.StatsServiceStub(st.channel),
            thresholds_pb2_grpc.ThresholdsServiceStub(thr.channel),
        )


async def balance(rals: rals_pb2_grpc.RalsServiceStub, account: str) -> Decimal:
    acc = await rals.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account=account))
    return sum((Decimal(b.value) for b in acc.balances if b.type == "*monetary"), Decimal(0))


async def test_postpaid_cdr_through_every_service(stack: Stack):
    # default flags: *attributes, *chargers, *rals, *store, *stats, *thresholds
    resp = await stack.cdrs.ProcessCDR(req(cdr_event("full-1", rt="*postpaid", usage="60s"), []))
    assert not resp.duplicate
    runs = {c.run_id: c for c in resp.cdrs}
    # tutorial chargers: DEFAULT (*default, no attributes) and Raw (*raw, RequestType *none)
    assert sorted(runs) == ["*default", "*raw"]
    assert (runs["*default"].request_type, runs["*default"].cost) == ("*postpaid", "0.6")
    assert (runs["*raw"].request_type, runs["*raw"].cost) == ("*none", "-1")
    assert runs["*default"].cgrid == runs["*raw"].cgrid
    assert await balance(stack.rals, "1001") == Decimal("9.4")

    # posted again: nothing charged, nothing stored, the caller is told
    again = await stack.cdrs.ProcessCDR(req(cdr_event("full-1", rt="*postpaid", usage="60s"), []))
    assert again.duplicate and sorted(c.run_id for c in again.cdrs) == ["*default", "*raw"]
    assert await balance(stack.rals, "1001") == Decimal("9.4")
    assert (await stack.cdrs.CountCDRs(cdre_pb2.CDRFilter())).count == 2

    # StatS got the *default run once (Stats2's filter FLTR_ACNT_1001_1002 wants RunID
    # *default, so the *raw run matches no queue: NOT_FOUND, not an error)
    metrics = await stack.stats.GetQueueStringMetrics(
        common_pb2.TenantID(tenant="cgrates.org", id="Stats2"))
    assert dict(metrics.metrics) == {"*tcc": "0.6", "*tcd": "1m0s"}
    # ThresholdS: THD_ACNT_1001 is one-shot (MaxHits 1): it fired and its state is gone
    # (profile-subsystems §ThresholdS, tutorial example)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.thresholds.GetThreshold(THD_1001)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_threshold_counts_every_run_of_a_1002_cdr(stack: Stack):
    before = json.loads((await stack.thresholds.GetThreshold(THD_1001)).json)
    assert before["Hits"] == 0
    resp = await stack.cdrs.ProcessCDR(req(cdr_event(
        "full-2", rt="*postpaid", account="1002", destination="1001", usage="1m25s"), []))
    # RP_1002 → DST_1001 → RT_20CNT, 85 s: §2.9 Ex.2 numbers, CDR cost PerformRounding'd
    assert {c.run_id: c.cost for c in resp.cdrs} == {"*default": "0.6418", "*raw": "-1"}
    # THD_ACNT_1002 (MaxHits -1) counts both runs of account 1002
    thd = json.loads((await stack.thresholds.GetThreshold(THD_1002)).json)
    assert thd["Hits"] == 2
    # untouched: 1001's one-shot threshold still waits
    assert json.loads((await stack.thresholds.GetThreshold(THD_1001)).json)["Hits"] == 0
