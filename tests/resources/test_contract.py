"""ResourceS over gRPC: the real server with a real StorDB (SQLite and Postgres), the tutorial's
ResGroup1 (limit 7 over accounts 1001-1003, stored, usages until released), the oldtutorial's
three resources (weights, AllocationMessage, TTL expiry, blocker), ThresholdS notified through the
real ThresholdS server, and a restart keeping the usages of Stored resources."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from cgrates.v1 import common_pb2, resources_pb2, resources_pb2_grpc, thresholds_pb2_grpc
from cgrpy.event import CGREvent
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.wire import event_to_pb
from services.resources.server import ResourcesServer
from services.thresholds.server import ThresholdsServer
from tests.conftest import TARIFFPLANS
from tests.harness import serve
from tests.stats.test_contract import store_rows

TENANT = "cgrates.org"
ZERO = "0001-01-01T00:00:00Z"
Stub = resources_pb2_grpc.ResourcesServiceStub


def usage(uid: str, units: float | None = None, ttl_ns: int | None = None,
          **fields: object) -> resources_pb2.ResourceUsageRequest:
    req = resources_pb2.ResourceUsageRequest(
        event=event_to_pb(CGREvent(TENANT, f"ev-{uid}", None, dict(fields))), usage_id=uid)
    if units is not None:
        req.units = units
    if ttl_ns is not None:
        req.usage_ttl_ns = ttl_ns
    return req


def tid(rid: str) -> common_pb2.TenantID:
    return common_pb2.TenantID(tenant=TENANT, id=rid)


async def fails(call: object, code: grpc.StatusCode, details: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == code, info.value.details()
    assert info.value.details() == details


async def resource(stub: Stub, rid: str) -> dict:
    return json.loads((await stub.GetResource(tid(rid))).json)


async def total(stub: Stub, rid: str) -> float:
    return sum(u["Units"] for u in (await resource(stub, rid))["Usages"].values())


async def allocate(stub: Stub, uid: str, account: str, **kw: object) -> str:
    return (await stub.AllocateResources(usage(uid, Account=account, **kw))).message  # type: ignore[arg-type]


async def test_tutorial_getters(sqlite_url: str) -> None:
    async with serve(ResourcesServer, sqlite_url) as svc:
        stub = Stub(svc.channel)
        assert list((await stub.GetResourceIDs(common_pb2.TenantRequest(tenant=TENANT))).ids) == ["ResGroup1"]
        assert json.loads((await stub.GetResourceProfile(tid("ResGroup1"))).json) == {
            "Tenant": TENANT, "ID": "ResGroup1", "FilterIDs": ["FLTR_RES"],
            "ActivationInterval": {"ActivationTime": "2014-07-29T15:00:00Z", "ExpiryTime": ZERO},
            "UsageTTL": -1, "Limit": 7, "AllocationMessage": "", "Blocker": False, "Stored": True,
            "Weight": 10, "ThresholdIDs": ["*none"],
        }
        found = json.loads((await stub.GetResourcesForEvent(usage("q1", Account="1002"))).json)
        assert found == [{"Tenant": TENANT, "ID": "ResGroup1", "Usages": {}, "TTLIdx": None}]
        await fails(stub.GetResourcesForEvent(usage("q2", Account="1004")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await fails(stub.AuthorizeResources(usage("q3", Account="1004")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await fails(stub.GetResource(tid("Nope")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await fails(stub.GetResource(tid("")), grpc.StatusCode.INVALID_ARGUMENT, "MANDATORY_IE_MISSING: [ID]")
        await fails(stub.AllocateResources(usage("", Account="1001")), grpc.StatusCode.INVALID_ARGUMENT,
                    "MANDATORY_IE_MISSING: [UsageID]")
        await fails(stub.AllocateResources(usage("neg", units=-1, Account="1001")),
                    grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT:Units must be a number >= 0 (got -1.0)")
        await fails(stub.GetResourceIDs(common_pb2.TenantRequest(tenant="other.org")),
                    grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        assert await total(stub, "ResGroup1") == 0  # nothing above recorded anything


async def test_limit_seven_idempotent_release_and_restart(db_url: str) -> None:
    """Seven calls of 1001-1003 fill ResGroup1; the eighth is refused (authorize:
    RESOURCE_UNAUTHORIZED, allocate: RESOURCE_UNAVAILABLE); a repeated allocation takes nothing
    twice; a release frees a slot; a restart keeps the usages (Stored)."""
    async with serve(ResourcesServer, db_url) as svc:
        stub = Stub(svc.channel)
        for i in range(7):
            acc = f"100{1 + i % 3}"
            assert (await stub.AuthorizeResources(usage(f"call{i}", Account=acc))).message == "ResGroup1"
            assert await allocate(stub, f"call{i}", acc) == "ResGroup1"
        assert await total(stub, "ResGroup1") == 7
        await fails(stub.AuthorizeResources(usage("call7", Account="1002")),
                    grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_UNAUTHORIZED")
        await fails(stub.AllocateResources(usage("call7", Account="1002")),
                    grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_UNAVAILABLE")
        assert await allocate(stub, "call3", "1001") == "ResGroup1"  # a retry: replaces itself
        assert await total(stub, "ResGroup1") == 7
        # an account outside FLTR_RES is not limited by it
        await fails(stub.AllocateResources(usage("other", Account="1004")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await stub.ReleaseResources(usage("call0", Account="1001"))
        assert await total(stub, "ResGroup1") == 6
        assert "call0" not in (await resource(stub, "ResGroup1"))["Usages"]
        assert await allocate(stub, "call7", "1002") == "ResGroup1"
    async with serve(ResourcesServer, db_url, tariffplan=None) as svc:
        stub = Stub(svc.channel)
        usages = (await resource(stub, "ResGroup1"))["Usages"]
        assert sorted(usages) == [f"call{i}" for i in range(1, 8)]
        assert usages["call7"] == {"Tenant": TENANT, "ID": "call7", "ExpiryTime": ZERO, "Units": 1}
        await fails(stub.AllocateResources(usage("call8", Account="1003")),
                    grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_UNAVAILABLE")
        # a session SM closes without an event: the usage goes wherever it is held
        rel = await stub.ReleaseUsage(resources_pb2.ReleaseUsageRequest(tenant=TENANT, usage_id="call5"))
        assert list(rel.resource_ids) == ["ResGroup1"]
        rel = await stub.ReleaseUsage(resources_pb2.ReleaseUsageRequest(tenant=TENANT, usage_id="call5"))
        assert list(rel.resource_ids) == []
        assert await allocate(stub, "call8", "1003") == "ResGroup1"
        # a ReloadCache keeps the live usages
        await stub.ReloadCache(common_pb2.ReloadCacheRequest())
        assert await total(stub, "ResGroup1") == 7


async def test_oldtutorial_weights_message_ttl(sqlite_url: str) -> None:
    """CGRateS's resourcesv1 test on the oldtutorial data: ResGroup1 (limit 7, TTL 1s, W20) and
    ResGroup2 (limit 8, TTL 1h, message SPECIAL_1002, W10) both match 1002; `dan` only ResGroup2."""
    dst = {"Destination": "1002", "Subject": "1001"}  # FLTR_1 wants ~^1.*1$ of Subject
    async with serve(ResourcesServer, sqlite_url, tariffplan="oldtutorial") as svc:
        stub = Stub(svc.channel)
        assert await allocate(stub, "u1", "1002", units=3, **dst) == "ResGroup1"
        assert await allocate(stub, "u2", "1002", units=4, **dst) == "ResGroup1"
        assert await total(stub, "ResGroup1") == 7 and await total(stub, "ResGroup2") == 7
        assert await allocate(stub, "u3", "dan", units=1, **dst) == "SPECIAL_1002"
        await fails(stub.AllocateResources(usage("u4", units=1, Account="1002", **dst)),
                    grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_UNAVAILABLE")
        r1 = await resource(stub, "ResGroup1")
        assert r1["TTLIdx"] == ["u1", "u2"] and r1["Usages"]["u1"]["ExpiryTime"] != ZERO
        await asyncio.sleep(1.1)  # ResGroup1's usages expire after 1s
        assert await allocate(stub, "u4", "1002", units=1, **dst) == "ResGroup1"
        assert await total(stub, "ResGroup1") == 1
        assert await total(stub, "ResGroup2") == 9  # recorded on every matched resource, even over its limit
        # ResGroup1's u1 expired: releasing it there is an error (TTL set), ResGroup2's is cleared
        await fails(stub.ReleaseResources(usage("u1", Account="1002", **dst)), grpc.StatusCode.INTERNAL,
                    "SERVER_ERROR: cannot find usage record with id: u1 on ResGroup1")
        assert await total(stub, "ResGroup2") == 6
        # a request TTL wins over the profile's
        assert await allocate(stub, "u5", "dan", units=1, ttl_ns=-1, **dst) == "SPECIAL_1002"
        assert (await resource(stub, "ResGroup2"))["Usages"]["u5"]["ExpiryTime"] == ZERO


async def test_a_failed_write_changes_nothing_and_answers_server_error(sqlite_url: str) -> None:
    """A reply means committed: when the usage cannot be stored, memory is left as it was."""
    from sqlalchemy import text

    from cgrpy.storage.db import make_engine

    async with serve(ResourcesServer, sqlite_url) as svc:
        stub = Stub(svc.channel)
        assert await allocate(stub, "kept", "1001") == "ResGroup1"
        engine = make_engine(sqlite_url)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE resource_usages RENAME TO resource_usages_away"))
        try:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.AllocateResources(usage("lost", Account="1002"))
            assert info.value.code() == grpc.StatusCode.INTERNAL
            assert (info.value.details() or "").startswith("SERVER_ERROR: resource usages not stored")
            assert sorted((await resource(stub, "ResGroup1"))["Usages"]) == ["kept"]
        finally:
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE resource_usages_away RENAME TO resource_usages"))
            engine.dispose()
        assert await allocate(stub, "lost", "1002") == "ResGroup1"


def _blocker_rows(rows: TariffPlanRows) -> None:
    base = {"Tenant": TENANT, "ActivationInterval": "", "AllocationMessage": "", "Stored": "false",
            "ThresholdIDs": "*none", "TTL": "-1"}
    rows["Resources"] = [
        {**base, "Id": "RES_HIGH", "FilterIDs": "*string:~*req.Account:1001", "Limit": "1",
         "Blocker": "true", "Weight": "30"},
        {**base, "Id": "RES_LOW", "FilterIDs": "*string:~*req.Account:1001", "Limit": "5",
         "Blocker": "false", "Weight": "10"},
        {**base, "Id": "RES_FREE", "FilterIDs": "*string:~*req.Account:1002", "Limit": "-1",
         "Blocker": "false", "Weight": "10", "TTL": "0"},
    ]


async def test_blocker_unlimited_and_ttl_zero(sqlite_url: str) -> None:
    rows = read_folder(TARIFFPLANS / "tutorial")
    _blocker_rows(rows)
    await asyncio.to_thread(store_rows, sqlite_url, rows)
    async with serve(ResourcesServer, sqlite_url, tariffplan=None) as svc:
        stub = Stub(svc.channel)
        found = json.loads((await stub.GetResourcesForEvent(usage("q", Account="1001"))).json)
        assert [r["ID"] for r in found] == ["RES_HIGH"]  # the blocker cuts RES_LOW
        assert await allocate(stub, "a", "1001") == "RES_HIGH"
        await fails(stub.AllocateResources(usage("b", Account="1001")),
                    grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_UNAVAILABLE")
        for i in range(20):  # Limit -1: unlimited
            assert await allocate(stub, f"f{i}", "1002", units=1000) == "RES_FREE"
        assert (await resource(stub, "RES_FREE"))["Usages"] == {}  # TTL 0: never recorded


def _threshold_rows(rows: TariffPlanRows) -> None:
    for r in rows["Resources"]:
        r["ThresholdIDs"] = "THD_RES"
        r["Limit"] = "2"
    rows["Thresholds"].append({
        "Tenant": TENANT, "Id": "THD_RES", "FilterIDs": "*string:~*req.EventType:ResourceUpdate;*gte:~*req.Usage:2",
        "ActivationInterval": "", "MaxHits": "-1", "MinHits": "1", "MinSleep": "0s", "Blocker": "false",
        "Weight": "10", "ActionIDs": "*none", "Async": "false"})


async def test_thresholds_see_resource_updates(sqlite_url: str) -> None:
    rows = read_folder(TARIFFPLANS / "tutorial")
    _threshold_rows(rows)
    await asyncio.to_thread(store_rows, sqlite_url, rows)
    async with serve(ThresholdsServer, sqlite_url, tariffplan=None) as th, serve(
            ResourcesServer, sqlite_url, tariffplan=None, env={"CGRPY_THRESHOLDS_ADDR": th.addr}) as svc:
        stub, ths = Stub(svc.channel), thresholds_pb2_grpc.ThresholdsServiceStub(th.channel)

        async def hits() -> int:
            for _ in range(50):  # ThresholdS is told after the reply
                got = json.loads((await ths.GetThreshold(tid("THD_RES"))).json)["Hits"]
                if got:
                    return got
                await asyncio.sleep(0.05)
            return 0

        assert await allocate(stub, "x1", "1001") == "ResGroup1"
        await asyncio.sleep(0.2)
        assert await hits() == 0  # Usage 1 < 2
        assert await allocate(stub, "x2", "1002") == "ResGroup1"
        assert await hits() == 1
