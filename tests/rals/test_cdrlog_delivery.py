"""*cdrlog CDRs from a real RALs to a real cdre (gRPC on loopback, SQLite and Postgres): kept in
RALs's outbox while cdre is down and stored once it is up; stored once however often delivered
(a row handed over twice, a debit retried that fired the trigger); stored as given, never
rated or debited again; a debit's reply never waits for cdre."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, insert, select

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, rals_pb2, rals_pb2_grpc
from cgrpy.config import load_settings
from cgrpy.runtime.server import ServiceRunner
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.storage.models.accounts import rals_cdrlog_outbox
from cgrpy.storage.tariffplans import replace_tariffplan
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND
from services.cdre.server import CdreServer
from services.rals.server import RalsServer
from tests.conftest import TARIFFPLANS
from tests.harness import serve
from tests.rals.test_concurrency_processes import T0
from tests.suite import free_port

DEAD = "127.0.0.1:1"
NOWHERE = {f"CGRPY_{s.upper()}_ADDR": DEAD for s in ("attributes", "chargers", "rals", "stats",
                                                      "thresholds", "sm")}


def _plan(tmp_path: Path) -> Path:
    folder = tmp_path / "plan"
    shutil.copytree(TARIFFPLANS / "tutorial", folder)
    actions = (folder / "Actions.csv").read_text().rstrip("\n") + "\n"
    (folder / "Actions.csv").write_text(
        actions
        + "ACT_GIFT,*topup,,,gift,*monetary,,*any,,,*unlimited,,1.5,10,false,false,20\n"
          "ACT_GIFT,*cdrlog,,,,,,,,,,,,,false,false,10\n"
          "ACT_LOW,*debit,,,fee,*monetary,,*any,,,*unlimited,,0.25,10,false,false,20\n"
          "ACT_LOW,*cdrlog,,,,,,,,,,,,,false,false,10\n")
    (folder / "ActionTriggers.csv").write_text(
        "#Tag[0],UniqueId[1],ThresholdType[2],ThresholdValue[3],Recurrent[4],MinSleep[5],ExpiryTime[6],"
        "ActivationTime[7],BalanceTag[8],BalanceType[9],BalanceCategories[10],BalanceDestinationIds[11],"
        "BalanceRatingSubject[12],BalanceSharedGroup[13],BalanceExpiryTime[14],BalanceTimingIds[15],"
        "BalanceWeight[16],BalanceBlocker[17],BalanceDisabled[18],ActionsId[19],Weight[20]\n"
        "TRIG_LOW,,*min_balance,9.5,false,0,,,,*monetary,,,,,,,,,,ACT_LOW,10\n")
    rows = (folder / "AccountActions.csv").read_text().splitlines()
    rows = [r.replace("cgrates.org,1003,AP_PACKAGE_10,,,", "cgrates.org,1003,AP_PACKAGE_10,TRIG_LOW,,")
            for r in rows]
    (folder / "AccountActions.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def plan_db(tmp_path: Path, db_url: str) -> str:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        replace_tariffplan(engine, "cgrpy", read_folder(_plan(tmp_path)), source="test")
    finally:
        engine.dispose()
    return db_url


@asynccontextmanager
async def cdre_on(db_url: str, port: int) -> AsyncIterator[cdre_pb2_grpc.CdrServiceStub]:
    """A real cdre listening on ``port`` (where RALs was told to find it)."""
    settings = load_settings(env={"CGRPY_STORDB_URL": db_url, **NOWHERE})
    runner = ServiceRunner(CdreServer(settings), grpc_port=port, metrics_port=-1)
    await runner.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield cdre_pb2_grpc.CdrServiceStub(channel)
    finally:
        await channel.close()
        await runner.stop(grace=0.5)


def _outbox_rows(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(rals_cdrlog_outbox)).scalar_one())
    finally:
        engine.dispose()


async def _wait(probe, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await probe()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"not seen in {timeout}s")


async def _cdrs(cdre: cdre_pb2_grpc.CdrServiceStub, account: str) -> list[cdre_pb2.CDR]:
    return list((await cdre.GetCDRs(cdre_pb2.CDRFilter(accounts=[account]))).cdrs)


async def test_cdre_down_then_up_still_gets_the_cdr_once(plan_db: str) -> None:
    port = free_port()
    env = {**NOWHERE, "CGRPY_CDRE_ADDR": f"127.0.0.1:{port}"}
    async with serve(RalsServer, plan_db, tariffplan=None, env=env) as svc:
        rals = rals_pb2_grpc.RalsServiceStub(svc.channel)
        await rals.ExecuteActions(rals_pb2.ExecuteActionsRequest(
            tenant="cgrates.org", account="1001", actions_id="ACT_GIFT"), timeout=5)
        # cdre is not there: the CDR waits in the outbox (RALs tries and backs off)
        await _wait(lambda: asyncio.to_thread(_outbox_rows, plan_db))
        await asyncio.sleep(1.5)
        assert await asyncio.to_thread(_outbox_rows, plan_db) == 1

        async with cdre_on(plan_db, port) as cdre:
            [cdr] = await _wait(lambda: _cdrs(cdre, "1001"), timeout=30)
            assert (cdr.source, cdr.run_id, cdr.tor, cdr.request_type) == (
                "*cdrlog", "*topup", "*monetary", "*none")
            assert Decimal(cdr.cost) == Decimal("1.5") and cdr.pre_rated
            await _wait(lambda: asyncio.to_thread(lambda: _outbox_rows(plan_db) == 0))

            # the same row delivered again (a lease ran out after cdre stored it): one CDR
            engine = make_engine(plan_db)
            with engine.begin() as conn:
                conn.execute(insert(rals_cdrlog_outbox).values(
                    cgrid=cdr.cgrid, run_id=cdr.run_id, lease_until_ns=0, attempts=0,
                    event=_event_json(cdr)))
            engine.dispose()
            await _wait(lambda: asyncio.to_thread(lambda: _outbox_rows(plan_db) == 0))
            assert [c.cgrid for c in await _cdrs(cdre, "1001")] == [cdr.cgrid]


def _event_json(cdr: cdre_pb2.CDR) -> str:
    from cgrpy.event import dumps_exact

    return dumps_exact({"CGRID": cdr.cgrid, "RunID": cdr.run_id, "Source": cdr.source,
                        "OriginID": cdr.origin_id, "OriginHost": cdr.origin_host, "ToR": cdr.tor,
                        "RequestType": cdr.request_type, "Tenant": cdr.tenant,
                        "Account": cdr.account, "Subject": cdr.subject, "Cost": Decimal(cdr.cost),
                        "Usage": 1, "PreRated": True})


async def test_a_retried_debit_that_fired_cdrlog_stores_one_cdr(plan_db: str) -> None:
    port = free_port()
    env = {**NOWHERE, "CGRPY_CDRE_ADDR": f"127.0.0.1:{port}"}
    async with cdre_on(plan_db, port) as cdre, \
            serve(RalsServer, plan_db, tariffplan=None, env=env) as svc:
        rals = rals_pb2_grpc.RalsServiceStub(svc.channel)
        req = rals_pb2.DebitRequest(request_id="cdrlog-low:1", request_type="*prepaid",
                                    call=rals_pb2.CallDescriptor(
                                        tenant="cgrates.org", category="call", subject="1001",
                                        account="1003", destination="1002", tor="*voice",
                                        time_start_unix_ns=T0, usage_ns=120 * SECOND))
        first = await rals.Debit(req, timeout=5)
        [cdr] = await _wait(lambda: _cdrs(cdre, "1003"))
        assert (cdr.run_id, Decimal(cdr.cost), cdr.source) == ("*debit", Decimal("0.25"), "*cdrlog")
        again = await rals.Debit(req, timeout=5)  # answered from the journal
        assert again.duplicate and again.cost == first.cost
        await asyncio.sleep(1.0)
        assert [c.cgrid for c in await _cdrs(cdre, "1003")] == [cdr.cgrid]
        assert await asyncio.to_thread(_outbox_rows, plan_db) == 0
