"""AddBalance/DebitBalance racing Debits on one account, through a real RALs gRPC server on
Postgres: every top-up and every debit lands, exactly once.

AddBalance used to read the balance in one transaction and write ``current + value`` in another:
a debit committed in between was overwritten (lost). Now the read-add-write is one journaled
change under the account lock, so the final balance is the start plus every top-up minus every
debit, the journal has one row per request with exactly its amount, and the journal's running
sum is the balance at every step (what ``cgr account verify`` proves).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import grpc

from cgrates.v1 import rals_pb2, rals_pb2_grpc
from cgrpy.cli.main import main as main_cli
from cgrpy.storage.db import make_engine
from cgrpy.units import SECOND, parse_time, to_unix_nano
from services.rals.accounts.store import AccountStore
from services.rals.server import RalsServer
from tests.harness import serve

T0 = to_unix_nano(parse_time("2014-08-04T13:00:00Z"))
ACCOUNT = "conc_add"
START = Decimal(1000)
N = 100  # of each: top-ups, admin debits (DebitBalance), call debits


def add_value(i: int) -> Decimal:
    return Decimal(1 + i % 7) / 4  # 0.25 .. 1.75


async def test_add_balance_and_debits_at_once_lose_nothing(pg_url: str) -> None:
    async with serve(RalsServer, pg_url, tariffplan="tutorial") as rals:
        channel = grpc.aio.insecure_channel(rals.addr)
        stub = rals_pb2_grpc.RalsServiceStub(channel)
        try:
            await stub.SetBalance(rals_pb2.SetBalanceRequest(
                tenant="cgrates.org", account=ACCOUNT, balance_type="*monetary", value=str(START),
                balance=rals_pb2.Balance(id="main")))
            gate = asyncio.Semaphore(48)

            async def add(value: Decimal) -> None:
                async with gate:
                    await stub.AddBalance(rals_pb2.SetBalanceRequest(
                        tenant="cgrates.org", account=ACCOUNT, balance_type="*monetary",
                        value=str(value), balance=rals_pb2.Balance(id="main")), timeout=60)

            async def debit(i: int) -> Decimal:
                async with gate:
                    r = await stub.Debit(rals_pb2.DebitRequest(
                        call=rals_pb2.CallDescriptor(
                            tenant="cgrates.org", category="call", subject="1001", account=ACCOUNT,
                            destination="1002", tor="*voice", time_start_unix_ns=T0,
                            usage_ns=(1 + (i * 37) % 300) * SECOND),
                        request_id=f"conc_add:{i}", request_type="*postpaid"), timeout=60)
                    return Decimal(r.cost)

            adds = [add_value(i) for i in range(N)] + [-add_value(i + 3) for i in range(N)]
            jobs: list = []
            for i in range(N):  # interleaved: top-up, admin debit, call debit, ...
                jobs += [add(adds[i]), add(adds[N + i]), debit(i)]
            results = await asyncio.gather(*jobs)
            charged = sum((r for r in results if isinstance(r, Decimal)), Decimal(0))
            assert charged > 0
            assert await asyncio.to_thread(main_cli, [
                "account", "verify", ACCOUNT, "--tenant", "cgrates.org", "--addr", rals.addr]) == 0
        finally:
            await channel.close()

    expected = START + sum(adds, Decimal(0)) - charged
    engine = make_engine(pg_url)
    try:
        store = AccountStore(engine)
        (main,) = store.get_account("cgrates.org", ACCOUNT).balances
        assert main.value == expected
        journal = store.journal("cgrates.org", ACCOUNT)
        by_reason: dict[str, list[Decimal]] = {}
        for j in journal:
            by_reason.setdefault(j["reason"], []).append(j["delta"])
        # one row per request, each with exactly its own amount
        assert sorted(by_reason["add_balance"]) == sorted(adds)
        assert len(by_reason["debit"]) == N and -sum(by_reason["debit"], Decimal(0)) == charged
        assert by_reason["set_balance"] == [START]
        running = Decimal(0)
        for j in journal:  # in commit order, value_after is the running sum: no lost update
            running += j["delta"]
            assert j["value_after"] == running
        assert running == expected
        assert store.verify("cgrates.org", ACCOUNT) == {}
    finally:
        engine.dispose()
