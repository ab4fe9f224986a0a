"""ChargerS over gRPC: the real server on the tutorial plan, calling a real AttributeS server
(the tutorial's examples, getters, errors with gRPC code and CGRateS word, ReloadCache, exact values
through both hops)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import chargers_pb2, chargers_pb2_grpc, common_pb2
from cgrpy.event import CGREvent
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.wire import event_from_pb, event_to_pb
from services.attributes.server import AttributesServer
from services.chargers.server import ChargersServer
from tests.conftest import TARIFFPLANS
from tests.harness import serve

ORG = "cgrates.org"
RAW_ATTR = "*constant:*req.RequestType:*none"


@asynccontextmanager
async def chargers_with_attributes(db_url: str) -> AsyncIterator[chargers_pb2_grpc.ChargersServiceStub]:
    """AttributeS and ChargerS on the same StorDB (tutorial), ChargerS pointed at AttributeS."""
    async with serve(AttributesServer, db_url) as attrs, serve(
        ChargersServer, db_url, tariffplan=None, env={"CGRPY_ATTRIBUTES_ADDR": attrs.addr}
    ) as chrg:
        yield chargers_pb2_grpc.ChargersServiceStub(chrg.channel)


def request(fields: dict, *, tenant: str = ORG, time_ns: int = 0) -> chargers_pb2.ChargersProcessEventRequest:
    ev = event_to_pb(CGREvent(tenant=tenant, id="ev1", event=fields))
    ev.time_unix_ns = time_ns
    return chargers_pb2.ChargersProcessEventRequest(event=ev)


def summary(resp: chargers_pb2.ChargersProcessEventResponse) -> list[tuple]:
    return [(r.charger_profile, r.run_id, list(r.attribute_profiles), list(r.altered_fields),
             event_from_pb(r.event).event) for r in resp.runs]


def store_plan(db_url: str, rows: TariffPlanRows, tpid: str = "cgrpy") -> None:
    from cgrpy.storage.tariffplans import replace_tariffplan

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        replace_tariffplan(engine, tpid, rows, source="test")
    finally:
        engine.dispose()


def with_chargers(*extra: str) -> TariffPlanRows:
    """Tutorial plus Chargers.csv lines ``ID,FilterIDs,RunID,AttributeIDs,Weight``."""
    rows = read_folder(TARIFFPLANS / "tutorial")
    added = []
    for line in extra:
        pid, filters, run_id, attr_ids, weight = line.split(",")
        added.append({"Tenant": ORG, "ID": pid, "FilterIDs": filters, "ActivationInterval": "",
                      "RunID": run_id, "AttributeIDs": attr_ids, "Weight": weight})
    return {**rows, "Chargers": [*rows["Chargers"], *added]}


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def test_tutorial_default_and_raw(db_url):
    money = "0.0123456789012345678901234567891"
    time_ns = 1_700_000_000_987_654_321
    async with chargers_with_attributes(db_url) as stub:
        resp = await stub.ProcessEvent(request(
            {"Account": "1001", "Destination": "1002", "RequestType": "*prepaid",
             "Usage": 90_000_000_000, "Cost": Decimal(money)}, time_ns=time_ns))
    base = {"Account": "1001", "Destination": "1002", "Usage": 90_000_000_000,
            "Cost": Decimal(money)}
    # both weight 0: ordered by profile ID ("DEFAULT" < "Raw")
    assert summary(resp) == [
        ("DEFAULT", "*default", [], ["*req.RunID"],
         {**base, "RequestType": "*prepaid", "RunID": "*default"}),
        ("Raw", "*raw", [RAW_ATTR], ["*req.RunID", "*req.RequestType"],
         {**base, "RequestType": "*none", "RunID": "*raw"}),
    ]
    for run in resp.runs:
        assert run.event.tenant == ORG and run.event.id == "ev1"
        assert run.event.time_unix_ns == time_ns
        assert run.event.fields["Cost"].decimal_value == money  # exact through both runs


async def test_charger1_example_and_reload(db_url):
    async with chargers_with_attributes(db_url) as stub:
        before = await stub.ProcessEvent(request({"Account": "1001"}))
        assert [r.charger_profile for r in before.runs] == ["DEFAULT", "Raw"]

        # the CGRateS apier/v1/chargers_it_test.go profile, heavier than the tutorial ones
        await asyncio.to_thread(store_plan, db_url, with_chargers(
            "Charger1,*string:~*req.Account:1001,*default,ATTR_1001_SIMPLEAUTH,20.000000000000000000000000000001"))
        loaded = await stub.ReloadCache(common_pb2.ReloadCacheRequest())
        assert loaded.tpid == "cgrpy"
        assert dict(loaded.loaded) == {"Chargers": 3, "Filters": 7}

        after = await stub.ProcessEvent(request({"Account": "1001"}))
        assert summary(after)[0] == (
            "Charger1", "*default", ["ATTR_1001_SIMPLEAUTH"], ["*req.RunID", "*req.Password"],
            {"Account": "1001", "Password": "CGRateS.org", "RunID": "*default"})
        assert [r.charger_profile for r in after.runs] == ["Charger1", "DEFAULT", "Raw"]
        other = await stub.ProcessEvent(request({"Account": "1002"}))
        assert [r.charger_profile for r in other.runs] == ["DEFAULT", "Raw"]
        prof = await stub.GetChargerProfile(common_pb2.TenantID(tenant=ORG, id="Charger1"))
        assert '"Weight":20.000000000000000000000000000001' in prof.json


async def test_empty_attribute_ids_and_context_field(sqlite_url):
    async with chargers_with_attributes(sqlite_url) as stub:
        await asyncio.to_thread(store_plan, sqlite_url, with_chargers(
            "Plain,*string:~*req.Account:1003,*plain,,0"))
        await stub.ReloadCache(common_pb2.ReloadCacheRequest())
        # context *chargers: no partition, *any fallback finds nothing -> NOT_FOUND from
        # AttributeS means "no attributes" for that run (later-CGRateS behaviour)
        resp = await stub.ProcessEvent(request({"Account": "1003"}))
        assert [r.charger_profile for r in resp.runs] == ["DEFAULT", "Plain", "Raw"]
        plain = summary(resp)[1]
        assert plain == ("Plain", "*plain", [], ["*req.RunID"],
                         {"Account": "1003", "RunID": "*plain"})

        # an event field Context overrides *chargers
        resp = await stub.ProcessEvent(request({"Account": "1003", "Context": "*sessions"}))
        plain = summary(resp)[1]
        assert plain[2] == ["ATTR_1003_SESSIONAUTH"]
        assert plain[3] == ["*req.RunID", "*req.Password", "*req.RequestType",
                            "*req.PaypalAccount", "*req.LCRProfile"]
        assert plain[4]["RequestType"] == "*prepaid" and plain[4]["RunID"] == "*plain"
        raw = summary(resp)[2]
        assert raw[2] == [RAW_ATTR] and raw[4]["RequestType"] == "*none"


async def test_errors(sqlite_url):
    async with chargers_with_attributes(sqlite_url) as stub:
        err = await rpc_error(stub.ProcessEvent(request({"Account": "1001"}, tenant="cgrates.com")))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "NOT_FOUND"
        err = await rpc_error(stub.GetChargersForEvent(request({"Account": "1001"},
                                                               tenant="cgrates.com")))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "NOT_FOUND"
        err = await rpc_error(stub.ProcessEvent(chargers_pb2.ChargersProcessEventRequest()))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == "MANDATORY_IE_MISSING: [Event]"


async def test_inline_constant_attributes_need_no_attributes_service(sqlite_url):
    # port 1 on loopback: nothing listens, so any AttributeS call would fail UNAVAILABLE
    async with serve(ChargersServer, sqlite_url, env={"CGRPY_ATTRIBUTES_ADDR": "127.0.0.1:1"}) as svc:
        stub = chargers_pb2_grpc.ChargersServiceStub(svc.channel)
        resp = await stub.ProcessEvent(request({"Account": "1001", "RequestType": "*prepaid"}))
    # the same answer as through AttributeS (test above): Raw's inline *constant profile is
    # applied by ChargerS itself
    assert summary(resp) == [
        ("DEFAULT", "*default", [], ["*req.RunID"],
         {"Account": "1001", "RequestType": "*prepaid", "RunID": "*default"}),
        ("Raw", "*raw", [RAW_ATTR], ["*req.RunID", "*req.RequestType"],
         {"Account": "1001", "RequestType": "*none", "RunID": "*raw"}),
    ]


async def test_attributes_unreachable_is_server_error(sqlite_url):
    # a charger naming an AttributeS profile needs AttributeS; unreachable, it aborts the call
    await asyncio.to_thread(store_plan, sqlite_url, with_chargers(
        "Charger1,*string:~*req.Account:1001,*default,ATTR_1001_SIMPLEAUTH,20"))
    async with serve(ChargersServer, sqlite_url, tariffplan=None,
                     env={"CGRPY_ATTRIBUTES_ADDR": "127.0.0.1:1"}) as svc:
        stub = chargers_pb2_grpc.ChargersServiceStub(svc.channel)
        err = await rpc_error(stub.ProcessEvent(request({"Account": "1001"})))
        assert err.code() == grpc.StatusCode.INTERNAL
        assert err.details().startswith("SERVER_ERROR: attributes.ProcessEvent UNAVAILABLE")
        ids = await stub.GetChargerProfileIDs(common_pb2.TenantRequest())
        assert list(ids.ids) == ["Charger1", "DEFAULT", "Raw"]


async def test_getters(pg_url):
    async with serve(ChargersServer, pg_url) as svc:
        stub = chargers_pb2_grpc.ChargersServiceStub(svc.channel)
        found = await stub.GetChargersForEvent(request({"Account": "1001"}))
        assert json.loads(found.json) == [
            {"Tenant": ORG, "ID": "DEFAULT", "FilterIDs": [], "ActivationInterval": None,
             "RunID": "*default", "AttributeIDs": ["*none"], "Weight": 0},
            {"Tenant": ORG, "ID": "Raw", "FilterIDs": [], "ActivationInterval": None,
             "RunID": "*raw", "AttributeIDs": [RAW_ATTR], "Weight": 0},
        ]
        raw = await stub.GetChargerProfile(common_pb2.TenantID(id="Raw"))  # default tenant
        assert json.loads(raw.json)["AttributeIDs"] == [RAW_ATTR]
        err = await rpc_error(stub.GetChargerProfile(common_pb2.TenantID(tenant=ORG, id="Nope")))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "NOT_FOUND"
        err = await rpc_error(stub.GetChargerProfile(common_pb2.TenantID(tenant=ORG)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == "MANDATORY_IE_MISSING: [ID]"
        ids = await stub.GetChargerProfileIDs(common_pb2.TenantRequest(tenant=ORG))
        assert list(ids.ids) == ["DEFAULT", "Raw"]
        err = await rpc_error(stub.GetChargerProfileIDs(common_pb2.TenantRequest(tenant="cgrates.com")))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "NOT_FOUND"


async def test_reload_other_tpid_and_under_load(sqlite_url):
    only_default = read_folder(TARIFFPLANS / "tutorial")
    only_default = {**only_default,
                    "Chargers": [r for r in only_default["Chargers"] if r["ID"] == "DEFAULT"]}
    await asyncio.to_thread(store_plan, sqlite_url, only_default, "alt")
    async with chargers_with_attributes(sqlite_url) as stub:
        req = request({"Account": "1001"})

        async def hammer() -> list[int]:
            return [len((await stub.ProcessEvent(req)).runs) for _ in range(10)]

        async def reload() -> None:
            for _ in range(3):
                await stub.ReloadCache(common_pb2.ReloadCacheRequest())

        results = await asyncio.gather(*(hammer() for _ in range(4)), reload())
        assert [n for r in results[:4] for n in r] == [2] * 40

        loaded = await stub.ReloadCache(common_pb2.ReloadCacheRequest(tpid="alt"))
        assert loaded.tpid == "alt" and loaded.loaded["Chargers"] == 1
        resp = await stub.ProcessEvent(req)
        assert [r.run_id for r in resp.runs] == ["*default"]


async def test_profile_version_covers_chargers_and_the_attributes_they_used(db_url):
    from cgrates.v1 import attributes_pb2_grpc as apg

    async with serve(AttributesServer, db_url) as attrs, serve(
        ChargersServer, db_url, tariffplan=None, env={"CGRPY_ATTRIBUTES_ADDR": attrs.addr}
    ) as chrg:
        stub = chargers_pb2_grpc.ChargersServiceStub(chrg.channel)
        reload_attrs = apg.AttributesServiceStub(attrs.channel).ReloadCache
        first = await stub.ProcessEvent(request({"Account": "1001"}))
        assert first.reusable is True and "Context" in first.input_fields
        assert "*none" not in first.input_fields and "RequestType" in first.input_fields
        # the tutorial's runs need no AttributeS (Raw's profile is inline *constant): reloading
        # AttributeS alone leaves ChargerS's version as it was
        await reload_attrs(common_pb2.ReloadCacheRequest())
        same = await stub.ProcessEvent(request({"Account": "1001"}))
        assert same.profile_version == first.profile_version
        # a charger naming an AttributeS profile: its runs go through AttributeS, whose
        # reload then changes ChargerS's version
        await asyncio.to_thread(store_plan, db_url, with_chargers(
            "Charger1,*string:~*req.Account:1001,*default,ATTR_1001_SIMPLEAUTH,20"))
        await stub.ReloadCache(common_pb2.ReloadCacheRequest())
        second = await stub.ProcessEvent(request({"Account": "1001"}))
        assert second.profile_version != first.profile_version
        await reload_attrs(common_pb2.ReloadCacheRequest())
        third = await stub.ProcessEvent(request({"Account": "1001"}))
        assert third.profile_version not in (first.profile_version, second.profile_version)
        assert summary(third) == summary(second)
