"""RALs over gRPC: the real server on loopback, the tutorial plan in a real StorDB."""

from __future__ import annotations

import json
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import common_pb2, rals_pb2, rals_pb2_grpc
from cgrpy.event import loads_exact
from cgrpy.units import SECOND, parse_time, to_unix_nano
from services.rals.server import RalsServer
from tests.harness import serve

T0 = to_unix_nano(parse_time("2024-01-15T10:00:00Z"))


def cd(account: str = "1001", destination: str = "1002", usage_s: int = 60, **kw) -> rals_pb2.CallDescriptor:
    return rals_pb2.CallDescriptor(
        tenant="cgrates.org", category="call", account=account, subject=account,
        destination=destination, tor="*voice", time_start_unix_ns=T0, usage_ns=usage_s * SECOND, **kw,
    )


def monetary(acc: rals_pb2.Account) -> Decimal:
    return sum((Decimal(b.value) for b in acc.balances if b.type == "*monetary"), Decimal(0))


async def test_getcost_tutorial_worked_example(db_url):
    async with serve(RalsServer, db_url) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        # 1001 -> 1002, 85 s: EventCost 0.64175
        resp = await stub.GetCost(cd(usage_s=85))
        assert resp.cost == "0.64175"
        assert resp.usage_ns == 85 * SECOND
        details = json.loads(resp.cost_details_json)
        assert details["Usage"] == 85 * SECOND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetCost(cd(account="nobody", destination="1002"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert err.value.details().startswith("RATING_PLAN_NOT_FOUND")


async def test_provisioned_accounts_debit_refund_idempotent(db_url):
    async with serve(RalsServer, db_url) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        acc = await stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1001"))
        assert monetary(acc) == Decimal(10)
        assert json.loads(acc.json)["BalanceMap"]["*monetary"][0]["Value"] == 10

        # a 60 s prepaid piece 1001 -> 1002 costs 0.6; a retry charges nothing more
        req = rals_pb2.DebitRequest(call=cd(usage_s=60), request_id="cgrid1:*default:0",
                                    request_type="*prepaid", allow_partial=True)
        first = await stub.Debit(req)
        again = await stub.Debit(req)
        assert (first.cost, first.usage_ns, first.duplicate) == ("0.6", 60 * SECOND, False)
        assert (again.cost, again.duplicate) == ("0.6", True)
        acc = await stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1001"))
        assert monetary(acc) == Decimal("9.4")

        # keep 30 s of it: the whole increments after 30 s come back, once
        ref = rals_pb2.RefundRequest(debit_request_ids=["cgrid1:*default:0"], keep_usage_ns=30 * SECOND,
                                     refund_id="cgrid1:*default:refund")
        r1 = await stub.Refund(ref)
        r2 = await stub.Refund(ref)
        assert r2.duplicate and r1.refunded_cost == r2.refunded_cost
        acc = await stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1001"))
        assert monetary(acc) == Decimal("9.4") + Decimal(r1.refunded_cost)


async def test_session_debits_keep_their_event_cost_and_the_refund_answers_it_merged(sqlite_url):
    async with serve(RalsServer, sqlite_url) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        ids = ["cg2:*default:0", "cg2:*default:1"]
        for n, (offset_s, usage_s) in enumerate(((0, 70), (70, 30))):
            piece = cd(usage_s=usage_s, cgrid="cg2", run_id="*default", loop_index=n,
                       duration_index_ns=(offset_s + usage_s) * SECOND)
            piece.time_start_unix_ns = T0 + offset_s * SECOND
            res = await stub.Debit(rals_pb2.DebitRequest(call=piece, request_id=ids[n], request_type="*prepaid",
                                                         allow_partial=True, keep_event_cost=True))
            assert res.cost_details_json == ""  # kept in the journal, not answered
        ref = rals_pb2.RefundRequest(debit_request_ids=ids, keep_usage_ns=85 * SECOND, refund_id="cg2:*default:refund",
                                     round_kept=True, want_event_cost=True)
        r1, r2 = await stub.Refund(ref), await stub.Refund(ref)
        ec = loads_exact(r1.event_cost_json)
        assert r2.duplicate and r2.event_cost_json == r1.event_cost_json
        # 0.4 + 0.2 + 40 x 0.00167 charged, 15 x 0.00167 back, +0.00005 rounding kept
        assert (ec["CGRID"], ec["Usage"], ec["Cost"]) == ("cg2", 85 * SECOND, Decimal("0.6418"))
        assert Decimal("0.6668") - Decimal(r1.refunded_cost) == ec["Cost"]


async def test_max_usage_and_errors(pg_url):
    async with serve(RalsServer, pg_url) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        # 1001 -> 1003 is capped by MaxCost *disconnect at 12 s... of a 3 h request
        mu = await stub.GetMaxUsage(cd(destination="1003", usage_s=3 * 3600))
        assert mu.max_usage_ns == 12 * SECOND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetMaxUsage(cd(account="ghost"))
        assert err.value.details().startswith("ACCOUNT_NOT_FOUND")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Debit(rals_pb2.DebitRequest(call=cd()))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == "MANDATORY_IE_MISSING: [RequestID]"


async def test_set_balance_and_actions(sqlite_url):
    async with serve(RalsServer, sqlite_url) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        acc = await stub.SetBalance(rals_pb2.SetBalanceRequest(
            tenant="cgrates.org", account="2001", balance_type="*monetary", value="12.3456789",
            balance=rals_pb2.Balance(id="main")))
        assert [(b.id, b.value) for b in acc.balances] == [("main", "12.34568")]  # global rounding 5
        ids = await stub.GetAccountIDs(common_pb2.TenantRequest(tenant="cgrates.org"))
        assert {"1001", "1002", "1003", "2001"} <= set(ids.ids)
        await stub.ExecuteActions(rals_pb2.ExecuteActionsRequest(
            tenant="cgrates.org", account="2001", actions_id="ACT_TOPUP_RST_10"))
        acc = await stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="2001"))
        assert {b.id: b.value for b in acc.balances}["test"] == "10"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SetBalance(rals_pb2.SetBalanceRequest(account="2001", value="ten"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_reload_keeps_balances(sqlite_url):
    async with serve(RalsServer, sqlite_url) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        await stub.Debit(rals_pb2.DebitRequest(call=cd(usage_s=60), request_id="x:1", request_type="*prepaid", allow_partial=True))
        resp = await stub.ReloadCache(common_pb2.ReloadCacheRequest())
        assert resp.tpid == "cgrpy" and resp.loaded["Rates"] == 9
        acc = await stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1001"))
        assert monetary(acc) == Decimal("9.4")  # the *asap top-up did not run again


async def test_verify_accounts(sqlite_url):
    """VerifyAccounts reads balances and journal from the StorDB: consistent after real changes,
    a balance changed behind RALs' back is named with both amounts, a missing account is an
    error of its own line, and nothing is changed."""
    from sqlalchemy import update

    from cgrpy.storage.db import make_engine
    from cgrpy.storage.models.accounts import balances

    async with serve(RalsServer, sqlite_url) as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        await stub.Debit(rals_pb2.DebitRequest(call=cd(usage_s=60), request_id="v:1"))
        everyone = await stub.VerifyAccounts(rals_pb2.VerifyAccountsRequest())
        assert [(c.tenant, c.account, c.ok) for c in everyone.accounts] == [
            ("cgrates.org", "1001", True), ("cgrates.org", "1002", True),
            ("cgrates.org", "1003", True)]
        engine = make_engine(sqlite_url)
        with engine.begin() as conn:
            conn.execute(update(balances).where(balances.c.account == "1002").values(value="11"))
        engine.dispose()
        res = await stub.VerifyAccounts(rals_pb2.VerifyAccountsRequest(accounts=["1002", "nobody"]))
        bad, missing = res.accounts
        assert (bad.tenant, bad.account, bad.ok, bad.error) == ("cgrates.org", "1002", False, "")
        assert [(d.value, d.journal_sum) for d in bad.differences] == [("11", "10")]
        assert (missing.account, missing.ok) == ("nobody", False) and "NOT_FOUND" in missing.error
        again = await stub.VerifyAccounts(rals_pb2.VerifyAccountsRequest(tenant="other.org"))
        assert list(again.accounts) == []
