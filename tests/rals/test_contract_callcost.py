"""RALs gRPC contract for CostResponse.call_cost_json, CallDescriptor.force_duration and the
account action-trigger RPCs: the real server on loopback, real StorDB (the two costs: docs/rating.md)."""

from __future__ import annotations

from decimal import Decimal as D

import grpc
import pytest

from cgrates.v1 import rals_pb2, rals_pb2_grpc
from cgrpy.event import dumps_exact, loads_exact
from cgrpy.units import SECOND, parse_time, to_unix_nano
from services.rals.server import RalsServer
from tests.harness import serve

T0 = to_unix_nano(parse_time("2014-08-04T13:00:00Z"))


def cd(account: str = "1001", destination: str = "1002", usage_s: int = 85, **kw) -> rals_pb2.CallDescriptor:
    return rals_pb2.CallDescriptor(
        tenant="cgrates.org", category="call", account=account, subject=account,
        destination=destination, tor="*voice", time_start_unix_ns=T0, usage_ns=usage_s * SECOND, **kw,
    )


def money(summary: dict, bid: str = "test") -> D:
    return next(b["Value"] for b in summary["BalanceSummaries"] if b["ID"] == bid)


async def test_getcost_carries_callcost_json(sqlite_url):
    async with serve(RalsServer, sqlite_url) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        resp = await stub.GetCost(cd(usage_s=85))
        assert resp.cost == "0.64175"  # EventCost (cost) ...
        cc = loads_exact(resp.call_cost_json)
        assert cc["Cost"] == D("0.6418")  # ... and CallCost.Cost
        assert [ts["Cost"] for ts in cc["Timespans"]] == [D("0.2"), D("0.04175")]
        assert [ts["DurationIndex"] for ts in cc["Timespans"]] == [60 * SECOND, 85 * SECOND]
        assert cc["RatedUsage"] == 85 * SECOND and cc["AccountSummary"] is None
        # SupplierS-style forced plan: RP_1002 rates destination 1001 with RT_20CNT as well
        forced = await stub.GetCost(cd(destination="1001", usage_s=20, rating_plan_id="RP_1002"))
        assert loads_exact(forced.call_cost_json)["Timespans"][0]["RatingPlanId"] == "RP_1002"


async def test_debit_callcost_json_postpaid_prepaid_and_replay(db_url):
    async with serve(RalsServer, db_url) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        # *postpaid = PerformRounding: CallCost.Cost 0.6418 charged, balance 10 -> 9.3582
        req = rals_pb2.DebitRequest(call=cd(usage_s=85), request_id="cc-post-1", request_type="*postpaid",
                                    want_call_cost=True)
        first = await stub.Debit(req)
        cc = loads_exact(first.call_cost_json)
        assert first.cost == "0.6418" and cc["Cost"] == D("0.6418")
        assert money(cc["AccountSummary"]) == D("9.3582")
        assert len(cc["Timespans"]) == 2 and cc["Account"] == "1001"
        again = await stub.Debit(req)
        assert again.duplicate and loads_exact(again.call_cost_json) == cc
        # *prepaid piece: unrounded (0.64175), same timespans
        pre = await stub.Debit(rals_pb2.DebitRequest(call=cd(account="1002", destination="1001"),
                                                     request_id="cc-pre-1", request_type="*prepaid",
                                                     want_call_cost=True))
        pcc = loads_exact(pre.call_cost_json)
        assert pre.cost == "0.64175" and pcc["Cost"] == D("0.64175")
        assert money(pcc["AccountSummary"]) == D("9.35825")
        # without want_call_cost (session debits) no CallCost is computed
        plain = await stub.Debit(rals_pb2.DebitRequest(call=cd(account="1002", destination="1001"),
                                                       request_id="cc-pre-2", request_type="*prepaid"))
        assert plain.cost == "0.64175" and plain.call_cost_json == ""


async def test_max_debit_partial_and_force_duration(sqlite_url):
    async with serve(RalsServer, sqlite_url) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        # 1001 -> 1003: MaxCost 0.12 *disconnect caps a prepaid call at 12 s
        part = await stub.Debit(rals_pb2.DebitRequest(
            call=cd(destination="1003", usage_s=20), request_id="md-1", request_type="*prepaid",
            allow_partial=True, want_call_cost=True))
        assert (part.cost, part.usage_ns) == ("0.12", 12 * SECOND)
        pcc = loads_exact(part.call_cost_json)
        assert pcc["RatedUsage"] == 12 * SECOND and pcc["Cost"] == D("0.12")
        assert pcc["Timespans"][0]["TimeEnd"] == "2014-08-04T13:00:12Z"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Debit(rals_pb2.DebitRequest(
                call=cd(destination="1003", usage_s=20, force_duration=True), request_id="md-2",
                request_type="*prepaid", allow_partial=True))
        assert err.value.details().startswith("INSUFFICIENT_CREDIT")
        acc = await stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1001"))
        assert sum(D(b.value) for b in acc.balances if b.type == "*monetary") == D("9.88")  # only md-1


