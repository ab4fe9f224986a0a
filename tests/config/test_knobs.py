"""The knobs operators tune change behaviour as CGRateS's do: general.rounding_decimals (the
tutorial's numbers at 5 and 6 decimals), <subsystem>.prefix_indexed_fields /
string_indexed_fields (unset vs [] vs a list), through the real servers."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from cgrates.v1 import attributes_pb2_grpc, chargers_pb2, chargers_pb2_grpc, rals_pb2, rals_pb2_grpc
from cgrpy.event import CGREvent
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import to_unix_nano
from cgrpy.wire import event_to_pb
from services.attributes.server import AttributesServer
from services.chargers.server import ChargersServer
from services.rals.server import RalsServer
from tests.attributes.test_contract import request, store_plan
from tests.conftest import TARIFFPLANS
from tests.harness import serve
from tests.provisioning.common import addrs

SECOND = 1_000_000_000
T0 = to_unix_nano(datetime(2014, 8, 4, 13, 0, tzinfo=UTC))


def cd(usage_s: int, **kw: object) -> rals_pb2.CallDescriptor:
    base = dict(tenant="cgrates.org", category="call", account="1001", subject="1001", destination="1002",
                tor="*voice", time_start_unix_ns=T0, usage_ns=usage_s * SECOND)
    return rals_pb2.CallDescriptor(**{**base, **kw})


@pytest.mark.parametrize(("decimals", "cost"), [("5", "0.9006"), ("6", "0.90006")])
async def test_rounding_decimals_changes_increment_cost(sqlite_url, decimals, cost):
    """180 s at 0.1/min in 1 s increments is 180 x 0.00167 = 0.3006 at G=5 but
    180 x 0.001667 = 0.30006 at G=6; plus connect 0.4 and the first minute 0.2 (RT_20CNT)."""
    env = {**addrs(), "CGRPY_ROUNDING_DECIMALS": decimals}
    async with serve(RalsServer, sqlite_url, env=env) as rals:
        res = await rals_pb2_grpc.RalsServiceStub(rals.channel).GetCost(cd(240))
        assert res.cost == cost
        # Ex.2 (85 s) is the same at both: 25 x 0.00167 = 0.04175 vs 25 x 0.001667 = 0.041675
        ex2 = await rals_pb2_grpc.RalsServiceStub(rals.channel).GetCost(cd(85))
        assert ex2.cost == {"5": "0.64175", "6": "0.641675"}[decimals]


async def test_engine_libtest_example_at_g6(sqlite_url):
    """CGRateS engine test (G=6): 17:30-18:30 over two intervals = 2701; 23:50-00:30 = 2100."""
    env = {**addrs(), "CGRPY_ROUNDING_DECIMALS": "6"}
    async with serve(RalsServer, sqlite_url, tariffplan="engine_libtest", env=env) as rals:
        stub = rals_pb2_grpc.RalsServiceStub(rals.channel)
        base = dict(tenant="vdf", category="0", subject="rif", account="rif", destination="0256")
        start = to_unix_nano(datetime(2012, 2, 2, 17, 30, tzinfo=UTC))
        res = await stub.GetCost(cd(3600, **base, time_start_unix_ns=start))
        assert res.cost == "2701"
        start = to_unix_nano(datetime(2012, 2, 2, 23, 50, tzinfo=UTC))
        res = await stub.GetCost(cd(2400, **base, time_start_unix_ns=start))
        assert res.cost == "2100"


PREFIX_ONLY = {
    "Tenant": "cgrates.org", "ID": "ATTR_PREFIX", "Contexts": "*any", "FilterIDs": "*prefix:~*req.Destination:10",
    "ActivationInterval": "", "AttributeFilterIDs": "", "Path": "*req.Supplier", "Type": "*constant",
    "Value": "premium", "Blocker": "false", "Weight": "10",
}


@pytest.mark.parametrize(("setting", "found"), [
    (None, False),  # CGRateS default prefix_indexed_fields: [] -> a *prefix-only profile is invisible
    ('["Destination"]', True),
    ("[]", False),
    ("null", True),  # null = every event field
])
async def test_attributes_prefix_indexed_fields(sqlite_url, setting, found):
    plan = read_folder(TARIFFPLANS / "tutorial")
    plan["Attributes"] = plan["Attributes"] + [PREFIX_ONLY]
    store_plan(sqlite_url, plan)
    env = {} if setting is None else {"CGRPY_ATTRIBUTES_PREFIX_INDEXED_FIELDS": setting}
    async with serve(AttributesServer, sqlite_url, tariffplan=None, env=env) as attrs:
        stub = attributes_pb2_grpc.AttributesServiceStub(attrs.channel)
        call = stub.ProcessEvent(request({"Account": "1010", "Destination": "1002"}))
        if found:
            res = await call
            assert list(res.matched_profiles) == ["ATTR_PREFIX"]
        else:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(("setting", "found"), [(None, True), ('["Account"]', True), ('["Destination"]', False),
                                                 ("[]", False)])
async def test_attributes_string_indexed_fields(sqlite_url, setting, found):
    env = {} if setting is None else {"CGRPY_ATTRIBUTES_STRING_INDEXED_FIELDS": setting}
    async with serve(AttributesServer, sqlite_url, env=env) as attrs:
        stub = attributes_pb2_grpc.AttributesServiceStub(attrs.channel)
        call = stub.ProcessEvent(request({"Account": "1001"}, context="simpleauth"))
        if found:
            assert list((await call).matched_profiles) == ["ATTR_1001_SIMPLEAUTH"]
        else:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_chargers_prefix_indexed_fields(sqlite_url):
    plan = read_folder(TARIFFPLANS / "tutorial")
    plan["Chargers"] = [{"Tenant": "cgrates.org", "ID": "CRG_PREFIX", "FilterIDs": "*prefix:~*req.Destination:10",
                         "ActivationInterval": "", "RunID": "*prefix_run", "AttributeIDs": "*none", "Weight": "0"}]
    store_plan(sqlite_url, plan)
    ev = event_to_pb(CGREvent(tenant="cgrates.org", id="e", event={"Account": "1001", "Destination": "1002"}))
    req = chargers_pb2.ChargersProcessEventRequest(event=ev)
    for setting, found in ((None, False), ('["Destination"]', True)):
        env = {**addrs()} | ({} if setting is None else {"CGRPY_CHARGERS_PREFIX_INDEXED_FIELDS": setting})
        async with serve(ChargersServer, sqlite_url, tariffplan=None, env=env) as svc:
            stub = chargers_pb2_grpc.ChargersServiceStub(svc.channel)
            if found:
                res = await stub.GetChargersForEvent(req)
                assert "CRG_PREFIX" in res.json
            else:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.GetChargersForEvent(req)
                assert info.value.code() == grpc.StatusCode.NOT_FOUND
