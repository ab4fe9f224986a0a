"""StatS over gRPC: the real server on an ephemeral port, a real StorDB (SQLite and Postgres)
holding the tutorial plan."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal

import grpc
import pytest
from prometheus_client import REGISTRY

from cgrates.v1 import common_pb2, stats_pb2, stats_pb2_grpc
from cgrpy.event import CGREvent
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.wire import event_to_pb
from services.stats.server import StatsServer
from tests.conftest import TARIFFPLANS
from tests.harness import serve

TENANT = "cgrates.org"


def tutorial_rows(edit: Callable[[TariffPlanRows], None] | None = None) -> TariffPlanRows:
    rows = read_folder(TARIFFPLANS / "tutorial")
    if edit is not None:
        edit(rows)
    return rows


def store_rows(db_url: str, rows: TariffPlanRows, tpid: str = "cgrpy") -> None:
    """Store an edited tariff plan as ``tpid`` (what the harness does for a repo folder)."""
    from cgrpy.storage.tariffplans import replace_tariffplan

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        replace_tariffplan(engine, tpid, rows, source="test")
    finally:
        engine.dispose()


def cdr(eid: str, account: str, dest: str, usage: str, cost: str, **more: object) -> stats_pb2.StatsProcessEventRequest:
    fields: dict[str, object] = {"Account": account, "Destination": dest, "RunID": "*default",
                                 "Usage": usage, "Cost": Decimal(cost), **more}
    return stats_pb2.StatsProcessEventRequest(event=event_to_pb(CGREvent(TENANT, eid, None, fields)))


def tid(qid: str, tenant: str = TENANT) -> common_pb2.TenantID:
    return common_pb2.TenantID(tenant=tenant, id=qid)


async def expect_error(call: object, code: grpc.StatusCode, word: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == code
    assert (info.value.details() or "").startswith(word), info.value.details()
    return info.value.details() or ""


def gauge(queue: str, metric: str) -> float | None:
    return REGISTRY.get_sample_value(
        "cgrpy_stats_metric_value", {"tenant": TENANT, "queue": queue, "metric": metric})


async def test_process_event_and_metrics_tutorial(db_url: str) -> None:
    """Stats2 gets 60s/0.6 and 30s/0.4 -> *tcc 1, *tcd 1m30s."""
    async with serve(StatsServer, db_url, tariffplan="tutorial") as svc:
        stub = stats_pb2_grpc.StatsServiceStub(svc.channel)
        empty = await stub.GetQueueFloatMetrics(tid("Stats2"))
        assert dict(empty.metrics) == {"*tcc": "-1", "*tcd": "-1"}
        assert gauge("Stats2", "*tcc") is None

        r1 = await stub.ProcessEvent(cdr("c1", "1001", "1002", "60s", "0.6"))
        assert list(r1.ids) == ["Stats2"]
        r2 = await stub.ProcessEvent(cdr("c2", "1001", "1002", "30s", "0.4"))
        assert list(r2.ids) == ["Stats2"]

        sm = await stub.GetQueueStringMetrics(tid("Stats2"))
        assert dict(sm.metrics) == {"*tcc": "1", "*tcd": "1m30s"}
        fm = await stub.GetQueueFloatMetrics(tid("Stats2"))
        assert dict(fm.metrics) == {"*tcc": "1", "*tcd": "90"}
        assert gauge("Stats2", "*tcc") == 1.0
        assert gauge("Stats2", "*tcd") == 90.0

        # account 1003 to 1001 goes to Stats2_1 only
        r3 = await stub.ProcessEvent(cdr("c3", "1003", "1001", "45s", "0.25"))
        assert list(r3.ids) == ["Stats2_1"]
        assert dict((await stub.GetQueueStringMetrics(tid("Stats2_1"))).metrics) == {
            "*tcc": "0.25", "*tcd": "45s"}
        assert dict((await stub.GetQueueStringMetrics(tid("Stats2"))).metrics) == {
            "*tcc": "1", "*tcd": "1m30s"}


async def test_process_event_errors(sqlite_url: str) -> None:
    async with serve(StatsServer, sqlite_url) as svc:
        stub = stats_pb2_grpc.StatsServiceStub(svc.channel)
        # 1003 to 1002 matches no queue
        await expect_error(stub.ProcessEvent(cdr("x1", "1003", "1002", "1s", "1")),
                           grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        # no event ID
        bad = cdr("", "1001", "1002", "1s", "1")
        await expect_error(stub.ProcessEvent(bad), grpc.StatusCode.INVALID_ARGUMENT,
                           "MANDATORY_IE_MISSING: [ID]")
        # *tcc cannot read a Cost -> the queue is unchanged, PARTIALLY_EXECUTED
        ev = CGREvent(TENANT, "x2", None, {"Account": "1001", "Destination": "1002",
                                           "RunID": "*default", "Usage": "10s"})
        await expect_error(stub.ProcessEvent(stats_pb2.StatsProcessEventRequest(event=event_to_pb(ev))),
                           grpc.StatusCode.ABORTED, "PARTIALLY_EXECUTED")
        assert dict((await stub.GetQueueFloatMetrics(tid("Stats2"))).metrics) == {
            "*tcc": "-1", "*tcd": "-1"}
        # explicit stat_ids: only those queues are considered
        only = cdr("x3", "1001", "1002", "10s", "0.1")
        only.stat_ids.append("Stats2_1")
        await expect_error(stub.ProcessEvent(only), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        only2 = cdr("x4", "1001", "1002", "10s", "0.1")
        only2.stat_ids.append("Stats2")
        assert list((await stub.ProcessEvent(only2)).ids) == ["Stats2"]

        await expect_error(stub.GetQueueStringMetrics(tid("Nope")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.GetQueueFloatMetrics(tid("")), grpc.StatusCode.INVALID_ARGUMENT,
                           "MANDATORY_IE_MISSING: [ID]")
        await expect_error(stub.GetStatQueueProfile(tid("Nope")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.ResetStatQueue(tid("Nope")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.GetQueueIDs(common_pb2.TenantRequest(tenant="other.org")),
                           grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


async def test_queue_ids_profile_and_reset(sqlite_url: str) -> None:
    async with serve(StatsServer, sqlite_url) as svc:
        stub = stats_pb2_grpc.StatsServiceStub(svc.channel)
        assert list((await stub.GetQueueIDs(common_pb2.TenantRequest(tenant=TENANT))).ids) == [
            "Stats2", "Stats2_1"]
        prof = json.loads((await stub.GetStatQueueProfile(tid("Stats2"))).json)
        assert prof == {
            "Tenant": TENANT, "ID": "Stats2", "FilterIDs": ["FLTR_ACNT_1001_1002"],
            "ActivationInterval": {"ActivationTime": "2014-07-29T15:00:00Z",
                                   "ExpiryTime": "0001-01-01T00:00:00Z"},
            "QueueLength": 100, "TTL": -1, "MinItems": 0,
            "Metrics": [{"MetricID": "*tcc", "FilterIDs": []}, {"MetricID": "*tcd", "FilterIDs": []}],
            "Stored": False, "Blocker": True, "Weight": 30, "ThresholdIDs": ["*none"],
        }
        await stub.ProcessEvent(cdr("c1", "1002", "1001", "60s", "0.6"))
        assert gauge("Stats2", "*tcc") == 0.6
        await stub.ResetStatQueue(tid("Stats2"))
        assert dict((await stub.GetQueueStringMetrics(tid("Stats2"))).metrics) == {
            "*tcc": "N/A", "*tcd": "N/A"}
        assert gauge("Stats2", "*tcc") is None


def _stored(rows: TariffPlanRows) -> None:
    for r in rows["Stats"]:
        if r["Id"] == "Stats2":
            r["Stored"] = "true"


async def test_stored_queue_survives_restart_and_reload(db_url: str) -> None:
    await asyncio.to_thread(store_rows, db_url, tutorial_rows(_stored))
    async with serve(StatsServer, db_url, tariffplan=None) as svc:
        stub = stats_pb2_grpc.StatsServiceStub(svc.channel)
        await stub.ProcessEvent(cdr("c1", "1001", "1002", "60s", "0.6"))
        await stub.ProcessEvent(cdr("c2", "1001", "1003", "30s", "0.4"))
        # Stats2_1 is not Stored: its count is lost on restart
        await stub.ProcessEvent(cdr("c3", "1003", "1001", "45s", "0.25"))
        # ReloadCache keeps live state of every queue
        rel = await stub.ReloadCache(common_pb2.ReloadCacheRequest())
        assert rel.tpid == "cgrpy" and rel.loaded["Stats"] == 2
        assert dict((await stub.GetQueueStringMetrics(tid("Stats2_1"))).metrics)["*tcd"] == "45s"
    async with serve(StatsServer, db_url, tariffplan=None) as svc:
        stub = stats_pb2_grpc.StatsServiceStub(svc.channel)
        assert dict((await stub.GetQueueStringMetrics(tid("Stats2"))).metrics) == {
            "*tcc": "1", "*tcd": "1m30s"}
        assert dict((await stub.GetQueueStringMetrics(tid("Stats2_1"))).metrics) == {
            "*tcc": "N/A", "*tcd": "N/A"}
        # the restored queue keeps counting; an eviction by reset is persisted too
        await stub.ProcessEvent(cdr("c4", "1002", "1002", "10s", "0.1"))
        assert dict((await stub.GetQueueFloatMetrics(tid("Stats2"))).metrics) == {
            "*tcc": "1.1", "*tcd": "100"}
        await stub.ResetStatQueue(tid("Stats2"))
    async with serve(StatsServer, db_url, tariffplan=None) as svc:
        stub = stats_pb2_grpc.StatsServiceStub(svc.channel)
        assert dict((await stub.GetQueueFloatMetrics(tid("Stats2"))).metrics) == {
            "*tcc": "-1", "*tcd": "-1"}


async def test_reload_cache_other_tpid(sqlite_url: str) -> None:
    async with serve(StatsServer, sqlite_url) as svc:
        stub = stats_pb2_grpc.StatsServiceStub(svc.channel)

        def one_queue(rows: TariffPlanRows) -> None:
            rows["Stats"] = [dict(rows["Stats"][0], Id="OnlyOne")]

        await asyncio.to_thread(store_rows, sqlite_url, tutorial_rows(one_queue), "other")
        rel = await stub.ReloadCache(common_pb2.ReloadCacheRequest(tpid="other"))
        assert rel.tpid == "other" and rel.loaded["Stats"] == 1
        assert list((await stub.GetQueueIDs(common_pb2.TenantRequest(tenant=TENANT))).ids) == ["OnlyOne"]
        assert list((await stub.ProcessEvent(cdr("c1", "1001", "1002", "1s", "1"))).ids) == ["OnlyOne"]
