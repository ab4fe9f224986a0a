"""The first call, end to end: the whole suite as processes (`cgr up` on Postgres with the
tutorial tariff plan), driven through SM's TCP port exactly as OpenSIPS drives it; the balance,
the CDRs and their exactly-once storage are checked over gRPC."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, rals_pb2, rals_pb2_grpc
from tests.opensips_client import FakeOpenSIPS
from tests.suite import REPO, Suite, suite_env

pytestmark = pytest.mark.e2e


def monetary(acc: rals_pb2.Account) -> Decimal:
    return sum((Decimal(b.value) for b in acc.balances if b.type == "*monetary"), Decimal(0))


async def wait_for_cdrs(cdrs, flt, n: int, timeout: float = 15.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        found = list((await cdrs.GetCDRs(flt)).cdrs)
        if len(found) >= n or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


@pytest.fixture
def suite(pg_url):
    env = suite_env(pg_url, CGRPY_DEBIT_INTERVAL="1s")
    with Suite(env, "--tariffplan", str(REPO / "tariffplans" / "tutorial")) as s:
        yield s


async def test_prepaid_call_is_charged_and_its_cdrs_stored_once(suite):
    host, port = suite.env["CGRPY_OPENSIPS_LISTEN"].split(":")
    now = int(time.time())
    call = {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
            "OriginID": "e2e-1@127.0.0.1", "Account": "1001", "Destination": "1002"}
    async with grpc.aio.insecure_channel(suite.addr("rals")) as rch, \
            grpc.aio.insecure_channel(suite.addr("cdre")) as cch, \
            FakeOpenSIPS(host, int(port)) as osips:
        rals = rals_pb2_grpc.RalsServiceStub(rch)
        cdrs = cdre_pb2_grpc.CdrServiceStub(cch)
        before = monetary(await rals.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1001")))
        assert before == Decimal(10)

        auth = await osips.call("SessionSv1.AuthorizeEventWithDigest", {**call, "SetupTime": str(now)})
        assert auth["error"] is None, auth
        assert auth["result"]["MaxUsage"] > 0  # seconds

        init = await osips.call("SessionSv1.InitiateSession",
                                {**call, "SetupTime": str(now), "AnswerTime": str(now),
                                 "DialogID": 515806928, "DialogEntry": 1891}, InitSession=True)
        assert init["error"] is None, init
        assert init["result"]["MaxUsage"] > 0  # nanoseconds

        await asyncio.sleep(1.5)  # SM's debit loop runs (debit interval 1s)
        term = await osips.call("SessionSv1.TerminateSession",
                                {**call, "AnswerTime": str(now), "Usage": "2s"}, TerminateSession=True)
        assert term == {"id": term["id"], "result": "OK", "error": None}
        cdr_event = {**call, "Usage": "2s", "AnswerTime": str(now), "DisconnectCause": "Downstream BYE"}
        assert (await osips.call("SessionSv1.ProcessCDR", cdr_event))["result"] == "OK"

        # RT_20CNT: 0.4 connect fee + one 60 s increment at 0.2/min = 0.6
        after = monetary(await rals.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1001")))
        assert after == Decimal("9.4")

        # SM answers once cdre stored the CDR (or, had cdre failed, its spool: then a moment later)
        flt = cdre_pb2.CDRFilter(origin_ids=["e2e-1@127.0.0.1"])
        stored = await wait_for_cdrs(cdrs, flt, 2)
        by_run = {c.run_id: c for c in stored}
        assert set(by_run) == {"*default", "*raw"}
        assert by_run["*default"].cost == "0.6"
        assert by_run["*default"].usage_ns == 2_000_000_000
        assert by_run["*default"].request_type == "*prepaid"

        # OpenSIPS (or a retry) posts the same CDR again: nothing new is stored or charged
        assert (await osips.call("SessionSv1.ProcessCDR", cdr_event))["result"] == "OK"
        await asyncio.sleep(1.0)  # a repeat that went through the spool would be delivered by now
        assert (await cdrs.CountCDRs(flt)).count == 2
        again = monetary(await rals.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1001")))
        assert again == Decimal("9.4")
