"""Shared groups over JSON-RPC against a real suite: oldtutorial (SHARED_A, *highest: 1001 holds 5
in it, 1007 holds 0) on Postgres with two RALs replicas, one owning 1001 and the other 1007. A
call of 1007 is paid from 1001's shared balance to the cent whichever replica serves it; both
accounts show it in the v0.10 GetAccount shape; concurrent calls never overspend it; every
member's journal proves its balances on both replicas. Also APIerSv1.GetSharedGroup, SetBalance
with SharedGroups and the TP API of SharedGroups.csv."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal as D

import grpc
import pytest

from cgrates.v1 import common_pb2, rals_pb2, rals_pb2_grpc
from cgrpy.config import REPLICA_PORT_STEP
from tests.apier.jsonrpc_client import TcpClient, err, ok
from tests.suite import REPO, Suite, replica_env, started, suite_env

pytestmark = pytest.mark.e2e

OLDTUTORIAL = REPO / "tariffplans" / "oldtutorial"
T0 = "2014-08-04T13:00:00Z"  # Monday, peak: 0.80 connect fee + 0.40 first minute
S = 1_000_000_000


def _stub(suite: Suite, replica: int) -> tuple[grpc.Channel, rals_pb2_grpc.RalsServiceStub]:
    port = int(suite.env["CGRPY_RALS_GRPC_PORT"]) + replica * REPLICA_PORT_STEP
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    return ch, rals_pb2_grpc.RalsServiceStub(ch)


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[Suite]:
    db = pg_databases.create()
    with started(lambda: Suite(suite_env(db, **replica_env()), "--tariffplan", str(OLDTUTORIAL))) as s:
        # the first replica asked about an account's partition owns it: 1001 -> replica 0,
        # 1007 -> replica 1 (partitions 60 and 9)
        for replica, account in ((0, "1001"), (1, "1007")):
            ch, stub = _stub(s, replica)
            with ch:
                stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account=account), timeout=10)
        yield s


@pytest.fixture
def api(suite) -> Iterator[TcpClient]:
    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    yield c
    c.close()


def _owned(suite: Suite) -> list[set[int]]:
    out = []
    for replica in (0, 1):
        ch, stub = _stub(suite, replica)
        with ch:
            out.append(set(stub.GetOwnership(common_pb2.Empty(), timeout=10).partitions))
    return out


def _verified(suite: Suite, *accounts: str) -> None:
    for replica in (0, 1):
        ch, stub = _stub(suite, replica)
        with ch:
            res = stub.VerifyAccounts(rals_pb2.VerifyAccountsRequest(
                tenant="cgrates.org", accounts=list(accounts)), timeout=30)
        assert [c.account for c in res.accounts] == list(accounts)
        assert all(c.ok for c in res.accounts), res


def call(account: str, cgrid: str, seconds: int = 60, **kw) -> dict:
    end = f"2014-08-04T13:{seconds // 60:02d}:{seconds % 60:02d}Z"
    return {"Tenant": "cgrates.org", "Category": "call", "Account": account, "Subject": account,
            "Destination": "1002", "TimeStart": T0, "TimeEnd": end, "DurationIndex": seconds * S,
            "CgrID": cgrid, "RunID": "*default", **kw}


def shared(api, account: str) -> dict:
    acc = ok(api.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": account}))
    [b] = [b for b in acc["BalanceMap"]["*monetary"] if b["SharedGroups"]]
    return b


def test_get_shared_group(api):
    assert ok(api.call("APIerSv1.GetSharedGroup", "SHARED_A")) == {
        "Id": "SHARED_A",
        "AccountParameters": {"*any": {"Strategy": "*highest", "RatingSubject": ""}},
        "MemberIds": {"cgrates.org:1001": True, "cgrates.org:1007": True},
    }
    # as v0.10: an unknown group is the empty one, not an error
    assert ok(api.call("APIerSv1.GetSharedGroup", "NOPE")) == {
        "Id": "", "AccountParameters": None, "MemberIds": None}


def test_call_of_1007_paid_from_1001_across_replicas(api, suite):
    assert _owned(suite)[0] >= {60} and _owned(suite)[1] >= {9}
    first = ok(api.call("Responder.Debit", call("1007", "sg-api-1")))
    assert first["Cost"] == D("1.2") and first["AccountSummary"]["ID"] == "1007"
    assert ok(api.call("Responder.Debit", call("1007", "sg-api-1"))) == first  # a retry: nothing more
    b1001, b1007 = shared(api, "1001"), shared(api, "1007")
    # the v0.10 Balance shape, the shared group as a StringMap
    assert (b1001["Value"], b1001["SharedGroups"], b1001["Weight"]) == (D("3.8"), {"SHARED_A": True}, 10)
    assert (b1007["Value"], b1007["SharedGroups"]) == (0, {"SHARED_A": True})
    own = ok(api.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": "1001"}))
    assert [b["Value"] for b in own["BalanceMap"]["*monetary"] if not b["SharedGroups"]] == [5]
    # 3.8 left: 0.80 + 0.40, then 2.60 at 0.20/min: 14 minutes
    assert ok(api.call("Responder.GetMaxSessionTime", call("1007", "sg-api-m", 3540))) == 840 * S
    # APIerSv1.GetAccount's legacy shape: the group as SharedGroup text
    legacy = ok(api.call("APIerSv1.GetAccount", {"Tenant": "cgrates.org", "Account": "1001"}))
    assert [(b["Value"], b["SharedGroup"]) for b in legacy["BalanceMap"]["*monetary*out"]] == [
        (5, ""), (D("3.8"), "SHARED_A")]
    _verified(suite, "1001", "1007")


def test_concurrent_calls_never_overspend(suite):
    """5 calls of 1007 at once, debt refused, on 3.80 - 1.20 = 2.60 left after the test above
    (or 3.80 alone): whatever their order, the shared balance stays ≥ 0 and moves by exactly
    what the passed calls cost, the fee of a call no balance covers going to 1007's *default."""
    def one(i: int) -> dict:
        c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
        try:
            return c.call("Responder.Debit", call("1007", f"sg-api-c{i}", DenyNegativeAccount=True))
        finally:
            c.close()

    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    try:
        before = shared(c, "1001")["Value"]
        with ThreadPoolExecutor(5) as pool:
            replies = list(pool.map(one, range(5)))
        passed = [r["result"]["Cost"] for r in replies if r["error"] is None]
        assert {r["error"] for r in replies if r["error"] is not None} <= {"INSUFFICIENT_CREDIT"}
        after = shared(c, "1001")["Value"]
        acc = ok(c.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": "1007"}))
        debt = sum((b["Value"] for b in acc["BalanceMap"]["*monetary"] if b["ID"] == "*default"), D(0))
        assert after >= 0 and passed and before - after - debt == sum(passed)
    finally:
        c.close()
    _verified(suite, "1001", "1007")


def _claim(suite: Suite, replica: int, account: str) -> None:
    """Make ``replica`` the owner of the account's partition: the first replica asked takes it
    (a new account answers NOT_FOUND, the partition is taken all the same)."""
    ch, stub = _stub(suite, replica)
    with ch:
        try:
            stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account=account), timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND, exc


