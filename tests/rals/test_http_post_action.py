"""*http_post and *http_post_async actions against a real RALs and a real HTTP receiver on
loopback: the account as v0.10's JSON, posted once the set is committed (after the actions
before it in the set), retried when the receiver fails, fired by an action trigger after a call
debit too; a set whose post has no usable URL is refused whole and changes nothing."""

from __future__ import annotations

import asyncio
import json
import shutil
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from cgrates.v1 import rals_pb2, rals_pb2_grpc
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.storage.tariffplans import replace_tariffplan
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND
from services.rals.server import RalsServer
from tests.cdre.receiver import Receiver
from tests.conftest import TARIFFPLANS
from tests.harness import serve
from tests.rals.test_concurrency_processes import T0


def _plan(tmp_path: Path, url: str) -> Path:
    folder = tmp_path / "plan"
    shutil.copytree(TARIFFPLANS / "tutorial", folder)
    actions = (folder / "Actions.csv").read_text().rstrip("\n") + "\n"
    with (folder / "Actions.csv").open("w") as f:
        f.write(actions)
        f.write(f"ACT_POST,*topup_reset,,,test,*monetary,,*any,,,*unlimited,,10,10,false,false,20\n"
                f"ACT_POST,*http_post,{url},,,,,,,,,,,,false,false,10\n"
                f"ACT_POST_ASYNC,*http_post_async,{url},,,,,,,,,,,,false,false,10\n"
                f"ACT_BADPOST,*topup_reset,,,test,*monetary,,*any,,,*unlimited,,99,10,false,false,20\n"
                f"ACT_BADPOST,*http_post,not-a-url,,,,,,,,,,,,false,false,10\n")
    (folder / "ActionTriggers.csv").write_text(
        "#Tag[0],UniqueId[1],ThresholdType[2],ThresholdValue[3],Recurrent[4],MinSleep[5],ExpiryTime[6],"
        "ActivationTime[7],BalanceTag[8],BalanceType[9],BalanceCategories[10],BalanceDestinationIds[11],"
        "BalanceRatingSubject[12],BalanceSharedGroup[13],BalanceExpiryTime[14],BalanceTimingIds[15],"
        "BalanceWeight[16],BalanceBlocker[17],BalanceDisabled[18],ActionsId[19],Weight[20]\n"
        "TRIG_LOW,,*min_balance,9.5,false,0,,,,*monetary,,,,,,,,,,ACT_POST_ASYNC,10\n")
    rows = (folder / "AccountActions.csv").read_text().splitlines()
    rows = [r.replace("cgrates.org,1003,AP_PACKAGE_10,,,", "cgrates.org,1003,AP_PACKAGE_10,TRIG_LOW,,") for r in rows]
    (folder / "AccountActions.csv").write_text("\n".join(rows) + "\n")
    return folder


async def _wait_posts(rec: Receiver, n: int, timeout: float = 10.0) -> list:
    for _ in range(int(timeout / 0.05)):
        if len(rec.accepted()) >= n:
            return rec.accepted()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(rec.accepted())} posts accepted, wanted {n}: {rec.posts}")


@pytest.fixture
def plan_url(tmp_path: Path, sqlite_url: str):
    rec = Receiver(fail_first=2).start()
    try:
        upgrade(sqlite_url)
        engine = make_engine(sqlite_url)
        try:
            replace_tariffplan(engine, "cgrpy", read_folder(_plan(tmp_path, rec.url)), source="test")
        finally:
            engine.dispose()
        yield sqlite_url, rec
    finally:
        rec.stop()


async def test_http_post_actions_post_the_committed_account(plan_url) -> None:
    db_url, rec = plan_url
    async with serve(RalsServer, db_url, tariffplan=None) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        # the receiver fails the first two posts: the third try gets through
        await stub.ExecuteActions(rals_pb2.ExecuteActionsRequest(
            tenant="cgrates.org", account="1001", actions_id="ACT_POST"))
        [post] = await _wait_posts(rec, 1)
        assert post.content_type == "application/json" and len(rec.posts) == 3
        body = json.loads(post.body, parse_float=Decimal)
        assert body["ID"] == "cgrates.org:1001"
        test = [b for b in body["BalanceMap"]["*monetary"] if b["ID"] == "test"]
        assert [b["Value"] for b in test] == [10]  # the topup before it in the set is in it

        # no usable URL: the whole set is refused, the topup before it never happens
        before = await stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1002"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ExecuteActions(rals_pb2.ExecuteActionsRequest(
                tenant="cgrates.org", account="1002", actions_id="ACT_BADPOST"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "needs an http(s) URL in ExtraParameters" in err.value.details()
        after = await stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1002"))
        assert after == before


async def test_a_trigger_fired_by_a_call_debit_posts_once(plan_url) -> None:
    db_url, rec = plan_url
    rec.fail_first = 0
    async with serve(RalsServer, db_url, tariffplan=None) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        req = rals_pb2.DebitRequest(request_id="low:1", request_type="*prepaid", call=rals_pb2.CallDescriptor(
            tenant="cgrates.org", category="call", subject="1001", account="1003", destination="1002",
            tor="*voice", time_start_unix_ns=T0, usage_ns=120 * SECOND))
        await stub.Debit(req)
        [post] = await _wait_posts(rec, 1)
        body = json.loads(post.body, parse_float=Decimal)
        assert body["ID"] == "cgrates.org:1003"
        assert sum(b["Value"] for b in body["BalanceMap"]["*monetary"]) < Decimal("9.5")
        await stub.Debit(req)  # a retried debit is answered from the journal: no second post
        await asyncio.sleep(0.5)
        assert len(rec.accepted()) == 1
