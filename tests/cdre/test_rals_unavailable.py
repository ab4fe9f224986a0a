"""RALs unreachable while a postpaid CDR arrives: the CDR is not stored unrated; the request fails
(so SM's spool retries it) and the retry charges it once under the same debit key."""

from __future__ import annotations

from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, rals_pb2, rals_pb2_grpc
from cgrpy.event import CGREvent
from cgrpy.wire import event_to_pb
from services.cdre.server import CdreServer
from services.rals.server import RalsServer
from tests.harness import serve
from tests.suite import free_port

FLAGS = ["*attributes:false", "*chargers:false", "*stats:false", "*thresholds:false"]


def _cdr() -> cdre_pb2.ProcessCDRRequest:
    ev = CGREvent("cgrates.org", "ev1", None, {
        "OriginID": "rals-down-1", "OriginHost": "127.0.0.1", "RequestType": "*postpaid",
        "Account": "1001", "Destination": "1002", "AnswerTime": "2024-01-15T10:00:00Z", "Usage": "60s",
    })
    return cdre_pb2.ProcessCDRRequest(event=event_to_pb(ev), flags=FLAGS)


async def test_postpaid_cdr_waits_for_rals(sqlite_url):
    dead = f"127.0.0.1:{free_port()}"  # nothing listens here: RALs is "down"
    async with serve(CdreServer, sqlite_url, env={"CGRPY_RALS_ADDR": dead, "CGRPY_RPC_TIMEOUT": "300ms"}) as cdre:
        stub = cdre_pb2_grpc.CdrServiceStub(cdre.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            # cdre retries RALs until shortly before this deadline, then answers "retry later"
            await stub.ProcessCDR(_cdr(), timeout=2)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "RALS_ERROR" in err.value.details()
    async with serve(RalsServer, sqlite_url, tariffplan=None) as rals, \
            serve(CdreServer, sqlite_url, tariffplan=None, env={"CGRPY_RALS_ADDR": rals.addr}) as cdre:
        stub = cdre_pb2_grpc.CdrServiceStub(cdre.channel)
        # cdre's start-up sweep or the sender's retry finishes it; a retry is answered either way
        resp = await stub.ProcessCDR(_cdr())
        got = (await stub.GetCDRs(cdre_pb2.CDRFilter(origin_ids=["rals-down-1"]))).cdrs
        assert [(c.run_id, c.cost) for c in got] == [("*default", "0.6")]
        assert len(resp.cdrs) == 1
        acc = await rals_pb2_grpc.RalsServiceStub(rals.channel).GetAccount(
            rals_pb2.AccountRequest(tenant="cgrates.org", account="1001"))
        assert sum(Decimal(b.value) for b in acc.balances) == Decimal("9.4")
