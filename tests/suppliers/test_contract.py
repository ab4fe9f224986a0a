"""SupplierS over gRPC: the real server with a real StorDB (SQLite and Postgres) holding the
tutorial plan: *weight, *qos fed by a real StatS, *lc through
RALs GetCost on the supplier's rating plan."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from cgrates.v1 import (
    common_pb2,
    rals_pb2,
    rals_pb2_grpc,
    stats_pb2_grpc,
    suppliers_pb2,
    suppliers_pb2_grpc,
)
from cgrpy.event import CGREvent
from cgrpy.wire import event_to_pb
from services.rals.server import RalsServer
from services.stats.server import StatsServer
from services.suppliers.server import SuppliersServer
from tests.harness import serve
from tests.stats.test_contract import TENANT, cdr, expect_error, tid

SETUP = "2024-05-01T12:00:00Z"


def req(eid: str, **fields: Any) -> suppliers_pb2.GetSuppliersRequest:
    return suppliers_pb2.GetSuppliersRequest(event=event_to_pb(CGREvent(TENANT, eid, None, dict(fields))))


def order(reply: suppliers_pb2.GetSuppliersResponse) -> list[str]:
    return [s.supplier_id for s in reply.suppliers]


async def test_weight_tutorial(db_url: str) -> None:
    """SPL_ACNT_1001 (*weight) -> supplier2 (20), supplier1 (10)."""
    async with serve(SuppliersServer, db_url) as svc:
        stub = suppliers_pb2_grpc.SuppliersServiceStub(svc.channel)
        r = await stub.GetSuppliers(req("s1", Account="1001"))
        assert (r.profile_id, r.sorting, r.digest) == ("SPL_ACNT_1001", "*weight", "supplier2,supplier1")
        assert [(s.supplier_id, s.supplier_parameters, dict(s.sorting_data)) for s in r.suppliers] == [
            ("supplier2", "", {"Weight": "20"}), ("supplier1", "", {"Weight": "10"})]
        assert json.loads(r.json) == {
            "ProfileID": "SPL_ACNT_1001", "Sorting": "*weight", "Count": 2,
            "SortedSuppliers": [
                {"SupplierID": "supplier2", "SupplierParameters": "", "SortingData": {"Weight": 20}},
                {"SupplierID": "supplier1", "SupplierParameters": "", "SortingData": {"Weight": 10}},
            ]}
        limited = await stub.GetSuppliers(suppliers_pb2.GetSuppliersRequest(
            event=req("s2", Account="1001").event, limit=1))
        assert (order(limited), limited.digest) == (["supplier2"], "supplier2")
        assert json.loads(limited.json)["Count"] == 1
        paged = await stub.GetSuppliers(suppliers_pb2.GetSuppliersRequest(
            event=req("s3", Account="1001").event, offset=1))
        assert order(paged) == ["supplier1"]


async def test_profiles_ids_and_errors(sqlite_url: str) -> None:
    async with serve(SuppliersServer, sqlite_url) as svc:
        stub = suppliers_pb2_grpc.SuppliersServiceStub(svc.channel)
        ids = await stub.GetSupplierProfileIDs(common_pb2.TenantRequest(tenant=TENANT))
        assert list(ids.ids) == ["SPL_ACNT_1001", "SPL_ACNT_1002", "SPL_ACNT_1003"]
        prof = json.loads((await stub.GetSupplierProfile(tid("SPL_ACNT_1003"))).json)
        assert prof == {
            "Tenant": TENANT, "ID": "SPL_ACNT_1003", "FilterIDs": ["FLTR_ACNT_1003"],
            "ActivationInterval": {"ActivationTime": "2017-11-27T00:00:00Z",
                                   "ExpiryTime": "0001-01-01T00:00:00Z"},
            "Sorting": "*qos", "SortingParameters": ["*tcc", "*tcd"],
            "Suppliers": [
                {"ID": "supplier1", "FilterIDs": [], "AccountIDs": [], "RatingPlanIDs": [],
                 "ResourceIDs": [], "StatIDs": ["Stats2"], "Weight": 10, "Blocker": False,
                 "SupplierParameters": ""},
                {"ID": "supplier2", "FilterIDs": [], "AccountIDs": [], "RatingPlanIDs": [],
                 "ResourceIDs": [], "StatIDs": ["Stats2_1"], "Weight": 20, "Blocker": False,
                 "SupplierParameters": ""},
            ],
            "Weight": 10,
        }
        found = json.loads((await stub.GetSupplierProfilesForEvent(req("p1", Account="1002"))).json)
        assert [p["ID"] for p in found] == ["SPL_ACNT_1002"]
        assert found[0]["Suppliers"][0]["RatingPlanIDs"] == ["RP_1002_LOW"]

        await expect_error(stub.GetSuppliers(req("e1", Account="1009")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.GetSupplierProfilesForEvent(req("e2", Account="1009")),
                           grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.GetSuppliers(req("", Account="1001")), grpc.StatusCode.INVALID_ARGUMENT,
                           "MANDATORY_IE_MISSING: [ID]")
        await expect_error(stub.GetSupplierProfile(tid("Nope")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.GetSupplierProfile(tid("")), grpc.StatusCode.INVALID_ARGUMENT,
                           "MANDATORY_IE_MISSING: [ID]")
        await expect_error(stub.GetSupplierProfileIDs(common_pb2.TenantRequest(tenant="other.org")),
                           grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        # *lc needs Destination and SetupTime
        await expect_error(stub.GetSuppliers(req("e3", Account="1002")), grpc.StatusCode.INTERNAL,
                           "SERVER_ERROR: MANDATORY_IE_MISSING: [Destination SetupTime]")
        bad = suppliers_pb2.GetSuppliersRequest(event=req("e4", Account="1001").event, max_cost="abc")
        await expect_error(stub.GetSuppliers(bad), grpc.StatusCode.INTERNAL, "SERVER_ERROR")
        rel = await stub.ReloadCache(common_pb2.ReloadCacheRequest())
        assert rel.tpid == "cgrpy" and rel.loaded["Suppliers"] == 3


async def test_qos_with_real_stats(db_url: str) -> None:
    """SPL_ACNT_1003 (*qos, *tcc;*tcd): supplier1 reads Stats2, supplier2 Stats2_1."""
    async with serve(StatsServer, db_url) as st, serve(
        SuppliersServer, db_url, tariffplan=None, env={"CGRPY_STATS_ADDR": st.addr}
    ) as svc:
        stub = suppliers_pb2_grpc.SuppliersServiceStub(svc.channel)
        stats = stats_pb2_grpc.StatsServiceStub(st.channel)
        # both queues empty: -1 everywhere, tie -> weight: supplier2 first
        r0 = await stub.GetSuppliers(req("q0", Account="1003"))
        assert r0.digest == "supplier2,supplier1"
        assert dict(r0.suppliers[0].sorting_data) == {"Weight": "20", "*tcc": "-1", "*tcd": "-1"}

        await stats.ProcessEvent(cdr("c1", "1001", "1002", "60s", "0.6"))
        await stats.ProcessEvent(cdr("c2", "1001", "1002", "30s", "0.4"))
        await stats.ProcessEvent(cdr("c3", "1003", "1001", "45s", "0.25"))
        r1 = await stub.GetSuppliers(req("q1", Account="1003"))
        assert (r1.profile_id, r1.sorting, r1.digest) == ("SPL_ACNT_1003", "*qos", "supplier1,supplier2")
        assert [dict(s.sorting_data) for s in r1.suppliers] == [
            {"Weight": "10", "*tcc": "1", "*tcd": "90"},
            {"Weight": "20", "*tcc": "0.25", "*tcd": "45"}]
        assert json.loads(r1.json)["SortedSuppliers"][1]["SortingData"] == {
            "Weight": 20, "*tcc": 0.25, "*tcd": 45}


class _RatingPlanRals(rals_pb2_grpc.RalsServiceServicer):
    """Stand-in RALs answering GetCost per rating plan (the tutorial prices)."""

    PRICES = {"RP_1002_LOW": "0.3", "RP_1002": "0.6"}

    def __init__(self) -> None:
        self.requests: list[rals_pb2.CallDescriptor] = []

    async def GetCost(self, request: rals_pb2.CallDescriptor, context: Any) -> rals_pb2.CostResponse:
        self.requests.append(request)
        if request.rating_plan_id not in self.PRICES:
            await context.abort(grpc.StatusCode.NOT_FOUND, "RATING_PLAN_NOT_FOUND")
        return rals_pb2.CostResponse(cost=self.PRICES[request.rating_plan_id], usage_ns=request.usage_ns)


@asynccontextmanager
async def stand_in_rals(servicer: rals_pb2_grpc.RalsServiceServicer) -> AsyncIterator[str]:
    server = grpc.aio.server()
    rals_pb2_grpc.add_RalsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def lc_request(eid: str, **extra: Any) -> suppliers_pb2.GetSuppliersRequest:
    return suppliers_pb2.GetSuppliersRequest(
        event=req(eid, Account="1002", Destination="1001", SetupTime=SETUP).event, **extra)


async def test_lc_request_to_rals(sqlite_url: str) -> None:
    """*lc asks RALs GetCost once per supplier rating plan: Subject = Account, start = SetupTime,
    Usage defaulted to 1m; cheaper first, MaxCost drops the dearer one."""
    fake = _RatingPlanRals()
    async with stand_in_rals(fake) as addr, serve(
        SuppliersServer, sqlite_url, env={"CGRPY_RALS_ADDR": addr}
    ) as svc:
        stub = suppliers_pb2_grpc.SuppliersServiceStub(svc.channel)
        r = await stub.GetSuppliers(lc_request("l1"))
        assert (r.profile_id, r.sorting, r.digest) == ("SPL_ACNT_1002", "*lc", "supplier1,supplier2")
        assert [dict(s.sorting_data) for s in r.suppliers] == [
            {"Weight": "10", "Cost": "0.3", "RatingPlanID": "RP_1002_LOW"},
            {"Weight": "20", "Cost": "0.6", "RatingPlanID": "RP_1002"}]
        cd = fake.requests[0]
        assert (cd.tenant, cd.subject, cd.account, cd.destination, cd.rating_plan_id) == (
            TENANT, "1002", "1002", "1001", "RP_1002_LOW")
        assert (cd.usage_ns, cd.time_start_unix_ns) == (60_000_000_000, 1_714_564_800_000_000_000)
        capped = await stub.GetSuppliers(lc_request("l2", max_cost="0.5"))
        assert capped.digest == "supplier1"


async def test_lc_with_real_rals(db_url: str) -> None:
    """SPL_ACNT_1002 (*lc): supplier1 RP_1002_LOW 0.3, supplier2 RP_1002 0.6."""
    async with serve(RalsServer, db_url) as rals, serve(
        SuppliersServer, db_url, tariffplan=None, env={"CGRPY_RALS_ADDR": rals.addr}
    ) as svc:
        stub = suppliers_pb2_grpc.SuppliersServiceStub(svc.channel)
        r = await stub.GetSuppliers(lc_request("l1"))
        assert r.digest == "supplier1,supplier2"
        assert [dict(s.sorting_data) for s in r.suppliers] == [
            {"Weight": "10", "Cost": "0.3", "RatingPlanID": "RP_1002_LOW"},
            {"Weight": "20", "Cost": "0.6", "RatingPlanID": "RP_1002"}]


async def test_lc_real_rals_refuses_a_wrong_plan(sqlite_url: str) -> None:
    """Until RALs honours rating_plan_id, a price from another plan is an error, never used."""
    async with serve(RalsServer, sqlite_url) as rals, serve(
        SuppliersServer, sqlite_url, tariffplan=None, env={"CGRPY_RALS_ADDR": rals.addr}
    ) as svc:
        stub = suppliers_pb2_grpc.SuppliersServiceStub(svc.channel)
        try:
            r = await stub.GetSuppliers(lc_request("l1"))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.INTERNAL
            assert exc.details() == ("SERVER_ERROR: RALs GetCost ignored rating_plan_id RP_1002_LOW "
                                     "(rated with RP_1002)")
        else:  # RALs honours it: the spec answer
            assert r.digest == "supplier1,supplier2"


async def test_indexed_fields_settings(sqlite_url: str) -> None:
    """suppliers_string_indexed_fields limits the index: with only Destination indexed, the
    Account-filtered tutorial profiles are never candidates (v0.10 index semantics)."""
    env = {"CGRPY_SUPPLIERS_STRING_INDEXED_FIELDS": '["Destination"]'}
    async with serve(SuppliersServer, sqlite_url, env=env) as svc:
        stub = suppliers_pb2_grpc.SuppliersServiceStub(svc.channel)
        await expect_error(stub.GetSuppliers(req("i1", Account="1001")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    env = {"CGRPY_SUPPLIERS_STRING_INDEXED_FIELDS": '["Account"]'}
    async with serve(SuppliersServer, sqlite_url, tariffplan=None, env=env) as svc:
        stub = suppliers_pb2_grpc.SuppliersServiceStub(svc.channel)
        assert (await stub.GetSuppliers(req("i2", Account="1001"))).digest == "supplier2,supplier1"
