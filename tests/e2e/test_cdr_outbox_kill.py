"""kill -9 of cdre right after it stored CDRs: every CDR's event still reaches StatS, once.

The events ride in cdre's outbox (written in the CDR's transaction); whether the kill lands
before, during or after their delivery, the restarted cdre delivers what is left and StatS
skips ids it already counted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
import pytest

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, common_pb2, stats_pb2_grpc
from cgrpy.runtime.healthcheck import check
from tests.cdre.test_contract import cdr_event, req
from tests.suite import REPO, Suite, service_children, suite_env

pytestmark = pytest.mark.e2e

STATS2 = common_pb2.TenantID(tenant="cgrates.org", id="Stats2")
N = 20


async def _post(addr: str) -> None:
    flags = ["*attributes:false", "*chargers:false"]  # *rals, *store, *stats, *thresholds
    async with grpc.aio.insecure_channel(addr) as ch:
        stub = cdre_pb2_grpc.CdrServiceStub(ch)
        batch = cdre_pb2.ProcessCDRsRequest(
            cdrs=[req(cdr_event(f"kill-{i}", usage="60s"), flags) for i in range(N)])
        resp = await stub.ProcessCDRs(batch, timeout=60)
        assert all(r.code == 0 for r in resp.results), [r.message for r in resp.results]


async def _metrics(addr: str) -> dict[str, str]:
    async with grpc.aio.insecure_channel(addr) as ch:
        m = await stats_pb2_grpc.StatsServiceStub(ch).GetQueueStringMetrics(STATS2, timeout=5)
        return dict(m.metrics)


def test_kill_cdre_after_storing_loses_no_stats_event(sqlite_url):
    with Suite(suite_env(sqlite_url), "--tariffplan", str(REPO / "tariffplans" / "tutorial")) as suite:
        assert suite.proc is not None
        asyncio.run(_post(suite.addr("cdre")))
        old = service_children(suite.proc.pid)["cdre"]
        os.kill(old, signal.SIGKILL)  # replies were sent: the CDRs and their events are stored
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = service_children(suite.proc.pid).get("cdre")
            if new and new != old and check(suite.addr("cdre")) == "SERVING":
                break
            time.sleep(0.2)
        else:
            pytest.fail("cdre was not restarted:\n" + suite.read_output()[-3000:])
        want = {"*tcc": "12", "*tcd": "20m0s"}  # 20 calls of 60 s at 0.6, each counted once
        got: dict[str, str] = {}
        deadline = time.monotonic() + 60  # a claim held by the killed cdre expires in 30 s
        while time.monotonic() < deadline:
            got = asyncio.run(_metrics(suite.addr("stats")))
            if got == want:
                break
            time.sleep(0.5)
        assert got == want
        time.sleep(1.0)  # nothing arrives late to be counted twice
        assert asyncio.run(_metrics(suite.addr("stats"))) == want
