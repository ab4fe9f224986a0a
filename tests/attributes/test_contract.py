"""AttributeS over gRPC: the real server on the tutorial plan in a real StorDB (the tutorial examples,
getters, errors with their gRPC code and CGRateS word, ReloadCache, exact values on the wire)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import attributes_pb2, attributes_pb2_grpc, common_pb2
from cgrpy.attributes.engine import attributes_digest
from cgrpy.event import CGREvent, loads_exact
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.wire import event_from_pb, event_to_pb, value_to_pb
from services.attributes.server import AttributesServer
from tests.conftest import TARIFFPLANS
from tests.harness import serve

ORG = "cgrates.org"
COM = "cgrates.com"
ORG_IDS = ["ATTR_1001_SESSIONAUTH", "ATTR_1001_SIMPLEAUTH", "ATTR_1002_SESSIONAUTH",
           "ATTR_1002_SIMPLEAUTH", "ATTR_1003_SESSIONAUTH", "ATTR_1003_SIMPLEAUTH", "ATTR_ACC_ALIAS"]


def request(fields: dict, *, context: str = "", tenant: str = ORG, ids: list[str] | None = None,
            runs: int = 0, time_ns: int = 0) -> attributes_pb2.AttributesProcessEventRequest:
    ev = event_to_pb(CGREvent(tenant=tenant, id="ev1", event=fields))
    ev.time_unix_ns = time_ns
    return attributes_pb2.AttributesProcessEventRequest(
        event=ev, context=context, attribute_ids=ids or [], process_runs=runs)


def fields(resp: attributes_pb2.AttributesProcessEventResponse) -> dict:
    return event_from_pb(resp.event).event


def store_plan(db_url: str, rows: TariffPlanRows, tpid: str = "cgrpy") -> None:
    from cgrpy.storage.tariffplans import replace_tariffplan

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        replace_tariffplan(engine, tpid, rows, source="test")
    finally:
        engine.dispose()


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


# --- ProcessEvent: the tutorial examples --------------------------------------------------------------


async def test_process_event_1001_sessions(db_url):
    async with serve(AttributesServer, db_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        resp = await stub.ProcessEvent(request({"Account": "1001", "Destination": "1002"},
                                               context="*sessions"))
    assert list(resp.matched_profiles) == ["ATTR_1001_SESSIONAUTH"]
    assert list(resp.altered_fields) == ["*req.Password", "*req.RequestType",
                                         "*req.PaypalAccount", "*req.LCRProfile"]
    assert fields(resp) == {"Account": "1001", "Destination": "1002", "Password": "CGRateS.org",
                            "RequestType": "*prepaid", "PaypalAccount": "cgrates@paypal.com",
                            "LCRProfile": "premium_cli"}
    assert resp.event.tenant == ORG and resp.event.id == "ev1"
    digest = attributes_digest(list(resp.altered_fields), event_from_pb(resp.event))
    assert digest == ("Password:CGRateS.org,RequestType:*prepaid,"
                      "PaypalAccount:cgrates@paypal.com,LCRProfile:premium_cli")


async def test_contexts_simpleauth_cdrs_and_tenant_runs(sqlite_url):
    async with serve(AttributesServer, sqlite_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        ev = {"Account": "1001", "Destination": "1002"}
        simple = await stub.ProcessEvent(request(ev, context="simpleauth"))
        assert list(simple.matched_profiles) == ["ATTR_1001_SIMPLEAUTH"]
        assert list(simple.altered_fields) == ["*req.Password"]
        assert fields(simple) == {**ev, "Password": "CGRateS.org"}

        # *cdrs has no partition -> *any fallback -> ATTR_ACC_ALIAS needs SubscriberId 1006
        err = await rpc_error(stub.ProcessEvent(request(ev, context="*cdrs")))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "NOT_FOUND"

        cdrs = await stub.ProcessEvent(request({"SubscriberId": "1006"}, context="*cdrs",
                                               tenant=COM, runs=2))
        assert list(cdrs.matched_profiles) == ["ATTR_TNT_ALIAS", "ATTR_ACC_ALIAS"]
        assert list(cdrs.altered_fields) == ["*req.Account", "*req.RequestType", "*tenant"]
        assert cdrs.event.tenant == ORG
        assert fields(cdrs) == {"SubscriberId": "1006", "Account": "1001",
                                "RequestType": "*prepaid"}

        sess = await stub.ProcessEvent(request({"SubscriberId": "1006"}, context="*sessions",
                                               tenant=COM, runs=2))
        assert list(sess.matched_profiles) == ["ATTR_TNT_ALIAS", "ATTR_1001_SESSIONAUTH"]
        assert list(sess.altered_fields) == ["*req.Account", "*req.RequestType", "*tenant",
                                             "*req.Password", "*req.PaypalAccount",
                                             "*req.LCRProfile"]
        assert fields(sess)["RequestType"] == "*prepaid"
        assert fields(sess)["Password"] == "CGRateS.org"

        # process_runs 0 = the configured default (1): only the tenant alias
        one = await stub.ProcessEvent(request({"SubscriberId": "1006"}, context="*cdrs",
                                              tenant=COM))
        assert list(one.matched_profiles) == ["ATTR_TNT_ALIAS"]

        # empty context = *default: no partition -> *any -> ATTR_ACC_ALIAS
        dflt = await stub.ProcessEvent(request({"SubscriberId": "1006"}))
        assert list(dflt.matched_profiles) == ["ATTR_ACC_ALIAS"]


async def test_attribute_ids_inline_and_stored(sqlite_url):
    async with serve(AttributesServer, sqlite_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        inline = await stub.ProcessEvent(request({"Account": "1001", "RequestType": "*prepaid"},
                                                 context="*chargers",
                                                 ids=["*constant:*req.RequestType:*none"]))
        assert list(inline.matched_profiles) == ["*constant:*req.RequestType:*none"]
        assert list(inline.altered_fields) == ["*req.RequestType"]
        assert fields(inline) == {"Account": "1001", "RequestType": "*none"}

        # explicit IDs ignore the context but not the profiles' filters
        stored = await stub.ProcessEvent(request({"Account": "1001"}, context="*cdrs",
                                                 ids=["ATTR_1001_SIMPLEAUTH"]))
        assert list(stored.matched_profiles) == ["ATTR_1001_SIMPLEAUTH"]
        err = await rpc_error(stub.ProcessEvent(request({"Account": "1002"},
                                                        ids=["ATTR_1001_SIMPLEAUTH"])))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "NOT_FOUND"


async def test_default_tenant_setting(sqlite_url):
    async with serve(AttributesServer, sqlite_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        resp = await stub.ProcessEvent(request({"Account": "1001"}, context="*sessions", tenant=""))
        assert resp.event.tenant == ORG
        assert list(resp.matched_profiles) == ["ATTR_1001_SESSIONAUTH"]
    async with serve(AttributesServer, sqlite_url, tariffplan=None,
                     env={"CGRPY_DEFAULT_TENANT": COM}) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        resp = await stub.ProcessEvent(request({"Account": "1001"}, tenant=""))
        assert list(resp.matched_profiles) == ["ATTR_TNT_1001"]
        assert list(resp.altered_fields) == ["*tenant"]
        assert resp.event.tenant == ORG
        ids = await stub.GetAttributeProfileIDs(common_pb2.TenantRequest())
        assert list(ids.ids) == ["ATTR_TNT_1001", "ATTR_TNT_ALIAS", "ATTR_TNT_DISC"]


async def test_string_indexed_fields_setting(sqlite_url):
    ev = {"Account": "1005", "SubscriberId": "1006"}
    async with serve(AttributesServer, sqlite_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        # every field indexed: no *sessions candidate for Account 1005 -> *any fallback
        resp = await stub.ProcessEvent(request(ev, context="*sessions"))
        assert list(resp.matched_profiles) == ["ATTR_ACC_ALIAS"]
        assert fields(resp)["Account"] == "1001"
    async with serve(AttributesServer, sqlite_url, tariffplan=None,
                     env={"CGRPY_ATTRIBUTES_STRING_INDEXED_FIELDS": '["Destination"]'}) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        # Account not indexed: every *sessions profile is a candidate, all fail their filters,
        # and *any is then not tried
        err = await rpc_error(stub.ProcessEvent(request(ev, context="*sessions")))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "NOT_FOUND"


async def test_process_event_errors(sqlite_url):
    async with serve(AttributesServer, sqlite_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        err = await rpc_error(stub.ProcessEvent(request({"Account": "1009",
                                                         "Category": "*attributes"})))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == "MANDATORY_IE_MISSING: [Category]"
        err = await rpc_error(stub.ProcessEvent(attributes_pb2.AttributesProcessEventRequest(
            context="*sessions")))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == "MANDATORY_IE_MISSING: [CGREvent]"
        # a bad inline attribute ID is a SERVER_ERROR naming the text
        err = await rpc_error(stub.ProcessEvent(request({"Account": "1001"}, ids=["*constant:x"])))
        assert err.code() == grpc.StatusCode.INTERNAL
        assert err.details().startswith("SERVER_ERROR: ") and "*constant:x" in err.details()


async def test_exact_values_through_the_wire(pg_url):
    money = "0.123456789012345678901234567890"
    time_ns = 1_700_000_000_123_456_789
    async with serve(AttributesServer, pg_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        req = request({"Account": "1001", "Usage": 60_000_000_000, "Cost": Decimal(money),
                       "Prepaid": True, "Extra": None, "Tags": [Decimal("1.10"), "a"]},
                      context="*sessions", time_ns=time_ns)
        resp = await stub.ProcessEvent(req)
    f = resp.event.fields
    assert f["Cost"] == value_to_pb(Decimal(money))
    assert f["Cost"].decimal_value == money
    assert f["Usage"].int_value == 60_000_000_000
    assert f["Prepaid"].bool_value is True
    assert f["Extra"].null_value is True
    assert loads_exact(f["Tags"].json_value) == [Decimal("1.10"), "a"]
    assert resp.event.time_unix_ns == time_ns
    assert f["RequestType"].string_value == "*prepaid"


# --- getters --------------------------------------------------------------------------------


async def test_get_attribute_for_event(db_url):
    async with serve(AttributesServer, db_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        obj = await stub.GetAttributeForEvent(request({"Account": "1001"}, context="*sessions"))
        err = await rpc_error(stub.GetAttributeForEvent(request({"Account": "1001"},
                                                                context="*cdrs")))
    assert json.loads(obj.json) == {
        "Tenant": ORG,
        "ID": "ATTR_1001_SESSIONAUTH",
        "Contexts": ["*sessions"],
        "FilterIDs": ["*string:~*req.Account:1001"],
        "ActivationInterval": None,
        "Attributes": [
            {"FilterIDs": [], "Path": "*req.Password", "Type": "*constant",
             "Value": [{"Rules": "CGRateS.org", "AllFiltersMatch": False}]},
            {"FilterIDs": [], "Path": "*req.RequestType", "Type": "*constant",
             "Value": [{"Rules": "*prepaid", "AllFiltersMatch": False}]},
            {"FilterIDs": [], "Path": "*req.PaypalAccount", "Type": "*constant",
             "Value": [{"Rules": "cgrates@paypal.com", "AllFiltersMatch": False}]},
            {"FilterIDs": [], "Path": "*req.LCRProfile", "Type": "*constant",
             "Value": [{"Rules": "premium_cli", "AllFiltersMatch": False}]},
        ],
        "Blocker": False,
        "Weight": 10,
    }
    assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "NOT_FOUND"


async def test_get_attribute_profile_and_ids(sqlite_url):
    async with serve(AttributesServer, sqlite_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        alias = json.loads((await stub.GetAttributeProfile(
            common_pb2.TenantID(tenant=COM, id="ATTR_TNT_ALIAS"))).json)
        assert alias["Tenant"] == COM and alias["Contexts"] == ["*any"]
        assert [a["Path"] for a in alias["Attributes"]] == ["*req.Account", "*req.RequestType",
                                                            "*tenant"]
        assert alias["Attributes"][2]["Value"] == [{"Rules": "cgrates.org", "AllFiltersMatch": False}]
        simple = json.loads((await stub.GetAttributeProfile(
            common_pb2.TenantID(id="ATTR_1001_SIMPLEAUTH"))).json)  # default tenant
        assert simple["Weight"] == 20 and simple["Contexts"] == ["simpleauth"]

        err = await rpc_error(stub.GetAttributeProfile(common_pb2.TenantID(tenant=ORG,
                                                                           id="ATTR_TNT_ALIAS")))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "NOT_FOUND"
        err = await rpc_error(stub.GetAttributeProfile(common_pb2.TenantID(tenant=ORG)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == "MANDATORY_IE_MISSING: [ID]"

        ids = await stub.GetAttributeProfileIDs(common_pb2.TenantRequest(tenant=ORG))
        assert list(ids.ids) == ORG_IDS
        ids = await stub.GetAttributeProfileIDs(common_pb2.TenantRequest(tenant=COM))
        assert list(ids.ids) == ["ATTR_TNT_1001", "ATTR_TNT_ALIAS", "ATTR_TNT_DISC"]
        err = await rpc_error(stub.GetAttributeProfileIDs(common_pb2.TenantRequest(tenant="x.org")))
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == "NOT_FOUND"


# --- ReloadCache ----------------------------------------------------------------------------


def modified_tutorial() -> TariffPlanRows:
    """Tutorial with ATTR_1001_SESSIONAUTH's LCRProfile changed, its weight made fractional,
    and a new profile."""
    rows = read_folder(TARIFFPLANS / "tutorial")
    out = []
    for r in rows["Attributes"]:
        r = dict(r)
        if r["ID"] == "ATTR_1001_SESSIONAUTH" and r["Path"] == "*req.LCRProfile":
            r["Value"] = "gold_cli"
        if r["ID"] == "ATTR_1001_SESSIONAUTH" and r["Weight"]:
            r["Weight"] = "10.000000000000000000000000001"
        out.append(r)
    out.append({**out[0], "ID": "ATTR_NEW", "Contexts": "*sessions",
                "FilterIDs": "*string:~*req.Account:2002", "Path": "*req.Password",
                "Value": "new", "Weight": "5"})
    return {**rows, "Attributes": out}


async def test_reload_cache_picks_up_changed_plan(db_url):
    async with serve(AttributesServer, db_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        before = await stub.ProcessEvent(request({"Account": "1001"}, context="*sessions"))
        assert fields(before)["LCRProfile"] == "premium_cli"

        await asyncio.to_thread(store_plan, db_url, modified_tutorial())
        # not reloaded yet: still the old engine
        still = await stub.ProcessEvent(request({"Account": "1001"}, context="*sessions"))
        assert fields(still)["LCRProfile"] == "premium_cli"

        loaded = await stub.ReloadCache(common_pb2.ReloadCacheRequest())
        assert loaded.tpid == "cgrpy"
        assert dict(loaded.loaded) == {"Attributes": 11, "Filters": 7}  # tutorial 10 + ATTR_NEW
        after = await stub.ProcessEvent(request({"Account": "1001"}, context="*sessions"))
        assert fields(after)["LCRProfile"] == "gold_cli"
        new = await stub.ProcessEvent(request({"Account": "2002"}, context="*sessions"))
        assert list(new.matched_profiles) == ["ATTR_NEW"]
        prof = await stub.GetAttributeProfile(common_pb2.TenantID(id="ATTR_1001_SESSIONAUTH"))
        assert '"Weight":10.000000000000000000000000001' in prof.json
        assert loads_exact(prof.json)["Weight"] == Decimal("10.000000000000000000000000001")


async def test_reload_cache_other_tpid_and_bad_plan(sqlite_url):
    async with serve(AttributesServer, sqlite_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        rows = read_folder(TARIFFPLANS / "tutorial")
        only_com = {**rows, "Attributes": [r for r in rows["Attributes"] if r["Tenant"] == COM]}
        await asyncio.to_thread(store_plan, sqlite_url, only_com, "alt")
        loaded = await stub.ReloadCache(common_pb2.ReloadCacheRequest(tpid="alt"))
        assert loaded.tpid == "alt" and loaded.loaded["Attributes"] == 3
        err = await rpc_error(stub.GetAttributeProfileIDs(common_pb2.TenantRequest(tenant=ORG)))
        assert err.code() == grpc.StatusCode.NOT_FOUND

        # a plan that does not compile leaves the engine in place
        bad = {**rows, "Attributes": [{**rows["Attributes"][0], "Path": ""}]}
        await asyncio.to_thread(store_plan, sqlite_url, bad, "bad")
        err = await rpc_error(stub.ReloadCache(common_pb2.ReloadCacheRequest(tpid="bad")))
        assert err.code() == grpc.StatusCode.INTERNAL
        assert err.details().startswith("SERVER_ERROR: attributes tariff plan: ")
        assert "ATTR_1001_SIMPLEAUTH: MANDATORY_IE_MISSING: [Attributes]" in err.details()
        ids = await stub.GetAttributeProfileIDs(common_pb2.TenantRequest(tenant=COM))
        assert len(ids.ids) == 3


async def test_reload_under_load_fails_no_request(sqlite_url):
    async with serve(AttributesServer, sqlite_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        req = request({"Account": "1001"}, context="*sessions")

        async def hammer() -> list[str]:
            out = []
            for _ in range(20):
                out.append(list((await stub.ProcessEvent(req)).matched_profiles)[0])
            return out

        async def reload() -> None:
            for _ in range(3):
                await stub.ReloadCache(common_pb2.ReloadCacheRequest())

        results = await asyncio.gather(*(hammer() for _ in range(5)), reload())
    assert [m for r in results[:5] for m in r] == ["ATTR_1001_SESSIONAUTH"] * 100


# --- profile_version / input_fields / reusable (SM's Authorize -> Initiate reuse) ----------


async def test_profile_version_changes_on_reload_and_inputs_are_the_fields_read(db_url):
    async with serve(AttributesServer, db_url) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        a = await stub.ProcessEvent(request({"Account": "1001"}, context="*sessions"))
        b = await stub.ProcessEvent(request({"Account": "1002"}, context="*sessions"))
        assert a.profile_version and a.profile_version == b.profile_version
        assert a.reusable is True
        # the tutorial's filters read Account (and the paths it writes, read by *composed)
        assert "Account" in a.input_fields and "AnswerTime" not in a.input_fields
        await stub.ReloadCache(common_pb2.ReloadCacheRequest())
        c = await stub.ProcessEvent(request({"Account": "1001"}, context="*sessions"))
        assert c.profile_version != a.profile_version
        assert fields(c) == fields(a)


async def test_a_profile_reading_other_data_is_not_reusable(sqlite_url):
    rows = read_folder(TARIFFPLANS / "tutorial")
    rows["Attributes"] = [*rows["Attributes"], {
        **rows["Attributes"][0], "ID": "ATTR_STATS", "Contexts": "*sessions",
        "FilterIDs": "*gte:~*stats.Stats1.*acd:10", "Path": "*req.Busy", "Value": "yes"}]
    await asyncio.to_thread(store_plan, sqlite_url, rows)
    async with serve(AttributesServer, sqlite_url, tariffplan=None) as svc:
        stub = attributes_pb2_grpc.AttributesServiceStub(svc.channel)
        resp = await stub.ProcessEvent(request({"Account": "1001"}, context="*sessions"))
    assert resp.reusable is False
