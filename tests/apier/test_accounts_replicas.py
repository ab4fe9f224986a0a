"""Accounts and action plans over JSON-RPC with two RALs replicas on one Postgres: SM spreads its
calls over both, so each account call lands on the owner or is forwarded to it; plan changes
reload both replicas. Money stays exact and both replicas answer the same plans and queue."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import common_pb2, rals_pb2_grpc
from cgrpy.config import REPLICA_PORT_STEP
from tests.apier.conftest import TUTORIAL
from tests.apier.jsonrpc_client import TcpClient, err, ok
from tests.suite import Suite, replica_env, started, suite_env

pytestmark = pytest.mark.e2e

ACCOUNTS = [f"rep_{i}" for i in range(8)]  # spread over partitions, so over both owners


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[Suite]:
    db = pg_databases.create()
    with started(lambda: Suite(suite_env(db, **replica_env()), "--tariffplan", str(TUTORIAL))) as s:
        yield s


@pytest.fixture
def api(suite) -> Iterator[TcpClient]:
    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    yield c
    c.close()


def _replica_queues(suite: Suite) -> list[list[tuple[str, str, tuple[str, ...]]]]:
    base = int(suite.env["CGRPY_RALS_GRPC_PORT"])
    out = []
    for port in (base, base + REPLICA_PORT_STEP):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            res = rals_pb2_grpc.RalsServiceStub(ch).GetScheduledActions(common_pb2.Empty(), timeout=10)
        out.append([(a.action_plan_id, a.actions_id, tuple(a.accounts)) for a in res.actions])
    return out


def test_set_account_plans_balances_on_both_replicas(api, suite):
    assert ok(api.call("APIerSv1.SetActions", {"ActionsId": "ACT_REP", "Actions": [
        {"Identifier": "*topup", "BalanceId": "rep", "BalanceType": "*monetary", "Units": "2.50001", "Weight": 10}]})) == "OK"
    assert ok(api.call("APIerSv1.SetActionPlan", {"Id": "AP_REP", "ActionPlan": [
        {"ActionsId": "ACT_REP", "Time": "*asap", "Weight": 10},
        {"ActionsId": "ACT_REP", "MonthDays": "1", "Time": "00:00:00", "Weight": 10}]})) == "OK"
    for name in ACCOUNTS:
        assert ok(api.call("APIerSv2.SetAccount", {"Account": name, "ActionPlanIDs": ["AP_REP"]})) == "OK"
    # both replicas reloaded: the same queue, every account attached
    queues = _replica_queues(suite)
    assert queues[0] == queues[1]
    assert ("AP_REP", "ACT_REP", tuple(sorted(f"cgrates.org:{n}" for n in ACCOUNTS))) in queues[0]

    for name in ACCOUNTS:
        assert ok(api.call("APIerSv1.SetBalance", {"Account": name, "BalanceType": "*monetary",
                                                   "BalanceID": "gone", "Value": 1})) == "OK"
        assert ok(api.call("APIerSv1.RemoveBalances", {"Account": name, "BalanceType": "*monetary",
                                                       "BalanceID": "gone"})) == "OK"
    accs = ok(api.call("APIerSv2.GetAccounts", {"AccountIDs": ACCOUNTS}))
    assert [a["ID"] for a in accs] == [f"cgrates.org:{n}" for n in ACCOUNTS]
    for a in accs:  # the *asap run once on each, exactly; the removed balance gone everywhere
        assert [(b["ID"], b["Value"]) for b in a["BalanceMap"]["*monetary"]] == [("rep", Decimal("2.50001"))]
    # a plan removed on one replica's service is gone on both
    assert ok(api.call("APIerSv1.RemoveActionPlan", {"ID": "AP_REP"})) == "OK"
    assert all(not any(p == "AP_REP" for p, _, _ in q) for q in _replica_queues(suite))
    assert err(api.call("APIerSv1.GetActionPlan", {"ID": "AP_REP"})) == "NOT_FOUND"