def test_two_members_owned_by_two_replicas_debit_at_once(suite):
    """sg_a (owned by replica 0) holds 0 and sg_b (replica 1) holds 10 in SHARED_A, the oldtutorial
    members drained first; 20 one-minute calls of each at once through SM, debt refused: 8 calls
    leave 0.40, the 9th pays its fee from its caller's *default and the minute from the last
    0.40, every later one is refused. Exactly 9 pass whatever the order, the shared balances end
    at exactly 0, and both replicas prove every member's journal."""
    _claim(suite, 0, "sg_a")
    _claim(suite, 1, "sg_b")
    owned = _owned(suite)
    assert 35 in owned[0] and 25 in owned[1]  # the partitions of sg_a and sg_b
    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    try:
        for account, value in (("1001", 0), ("1007", 0), ("sg_new", 0), ("sg_a", 0), ("sg_b", 10)):
            assert ok(c.call("APIerSv1.SetBalance", {
                "Tenant": "cgrates.org", "Account": account, "BalanceType": "*monetary", "Value": value,
                "Balance": {"ID": "pool" if account.startswith("sg_") else "", "SharedGroups": ["SHARED_A"],
                            **({} if account.startswith("sg_") else {"Uuid": shared(c, account)["Uuid"]})}})) == "OK"
    finally:
        c.close()

    def one(job: tuple[str, int]) -> dict:
        account, i = job
        cl = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
        try:
            return cl.call("Responder.Debit", call(account, f"sg-two-{account}-{i}", DenyNegativeAccount=True))
        finally:
            cl.close()

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(one, [(a, i) for i in range(20) for a in ("sg_a", "sg_b")]))
    passed = [r["result"]["Cost"] for r in replies if r["error"] is None]
    assert len(passed) == 9 and sum(passed) == D("10.8")
    assert {r["error"] for r in replies if r["error"] is not None} == {"INSUFFICIENT_CREDIT"}
    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    try:
        assert [shared(c, a)["Value"] for a in ("sg_a", "sg_b")] == [0, 0]
    finally:
        c.close()
    _verified(suite, "1001", "1007", "sg_a", "sg_b", "sg_new")