def trig_req(**kw) -> rals_pb2.SetAccountActionTriggersRequest:
    fields = kw.pop("fields", None)
    return rals_pb2.SetAccountActionTriggersRequest(
        tenant="cgrates.org", action_trigger_json=dumps_exact(fields) if fields is not None else "", **kw)


async def test_set_account_action_triggers(db_url):
    async with serve(RalsServer, db_url, tariffplan="testtp") as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        get = rals_pb2.AccountRequest(tenant="cgrates.org", account="1001")
        before = loads_exact((await stub.GetAccountActionTriggers(get)).json)
        # testtp STANDARD_TRIGGERS: four triggers, unique ids STANDARD_TRIGGERS#0..#3
        assert [(t["UniqueID"], t["ThresholdType"], t["ThresholdValue"]) for t in before] == [
            ("STANDARD_TRIGGERS#0", "*min_balance", 2), ("STANDARD_TRIGGERS#1", "*max_balance", 20),
            ("STANDARD_TRIGGERS#2", "*max_event_counter", 15), ("STANDARD_TRIGGERS#3", "*max_balance_counter", 1)]
        assert before[2]["Balance"]["DestinationIDs"] == {"FS_USERS": True}
        assert before[0]["Balance"]["Type"] == "*monetary" and before[0]["ActionsID"] == "LOG_BALANCE"

        out = await stub.SetAccountActionTriggers(trig_req(
            account="1001", group_id="STANDARD_TRIGGERS", unique_id="STANDARD_TRIGGERS#0",
            fields={"ThresholdValue": D("2.5"), "Recurrent": True, "MinSleep": "1m", "BalanceID": "test"}))
        changed = loads_exact(out.json)[0]
        assert (changed["ThresholdValue"], changed["Recurrent"], changed["MinSleep"]) == (D("2.5"), True, 60 * SECOND)
        assert changed["Balance"]["ID"] == "test" and changed["Balance"]["Type"] == "*monetary"
        assert loads_exact((await stub.GetAccountActionTriggers(get)).json)[1:] == before[1:]

        # bad input: the field is named, nothing changed
        for fields, word in [({"ThresholdType": "*bogus"}, "INVALID_ARGUMENT"),
                             ({"Colour": "red"}, "INVALID_ARGUMENT"),
                             ({"ActionsID": "NO_SUCH_ACTIONS"}, "NOT_FOUND")]:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.SetAccountActionTriggers(trig_req(account="1001", fields=fields))
            assert err.value.details().startswith(word), err.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SetAccountActionTriggers(trig_req(account="1001", unique_id="nope", fields={"Weight": 1}))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        after = loads_exact((await stub.GetAccountActionTriggers(get)).json)
        assert after[0] == changed and after[1:] == before[1:]


async def test_add_remove_triggers_survive_restart(pg_url):
    async with serve(RalsServer, pg_url, tariffplan="testtp") as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        await stub.SetAccount(rals_pb2.SetAccountRequest(tenant="cgrates.org", account="api1"))
        added = loads_exact((await stub.SetAccountActionTriggers(
            trig_req(account="api1", add_group_ids=["STANDARD_TRIGGERS"]))).json)
        assert len(added) == 4
        await stub.SetAccountActionTriggers(trig_req(account="api1", group_id="STANDARD_TRIGGERS",
                                                     fields={"Executed": True, "Weight": 20}))
        left = loads_exact((await stub.SetAccountActionTriggers(
            trig_req(account="api1", unique_id="STANDARD_TRIGGERS#3", remove=True))).json)
        assert [t["UniqueID"] for t in left] == ["STANDARD_TRIGGERS#0", "STANDARD_TRIGGERS#1", "STANDARD_TRIGGERS#2"]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SetAccountActionTriggers(trig_req(account="api1", add_group_ids=["NOPE"]))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    async with serve(RalsServer, pg_url, tariffplan=None) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        trigs = loads_exact((await stub.GetAccountActionTriggers(
            rals_pb2.AccountRequest(tenant="cgrates.org", account="api1"))).json)
        assert [(t["Executed"], t["Weight"]) for t in trigs] == [(True, 20)] * 3
