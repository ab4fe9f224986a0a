"""sessions.debit_interval through the real SM (SessionService over gRPC) with the real ChargerS,
AttributeS and RALs on the tutorial plan: 0s = the whole requested usage is charged at initiate
and settled at terminate, no periodic debits; 10s = the first 10 s piece only."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from cgrates.v1 import rals_pb2, rals_pb2_grpc, sm_pb2, sm_pb2_grpc
from cgrpy.event import CGREvent, loads_exact
from cgrpy.wire import event_to_pb
from services.attributes.server import AttributesServer
from services.chargers.server import ChargersServer
from services.rals.server import RalsServer
from services.sm.server import SmServer
from tests.harness import serve
from tests.provisioning.common import addrs


def session(usage: str) -> sm_pb2.SessionRequest:
    ev = CGREvent(tenant="cgrates.org", id="ev", event={
        "OriginID": "di-1", "OriginHost": "127.0.0.1", "RequestType": "*prepaid", "ToR": "*voice",
        "Account": "1002", "Subject": "1002", "Destination": "1001", "Category": "call",
        "SetupTime": "2014-08-04T13:00:00Z", "AnswerTime": "2014-08-04T13:00:00Z", "Usage": usage,
    })
    return sm_pb2.SessionRequest(event=event_to_pb(ev))


async def balance(rals) -> Decimal:
    acc = await rals_pb2_grpc.RalsServiceStub(rals.channel).GetAccount(
        rals_pb2.AccountRequest(tenant="cgrates.org", account="1002"))
    data = loads_exact(acc.json)
    return Decimal(str(data["BalanceMap"]["*monetary"][0]["Value"]))


@pytest.mark.parametrize(("interval", "after_init"), [
    # 2 m at RT_20CNT: 0.4 connect + 0.2 first minute + 60 x 0.00167 = 0.7002 reserved at once
    ("0s", Decimal("9.2998")),
    # 10 s piece: 0.4 + the first 60 s increment 0.2
    ("10s", Decimal("9.4")),
])
async def test_debit_interval(sqlite_url, tmp_path, interval, after_init):
    async with serve(RalsServer, sqlite_url, env=addrs()) as rals, \
            serve(AttributesServer, sqlite_url, tariffplan=None) as attrs, \
            serve(ChargersServer, sqlite_url, tariffplan=None, env=addrs(attributes=attrs.addr)) as chargers:
        env = {**addrs(attributes=attrs.addr, chargers=chargers.addr, rals=rals.addr),
               "CGRPY_DEBIT_INTERVAL": interval, "CGRPY_SM_SPOOL_PATH": str(tmp_path / "spool.sqlite"),
               "CGRPY_OPENSIPS_LISTEN": "127.0.0.1:0", "CGRPY_OPENSIPS_EVENT_LISTEN": "127.0.0.1:0",
               "CGRPY_JSONRPC_LISTEN": "127.0.0.1:0", "CGRPY_HTTP_LISTEN": "127.0.0.1:0"}
        async with serve(SmServer, sqlite_url, tariffplan=None, env=env) as sm:
            stub = sm_pb2_grpc.SessionServiceStub(sm.channel)
            assert await balance(rals) == Decimal(10)
            res = await stub.InitiateSession(session("2m"))
            assert await balance(rals) == after_init
            if interval == "0s":
                assert res.max_usage_ns == 120_000_000_000  # everything requested, granted at once
                await asyncio.sleep(0.3)
                assert await balance(rals) == after_init  # no periodic debit
            await stub.TerminateSession(session("85s"))
            # Settled at the real usage either way: Ex.2's 85 s, the session cost rounded at its end
            # by the DestinationRate rule (*up, 4 decimals): 0.6418.
            assert await balance(rals) == Decimal("9.3582")
