"""ProcessCDR through every real service on the tutorial plan: ChargerS (with AttributeS),
AttributeS, RALs, StatS, ThresholdS, each its own gRPC server on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import (
    cdre_pb2,
    common_pb2,
    rals_pb2,
    rals_pb2_grpc,
)
from tests.cdre.conftest import Stack
from tests.cdre.test_contract import cdr_event, req

THD_1001 = common_pb2.TenantID(tenant="cgrates.org", id="THD_ACNT_1001")
THD_1002 = common_pb2.TenantID(tenant="cgrates.org", id="THD_ACNT_1002")


async def eventually(check: Callable[[], Awaitable[None]], timeout: float = 15.0) -> None:
    """StatS/ThresholdS get a CDR's events from cdre's outbox after the reply, within ~50 ms
    (more on a loaded machine): retry ``check`` until it passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await check()
            return
        except (AssertionError, grpc.aio.AioRpcError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


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
    async def stats_counted() -> None:
        metrics = await stack.stats.GetQueueStringMetrics(
            common_pb2.TenantID(tenant="cgrates.org", id="Stats2"))
        assert dict(metrics.metrics) == {"*tcc": "0.6", "*tcd": "1m0s"}

    await eventually(stats_counted)

    # ThresholdS: THD_ACNT_1001 is one-shot (MaxHits 1): it fired and its state is gone
    async def threshold_gone() -> None:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.thresholds.GetThreshold(THD_1001)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

    await eventually(threshold_gone)


async def test_threshold_counts_every_run_of_a_1002_cdr(stack: Stack):
    before = json.loads((await stack.thresholds.GetThreshold(THD_1001)).json)
    assert before["Hits"] == 0
    resp = await stack.cdrs.ProcessCDR(req(cdr_event(
        "full-2", rt="*postpaid", account="1002", destination="1001", usage="1m25s"), []))
    # RP_1002 → DST_1001 → RT_20CNT, 85 s: the tutorial's numbers, CDR cost PerformRounding'd
    assert {c.run_id: c.cost for c in resp.cdrs} == {"*default": "0.6418", "*raw": "-1"}
    # THD_ACNT_1002 (MaxHits -1) counts both runs of account 1002
    async def two_hits() -> None:
        thd = json.loads((await stack.thresholds.GetThreshold(THD_1002)).json)
        assert thd["Hits"] == 2

    await eventually(two_hits)
    # untouched: 1001's one-shot threshold still waits
    assert json.loads((await stack.thresholds.GetThreshold(THD_1001)).json)["Hits"] == 0
