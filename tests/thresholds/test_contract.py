"""ThresholdS over gRPC: the real server with a real StorDB (SQLite and Postgres), actions run by
the real RALs server, and StatS notifying ThresholdS."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import grpc

from cgrates.v1 import (
    common_pb2,
    rals_pb2,
    rals_pb2_grpc,
    stats_pb2_grpc,
    thresholds_pb2,
    thresholds_pb2_grpc,
)
from cgrpy.event import CGREvent
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.wire import event_to_pb
from services.rals.server import RalsServer
from services.stats.server import StatsServer
from services.thresholds.server import ThresholdsServer
from tests.harness import serve
from tests.stats.test_contract import TENANT, cdr, expect_error, store_rows, tid, tutorial_rows

ZERO = "0001-01-01T00:00:00Z"


def ev(eid: str, **fields: object) -> thresholds_pb2.ThresholdsProcessEventRequest:
    return thresholds_pb2.ThresholdsProcessEventRequest(event=event_to_pb(CGREvent(TENANT, eid, None, dict(fields))))


async def threshold(stub: thresholds_pb2_grpc.ThresholdsServiceStub, th: str) -> dict:
    return json.loads((await stub.GetThreshold(tid(th))).json)


async def monetary(rals: rals_pb2_grpc.RalsServiceStub, account: str) -> Decimal:
    acc = await rals.GetAccount(rals_pb2.AccountRequest(tenant=TENANT, account=account))
    return sum((Decimal(b.value) for b in acc.balances if b.type == "*monetary"), Decimal(0))


async def test_getters_and_profile(sqlite_url: str) -> None:
    async with serve(ThresholdsServer, sqlite_url) as svc:
        stub = thresholds_pb2_grpc.ThresholdsServiceStub(svc.channel)
        ids = await stub.GetThresholdIDs(common_pb2.TenantRequest(tenant=TENANT))
        assert list(ids.ids) == ["THD_ACNT_1001", "THD_ACNT_1002"]
        assert await threshold(stub, "THD_ACNT_1002") == {
            "Tenant": TENANT, "ID": "THD_ACNT_1002", "Hits": 0, "Snooze": ZERO}
        prof = json.loads((await stub.GetThresholdProfile(tid("THD_ACNT_1001"))).json)
        assert prof == {
            "Tenant": TENANT, "ID": "THD_ACNT_1001", "FilterIDs": ["FLTR_ACNT_1001"],
            "ActivationInterval": {"ActivationTime": "2014-07-29T15:00:00Z", "ExpiryTime": ZERO},
            "MaxHits": 1, "MinHits": 1, "MinSleep": 1_000_000_000, "Blocker": False,
            "Weight": 10, "ActionIDs": ["ACT_LOG_WARNING"], "Async": True,
        }
        found = json.loads((await stub.GetThresholdsForEvent(ev("q1", Account="1002"))).json)
        assert found == [{"Tenant": TENANT, "ID": "THD_ACNT_1002", "Hits": 0, "Snooze": ZERO}]

        await expect_error(stub.GetThreshold(tid("Nope")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.GetThreshold(tid("")), grpc.StatusCode.INVALID_ARGUMENT,
                           "MANDATORY_IE_MISSING: [ID]")
        await expect_error(stub.GetThresholdProfile(tid("Nope")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.GetThresholdsForEvent(ev("q2", Account="1003")),
                           grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.ProcessEvent(ev("", Account="1001")), grpc.StatusCode.INVALID_ARGUMENT,
                           "MANDATORY_IE_MISSING: [ID]")
        await expect_error(stub.ResetThreshold(tid("Nope")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.GetThresholdIDs(common_pb2.TenantRequest(tenant="other.org")),
                           grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


async def test_process_event_tutorial_hits_removal_reset_restart(db_url: str) -> None:
    """THD_ACNT_1001 (MaxHits 1) fires once and disappears; THD_ACNT_1002 counts every
    event and fires at most once per MinSleep (1s). State survives a restart."""
    async with serve(RalsServer, db_url) as rals, serve(
        ThresholdsServer, db_url, tariffplan=None, env={"CGRPY_RALS_ADDR": rals.addr}
    ) as svc:
        stub = thresholds_pb2_grpc.ThresholdsServiceStub(svc.channel)
        assert list((await stub.ProcessEvent(ev("e1", Account="1001"))).ids) == ["THD_ACNT_1001"]
        await expect_error(stub.GetThreshold(tid("THD_ACNT_1001")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await expect_error(stub.ProcessEvent(ev("e2", Account="1001")), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        assert list((await stub.GetThresholdIDs(common_pb2.TenantRequest(tenant=TENANT))).ids) == [
            "THD_ACNT_1002"]

        for i in range(3):
            assert list((await stub.ProcessEvent(ev(f"f{i}", Account="1002"))).ids) == ["THD_ACNT_1002"]
        st = await threshold(stub, "THD_ACNT_1002")
        assert st["Hits"] == 3 and st["Snooze"] != ZERO

        await stub.ResetThreshold(tid("THD_ACNT_1001"))
        assert await threshold(stub, "THD_ACNT_1001") == {
            "Tenant": TENANT, "ID": "THD_ACNT_1001", "Hits": 0, "Snooze": ZERO}
        rel = await stub.ReloadCache(common_pb2.ReloadCacheRequest())
        assert rel.tpid == "cgrpy" and rel.loaded["Thresholds"] == 2
        assert (await threshold(stub, "THD_ACNT_1002"))["Hits"] == 3
    async with serve(ThresholdsServer, db_url, tariffplan=None) as svc:
        stub = thresholds_pb2_grpc.ThresholdsServiceStub(svc.channel)
        assert (await threshold(stub, "THD_ACNT_1002"))["Hits"] == 3
        assert (await threshold(stub, "THD_ACNT_1001"))["Hits"] == 0


def _sync_topup(rows: TariffPlanRows) -> None:
    """THD_ACNT_1002 runs synchronously a *topup of 5 and the tutorial *log; a threshold with an
    unknown action set for 1003."""
    rows["Actions"].append(dict(rows["Actions"][0], ActionsId="ACT_TOPUP_5", Action="*topup",
                                BalanceId="extra", Units="5"))
    for r in rows["Thresholds"]:
        if r["Id"] == "THD_ACNT_1002":
            r.update(Async="false", ActionIDs="ACT_TOPUP_5;ACT_LOG_WARNING", MinSleep="0s")
    rows["Thresholds"].append(dict(rows["Thresholds"][0], Id="THD_BROKEN", MaxHits="-1",
                                   FilterIDs="*string:~*req.Account:1003", ActionIDs="ACT_MISSING",
                                   Async="false"))


async def test_sync_actions_through_rals(db_url: str) -> None:
    await asyncio.to_thread(store_rows, db_url, tutorial_rows(_sync_topup))
    async with serve(RalsServer, db_url, tariffplan=None) as rals, serve(
        ThresholdsServer, db_url, tariffplan=None, env={"CGRPY_RALS_ADDR": rals.addr}
    ) as svc:
        stub = thresholds_pb2_grpc.ThresholdsServiceStub(svc.channel)
        rstub = rals_pb2_grpc.RalsServiceStub(rals.channel)
        before = await monetary(rstub, "1002")
        assert list((await stub.ProcessEvent(ev("t1", Account="1002"))).ids) == ["THD_ACNT_1002"]
        assert await monetary(rstub, "1002") == before + 5
        assert list((await stub.ProcessEvent(ev("t2", Account="1002"))).ids) == ["THD_ACNT_1002"]
        assert await monetary(rstub, "1002") == before + 10
        assert (await threshold(stub, "THD_ACNT_1002"))["Hits"] == 2

        # a failing action set: PARTIALLY_EXECUTED, the hit still counts
        await expect_error(stub.ProcessEvent(ev("t3", Account="1003")), grpc.StatusCode.ABORTED,
                           "PARTIALLY_EXECUTED")
        assert (await threshold(stub, "THD_BROKEN"))["Hits"] == 1


async def test_async_actions_without_rals_only_log(sqlite_url: str) -> None:
    """RALs unreachable: Async thresholds still answer and count (errors are only logged)."""
    async with serve(ThresholdsServer, sqlite_url, env={"CGRPY_RALS_ADDR": "127.0.0.1:1"}) as svc:
        stub = thresholds_pb2_grpc.ThresholdsServiceStub(svc.channel)
        assert list((await stub.ProcessEvent(ev("a1", Account="1002"))).ids) == ["THD_ACNT_1002"]
        assert (await threshold(stub, "THD_ACNT_1002"))["Hits"] == 1


def _stat_threshold(rows: TariffPlanRows) -> None:
    for r in rows["Stats"]:
        if r["Id"] == "Stats2":
            r["ThresholdIDs"] = ""  # let ThresholdS match by filters
    rows["Thresholds"].append({
        "Tenant": TENANT, "Id": "TH_STATS2_TCC", "FilterIDs":
        "*string:~*req.EventType:StatUpdate;*string:~*req.StatID:Stats2;*gte:~*req.*tcc:1",
        "ActivationInterval": "", "MaxHits": "-1", "MinHits": "1", "MinSleep": "", "Blocker": "",
        "Weight": "20", "ActionIDs": "", "Async": ""})


async def test_stats_notify_thresholds(db_url: str) -> None:
    """After each update StatS sends {EventType: StatUpdate, StatID, metrics} to ThresholdS."""
    await asyncio.to_thread(store_rows, db_url, tutorial_rows(_stat_threshold))
    async with serve(ThresholdsServer, db_url, tariffplan=None) as th, serve(
        StatsServer, db_url, tariffplan=None, env={"CGRPY_THRESHOLDS_ADDR": th.addr}
    ) as st:
        stats = stats_pb2_grpc.StatsServiceStub(st.channel)
        thr = thresholds_pb2_grpc.ThresholdsServiceStub(th.channel)
        assert list((await stats.ProcessEvent(cdr("c1", "1001", "1002", "60s", "0.6"))).ids) == ["Stats2"]
        assert (await threshold(thr, "TH_STATS2_TCC"))["Hits"] == 0  # *tcc 0.6 < 1
        await stats.ProcessEvent(cdr("c2", "1001", "1002", "30s", "0.4"))
        assert (await threshold(thr, "TH_STATS2_TCC"))["Hits"] == 1  # *tcc 1
        await stats.ProcessEvent(cdr("c3", "1002", "1002", "30s", "0.4"))
        assert (await threshold(thr, "TH_STATS2_TCC"))["Hits"] == 2