def test_set_balance_with_shared_groups_joins_the_group(api):
    assert ok(api.call("APIerSv1.SetBalance", {
        "Tenant": "cgrates.org", "Account": "sg_new", "BalanceType": "*monetary", "Value": 7,
        "Balance": {"ID": "pool", "SharedGroups": ["SHARED_A"], "Weight": 10}})) == "OK"
    assert "cgrates.org:sg_new" in ok(api.call("APIerSv1.GetSharedGroup", "SHARED_A"))["MemberIds"]
    assert err(api.call("APIerSv1.SetBalance", {
        "Tenant": "cgrates.org", "Account": "sg_new", "BalanceType": "*monetary", "Value": 1,
        "Balance": {"ID": "other", "SharedGroups": ["NOPE"]}})) == "NOT_FOUND:SharedGroups NOPE"


def test_tp_shared_groups_in_the_live_tpid_are_live(api, suite):
    live = suite.env.get("CGRPY_TPID", "cgrpy")
    assert ok(api.call("APIerSv1.SetTPSharedGroups", {"TPid": live, "ID": "SG_LIVE", "SharedGroups": [
        {"Account": "*any", "Strategy": "*lowest", "RatingSubject": ""}]})) == "OK"
    assert ok(api.call("APIerSv1.GetSharedGroup", "SG_LIVE")) == {
        "Id": "SG_LIVE", "AccountParameters": {"*any": {"Strategy": "*lowest", "RatingSubject": ""}},
        "MemberIds": {}}
    assert ok(api.call("APIerSv1.RemoveTPSharedGroups", {"TPid": live, "ID": "SG_LIVE"})) == "OK"
    assert ok(api.call("APIerSv1.GetSharedGroup", "SG_LIVE"))["Id"] == ""


def test_tp_shared_groups(api):
    sg = {"TPid": "TP_SG", "ID": "SG_X", "SharedGroups": [
        {"Account": "*any", "Strategy": "*lowest", "RatingSubject": ""},
        {"Account": "1001", "Strategy": "*mine_highest", "RatingSubject": "SPECIAL_1002"}]}
    assert ok(api.call("APIerSv1.SetTPSharedGroups", sg)) == "OK"
    assert ok(api.call("APIerSv1.GetTPSharedGroups", {"TPid": "TP_SG", "ID": "SG_X"})) == sg
    assert ok(api.call("APIerSv1.GetTPSharedGroupIds", {"TPid": "TP_SG"})) == ["SG_X"]
    assert "INVALID_ARGUMENT" in err(api.call("APIerSv1.SetTPSharedGroups", {
        "TPid": "TP_SG", "ID": "SG_BAD", "SharedGroups": [{"Account": "*any", "Strategy": "*worst"}]}))
    assert err(api.call("APIerSv1.SetTPSharedGroups", {"TPid": "TP_SG", "ID": "SG_Y"})).startswith(
        "MANDATORY_IE_MISSING")
    assert ok(api.call("APIerSv1.RemoveTPSharedGroups", {"TPid": "TP_SG", "ID": "SG_X"})) == "OK"
    assert err(api.call("APIerSv1.GetTPSharedGroups", {"TPid": "TP_SG", "ID": "SG_X"})) == "NOT_FOUND"
