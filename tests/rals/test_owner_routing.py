"""Owner routing with two real RALs processes on one Postgres: a client that knows who owns which
partition (``GetOwnership``) sends each account's calls straight to its owner, so no call takes
the forwarding hop; a client without the lookup spreads them over both (and the non-owner
forwards). Money stays exact either way."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from cgrates.v1 import common_pb2, rals_pb2, rals_pb2_grpc
from cgrpy.config import load_settings
from cgrpy.runtime import balance
from cgrpy.runtime.balance import rals_owners
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.partitions import partition_of
from cgrpy.units import SECOND
from tests.rals.test_concurrency_processes import T0, two_rals, two_rals_procs  # noqa: F401 - fixtures

ACCOUNTS = [f"route{i}" for i in range(8)]


def _debit(account: str, rid: str) -> rals_pb2.DebitRequest:
    return rals_pb2.DebitRequest(request_id=rid, request_type="*prepaid", call=rals_pb2.CallDescriptor(
        tenant="cgrates.org", category="call", subject="1001", account=account, destination="1002",
        tor="*voice", time_start_unix_ns=T0, usage_ns=60 * SECOND))


def _calls_by_addr(client: ServiceClient) -> dict[str, int]:
    return {r.addr: sum(r.client.calls_by_transport.values()) for r in client.balancer.replicas}


async def _held(settings, addr: str) -> set[int]:
    one = ServiceClient(settings, "rals", rals_pb2_grpc.RalsServiceStub, addr=addr)
    try:
        return set((await one.call("GetOwnership", common_pb2.Empty())).partitions)
    finally:
        await one.close()


async def test_calls_go_straight_to_the_owner_of_their_account(two_rals: list[str], monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(balance, "OWNERS_REFRESH_S", 0.1)
    settings = load_settings(env={"CGRPY_RALS_ADDR": ",".join(two_rals)})
    routed = ServiceClient(settings, "rals", rals_pb2_grpc.RalsServiceStub, owners=rals_owners)
    try:
        direct = [ServiceClient(settings, "rals", rals_pb2_grpc.RalsServiceStub, addr=a) for a in two_rals]
        try:  # each account's partition gets an owner: the replica first asked, half each
            for i, acc in enumerate(ACCOUNTS):
                await direct[i % 2].call("SetBalance", rals_pb2.SetBalanceRequest(
                    tenant="cgrates.org", account=acc, balance_type="*monetary", value="100",
                    balance=rals_pb2.Balance(id="m")))
                await direct[i % 2].call("Debit", _debit(acc, f"{acc}-warm"), idempotent=True)
        finally:
            for d in direct:
                await d.close()
        held = {addr: await _held(settings, addr) for addr in two_rals}
        owner = {acc: next(a for a, h in held.items() if partition_of(f"cgrates.org:{acc}") in h)
                 for acc in ACCOUNTS}
        assert len(set(owner.values())) == 2, "the accounts should be spread over both replicas"
        for _ in range(100):  # the client's map of owners catches up in the background
            if all(routed.balancer.owner(f"cgrates.org:{a}") is not None for a in ACCOUNTS):
                break
            await asyncio.sleep(0.05)
        monkeypatch.setattr(balance, "OWNERS_REFRESH_S", 1000.0)  # no lookup counted below
        await asyncio.sleep(0.2)
        before, routed_before = _calls_by_addr(routed), routed.balancer.routed
        sent = dict.fromkeys(two_rals, 0)
        for n in range(4):
            for acc in ACCOUNTS:
                await routed.call("Debit", _debit(acc, f"{acc}-{n}"), idempotent=True, route=f"cgrates.org:{acc}")
                sent[owner[acc]] += 1
        after = _calls_by_addr(routed)
        assert routed.balancer.routed - routed_before == 4 * len(ACCOUNTS)
        assert {a: after[a] - before[a] for a in two_rals} == sent  # every call went to its owner
        for acc in ACCOUNTS:  # 5 one-minute debits (0.6 each at T0 in the tutorial plan) from 100, exactly
            acct = await routed.call("GetAccount", common_pb2.TenantID(tenant="cgrates.org", id=acc))
            assert sum(Decimal(b.value) for b in acct.balances) == Decimal("100") - 5 * Decimal("0.6")
    finally:
        await routed.close()


async def test_without_the_lookup_calls_take_the_rotation(two_rals: list[str]) -> None:  # noqa: F811
    settings = load_settings(env={"CGRPY_RALS_ADDR": ",".join(two_rals)})
    plain = ServiceClient(settings, "rals", rals_pb2_grpc.RalsServiceStub)
    try:
        for _ in range(6):
            await plain.call("GetMaxUsage", _debit("1001", "x").call, idempotent=True, route="cgrates.org:1001")
        assert plain.balancer.routed == 0 and sorted(_calls_by_addr(plain).values()) == [3, 3]
    finally:
        await plain.close()
