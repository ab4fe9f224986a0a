"""Postgres stopped during CDR ingestion → SM's spool keeps the CDRs →
Postgres back → every CDR stored exactly once per run, charged exactly once.

The whole suite runs as processes (`cgr up`, tutorial plan) on a *private* Postgres cluster
(tests/pgcluster.py), because stopping the machine's shared Postgres would break everyone
else's tests. Calls go through SM's OpenSIPS port (FakeOpenSIPS): authorize, initiate,
terminate while the store is up, then the CDRs: the first batch is posted concurrently and the
database is stopped while it is being ingested, the second batch is posted while it is down.
OpenSIPS gets "OK" for every CDR (SM spools them, depth visible on its metrics endpoint);
after the restart the spool drains and the CDR table holds each (call, run) once.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, rals_pb2, rals_pb2_grpc
from cgrpy.event import CGREvent
from cgrpy.runtime.healthcheck import check
from cgrpy.wire import event_to_pb
from services.cdre.server import CdreServer
from tests.harness import serve
from tests.opensips_client import FakeOpenSIPS
from tests.pgcluster import PgCluster, private_pg  # noqa: F401 - fixture
from tests.suite import REPO, Suite, suite_env

pytestmark = pytest.mark.e2e

TENANT = "cgrates.org"
N_PREPAID = 6  # 1001 -> 1002, RP_1001 / RT_20CNT, 2 s: 0.4 connect + one 60 s increment at 0.2 = 0.6
N_POSTPAID = 6  # 1002 -> 1001, RP_1002 / RT_20CNT, 65 s: 0.4 + 0.2 + 5 s at 0.1/min = 0.60833 -> *up 4 = 0.6084
PREPAID_COST = Decimal("0.6")
POSTPAID_COST = Decimal("0.6084")


@pytest.fixture
def suite(private_pg: PgCluster) -> Iterator[Suite]:  # noqa: F811 - pytest fixture injection
    env = suite_env(private_pg.url, CGRPY_DEBIT_INTERVAL="1s")
    with Suite(env, "--tariffplan", str(REPO / "tariffplans" / "tutorial")) as s:
        yield s


def spool_depth(suite: Suite) -> int:
    port = suite.env["CGRPY_SM_METRICS_PORT"]
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(r"^cgrpy_sm_cdr_spool_depth(?:\{\})? (\S+)$", body, re.M)
    assert m, "cgrpy_sm_cdr_spool_depth missing from SM's /metrics"
    return int(float(m.group(1)))


async def balance(rals: rals_pb2_grpc.RalsServiceStub, account: str) -> Decimal:
    acc = await rals.GetAccount(rals_pb2.AccountRequest(tenant=TENANT, account=account))
    return sum((Decimal(b.value) for b in acc.balances if b.type == "*monetary"), Decimal(0))


def call_fields(i: int, prepaid: bool) -> dict[str, str]:
    account, dest = ("1001", "1002") if prepaid else ("1002", "1001")
    return {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "OriginID": f"outage-{i}@127.0.0.1",
            "Account": account, "Destination": dest,
            "RequestType": "*prepaid" if prepaid else "*postpaid"}


async def run_call(osips: FakeOpenSIPS, call: dict[str, str], usage: str, now: int) -> None:
    """authorize, initiate, terminate: everything but the CDR."""
    auth = await osips.call("SessionSv1.AuthorizeEventWithDigest", {**call, "SetupTime": str(now)})
    assert auth["error"] is None, auth
    init = await osips.call("SessionSv1.InitiateSession",
                            {**call, "SetupTime": str(now), "AnswerTime": str(now),
                             "DialogID": 1000, "DialogEntry": 1}, InitSession=True)
    assert init["error"] is None, init
    term = await osips.call("SessionSv1.TerminateSession", {**call, "AnswerTime": str(now), "Usage": usage},
                            TerminateSession=True)
    assert term["result"] == "OK", term


async def post_cdr(osips: FakeOpenSIPS, call: dict[str, str], usage: str, now: int) -> None:
    reply = await osips.call("SessionSv1.ProcessCDR",
                             {**call, "Usage": usage, "SetupTime": str(now), "AnswerTime": str(now),
                              "DisconnectCause": "Downstream BYE"})
    assert reply == {"id": reply["id"], "result": "OK", "error": None}, reply


async def test_cdrs_survive_a_store_outage_and_are_stored_once(suite: Suite, private_pg: PgCluster) -> None:  # noqa: F811
    now = int(time.time())
    calls = [(call_fields(i, prepaid=i % 2 == 0), "2s" if i % 2 == 0 else "65s")
             for i in range(N_PREPAID + N_POSTPAID)]
    host, port = suite.env["CGRPY_OPENSIPS_LISTEN"].split(":")
    async with grpc.aio.insecure_channel(suite.addr("rals")) as rch, \
            grpc.aio.insecure_channel(suite.addr("cdre")) as cch, \
            FakeOpenSIPS(host, int(port)) as osips:
        rals = rals_pb2_grpc.RalsServiceStub(rch)
        cdrs = cdre_pb2_grpc.CdrServiceStub(cch)
        assert await balance(rals, "1001") == Decimal(10)
        assert await balance(rals, "1002") == Decimal(10)

        for call, usage in calls:
            await run_call(osips, call, usage, now)
        # prepaid money moved in the sessions already; postpaid moves when cdre rates the CDR
        assert await balance(rals, "1001") == Decimal(10) - N_PREPAID * PREPAID_COST

        first, second = calls[: len(calls) // 2], calls[len(calls) // 2:]
        # first batch in flight while the database goes away
        posting = asyncio.gather(*(post_cdr(osips, c, u, now) for c, u in first))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(private_pg.stop)
        await posting
        for call, usage in second:
            await post_cdr(osips, call, usage, now)  # OpenSIPS still gets OK: SM spools it
        depth_down = await asyncio.to_thread(spool_depth, suite)
        assert depth_down >= len(second), depth_down

        await asyncio.sleep(3)  # a few forwarder retries against a dead store
        assert await asyncio.to_thread(spool_depth, suite) >= len(second)
        # nothing crashed: every service still answers its health check (SM's spool goes on)
        for name in ("sm", "cdre", "rals"):
            assert await asyncio.to_thread(check, suite.addr(name)) == "SERVING", name

        await asyncio.to_thread(private_pg.start)

        # the spool drains (forwarder backoff is capped at 30 s)
        deadline = time.monotonic() + 60
        while (depth := await asyncio.to_thread(spool_depth, suite)) > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert depth == 0, f"spool still holds {depth} CDRs 60 s after the store came back"

        origin_ids = [c["OriginID"] for c, _ in calls]
        stored = list((await cdrs.GetCDRs(cdre_pb2.CDRFilter(origin_ids=origin_ids))).cdrs)
        per_run = Counter((c.origin_id, c.run_id) for c in stored)
        assert per_run == Counter({(oid, run): 1 for oid in origin_ids for run in ("*default", "*raw")})
        for c in stored:
            prepaid = c.account == "1001"
            assert c.request_type == ("*none" if c.run_id == "*raw" else ("*prepaid" if prepaid else "*postpaid"))
            if c.run_id == "*default":
                assert Decimal(c.cost) == (PREPAID_COST if prepaid else POSTPAID_COST), c
                assert c.usage_ns == (2 if prepaid else 65) * 1_000_000_000

        # every run charged exactly once: balances moved by the sum of the *default costs
        assert await balance(rals, "1001") == Decimal(10) - N_PREPAID * PREPAID_COST
        assert await balance(rals, "1002") == Decimal(10) - N_POSTPAID * POSTPAID_COST

        # a late repeat of every CDR (OpenSIPS/SM retry) changes nothing
        for call, usage in calls:
            await post_cdr(osips, call, usage, now)
        deadline = time.monotonic() + 20
        while await asyncio.to_thread(spool_depth, suite) > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert (await cdrs.CountCDRs(cdre_pb2.CDRFilter(origin_ids=origin_ids))).count == 2 * len(calls)
        assert await balance(rals, "1002") == Decimal(10) - N_POSTPAID * POSTPAID_COST


# --- the window between reserving a CDR row and writing its cost ------------------------------


class RalsDyingWithTheStore(rals_pb2_grpc.RalsServiceServicer):
    """A RALs whose first Debit finds the store gone: it stops the private cluster and is
    UNAVAILABLE until the cluster is back; then it debits (0.6, as RT_20CNT for 2 s)."""

    def __init__(self, cluster: PgCluster) -> None:
        self.cluster = cluster
        self.request_ids: list[str] = []

    async def Debit(self, request: rals_pb2.DebitRequest, context: grpc.aio.ServicerContext) -> rals_pb2.CostResponse:
        self.request_ids.append(request.request_id)
        if len(self.request_ids) == 1:
            await asyncio.to_thread(self.cluster.stop)
        if not await asyncio.to_thread(self.cluster.running):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "SERVER_ERROR: store down")
        return rals_pb2.CostResponse(cost="0.6", usage_ns=request.call.usage_ns,
                                     duplicate=self.request_ids.count(request.request_id) > 1)


async def test_cdr_reserved_when_the_store_died_is_rated_on_the_retry(private_pg: PgCluster) -> None:  # noqa: F811
    """The store dies after cdre reserved the run's row and before it wrote the cost: the row
    stays ``pending`` and ProcessCDR fails, so SM's spool posts it again once the store is back.
    That retry must finish the row (debit with the same idempotency key), not answer
    "duplicate" and leave it pending forever (the spool would then drop it: a lost charge)."""
    rals = RalsDyingWithTheStore(private_pg)
    server = grpc.aio.server()
    rals_pb2_grpc.add_RalsServiceServicer_to_server(rals, server)
    rals_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with serve(CdreServer, private_pg.url, tariffplan="tutorial",
                         env={"CGRPY_RALS_ADDR": f"127.0.0.1:{rals_port}"}) as cdre:
            stub = cdre_pb2_grpc.CdrServiceStub(cdre.channel)
            ev = CGREvent(TENANT, "ev-window", None, {
                "OriginID": "window-1", "OriginHost": "127.0.0.1", "RequestType": "*postpaid",
                "Account": "1001", "Destination": "1002", "Usage": "2s",
                "SetupTime": "2026-01-10T10:00:00Z", "AnswerTime": "2026-01-10T10:00:00Z"})
            req = cdre_pb2.ProcessCDRRequest(event=event_to_pb(ev), flags=[
                "*chargers:false", "*attributes:false", "*stats:false", "*thresholds:false"])
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.ProcessCDR(req)  # store down before the cost could be written
            await asyncio.to_thread(private_pg.start)

            await stub.ProcessCDR(req)  # the spool's retry
            stored = list((await stub.GetCDRs(cdre_pb2.CDRFilter(origin_ids=["window-1"]))).cdrs)
            assert [(c.run_id, c.cost) for c in stored] == [("*default", "0.6")]
            # every debit carried the run's one idempotency key: RALs charges it once
            assert set(rals.request_ids) == {f"{stored[0].cgrid}:*default"}

            assert (await stub.ProcessCDR(req)).duplicate  # a third post is a plain duplicate
            assert rals.request_ids.count(f"{stored[0].cgrid}:*default") == len(rals.request_ids)
    finally:
        await server.stop(0)
