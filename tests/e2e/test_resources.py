"""Concurrent-call limits end to end: the whole suite as processes (`cgr up` on Postgres with the
tutorial tariff plan), calls driven through SM's TCP port exactly as OpenSIPS's `cgrates` module
sends them (the tutorial's *resources flags included). ResGroup1 (FLTR_RES: accounts 1001-1003
together, limit 7, stored, usages until released) lets seven calls up and refuses the eighth with
CGRateS's error; a hang-up frees a slot; a killed and restarted ResourceS still counts the calls
that are up; the JSON-RPC ResourceSv1 API sees the same."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import grpc
import pytest

from cgrates.v1 import common_pb2, resources_pb2_grpc
from tests.apier.jsonrpc_client import TcpClient
from tests.opensips_client import FakeOpenSIPS
from tests.suite import REPO, Suite, service_children, suite_env

pytestmark = pytest.mark.e2e

DEST = {"1001": "1002", "1002": "1001", "1003": "1001"}


@pytest.fixture
def suite(pg_url):
    env = suite_env(pg_url, CGRPY_DEBIT_INTERVAL="10s")
    with Suite(env, "--tariffplan", str(REPO / "tariffplans" / "tutorial")) as s:
        yield s


def call_event(n: int, account: str, now: int) -> dict:
    return {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
            "OriginID": f"res-{n}@127.0.0.1", "Account": account, "Destination": DEST[account],
            "SetupTime": str(now)}


async def place(osips: FakeOpenSIPS, n: int, account: str) -> tuple[dict, dict | None]:
    """Authorize, then (if authorized) answer: what OpenSIPS does for one INVITE."""
    now = int(time.time())
    ev = call_event(n, account, now)
    auth = await osips.call("SessionSv1.AuthorizeEventWithDigest", ev)
    if auth["error"] is not None:
        return auth, None
    init = await osips.call("SessionSv1.InitiateSession",
                            {**ev, "AnswerTime": str(now), "DialogID": 1000 + n, "DialogEntry": n},
                            InitSession=True)
    return auth, init


async def hang_up(osips: FakeOpenSIPS, n: int, account: str) -> dict:
    now = int(time.time())
    return await osips.call("SessionSv1.TerminateSession",
                            {**call_event(n, account, now), "AnswerTime": str(now), "Usage": "2s",
                             "DialogID": 1000 + n, "DialogEntry": n}, TerminateSession=True)


async def usages(suite: Suite) -> list[str]:
    async with grpc.aio.insecure_channel(suite.addr("resources")) as ch:
        got = await resources_pb2_grpc.ResourcesServiceStub(ch).GetResource(
            common_pb2.TenantID(tenant="cgrates.org", id="ResGroup1"), timeout=5)
    return sorted(json.loads(got.json)["Usages"])


async def jsonrpc(suite: Suite, method: str, params: dict) -> dict:
    def call() -> dict:
        client = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"], timeout=10)
        try:
            return client.call(method, params)
        finally:
            client.close()
    return await asyncio.to_thread(call)


async def test_eight_calls_meet_the_limit_of_seven_and_a_hangup_frees_a_slot(suite: Suite) -> None:
    host, port = suite.env["CGRPY_OPENSIPS_LISTEN"].split(":")
    accounts = [("1001", "1002", "1003")[i % 3] for i in range(8)]
    async with FakeOpenSIPS(host, int(port)) as osips:
        placed = await asyncio.gather(*(place(osips, n, accounts[n]) for n in range(7)))
        for auth, init in placed:
            assert auth["error"] is None, auth
            assert auth["result"]["ResourceAllocation"] == "ResGroup1"
            assert init is not None and init["error"] is None, init
            assert init["result"]["ResourceAllocation"] == "ResGroup1"
        assert len(await usages(suite)) == 7

        auth8, init8 = await place(osips, 7, accounts[7])
        assert auth8 == {"id": auth8["id"], "result": None, "error": "RESOURCES_ERROR:RESOURCE_UNAUTHORIZED"}
        assert init8 is None

        # the JSON-RPC API agrees
        api = await jsonrpc(suite, "ResourceSv1.AuthorizeResources",
                            {"CGREvent": {"Tenant": "cgrates.org", "ID": "api-1", "Event": {"Account": "1002"}},
                             "UsageID": "api-1", "Units": 1})
        assert api["error"] == "RESOURCE_UNAUTHORIZED", api

        # ResourceS killed: `cgr up` restarts it and the stored usages come back
        children = service_children(suite.proc.pid)
        os.kill(children["resources"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if len(await usages(suite)) == 7:
                    break
            except grpc.aio.AioRpcError:
                pass
            assert time.monotonic() < deadline, "ResourceS not back with its usages"
            await asyncio.sleep(0.3)
        assert service_children(suite.proc.pid)["resources"] != children["resources"]

        # one hang-up frees a slot: the eighth call now goes through
        term = await hang_up(osips, 0, accounts[0])
        assert term["error"] is None, term
        assert "res-0@127.0.0.1" not in await usages(suite)
        auth8, init8 = await place(osips, 7, accounts[7])
        assert auth8["error"] is None and auth8["result"]["ResourceAllocation"] == "ResGroup1"
        assert init8 is not None and init8["error"] is None
        assert len(await usages(suite)) == 7
        for n in range(1, 8):
            assert (await hang_up(osips, n, accounts[n]))["error"] is None
        assert await usages(suite) == []
