"""Two real RALs processes on one Postgres StorDB: concurrent debits of one account lose nothing.

2 x 500 concurrent Debits (distinct request ids, one per process half) on one account with a big
balance; then 10 x the same request id spread over both processes. The final balance, the
journal and ``verify`` must be exact.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import Engine, func, select, text

from cgrates.v1 import rals_pb2, rals_pb2_grpc
from cgrpy.storage.db import make_engine
from cgrpy.storage.models.accounts import account_requests, balance_journal
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND, parse_time, to_unix_nano
from services.rals.accounts.store import AccountStore
from services.rals.partitions import LOCK_CLASS, partition_of
from services.rals.rating import CallDescriptor, RatingData, get_cost
from tests.conftest import TARIFFPLANS
from tests.harness import load_tariffplan
from tests.suite import REPO, free_port

T0 = to_unix_nano(parse_time("2014-08-04T13:00:00Z"))
START = Decimal("100000")
PER_PROCESS = 500
ACCOUNT = "conc"


def _rals_env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
    env.update({
        "CGRPY_STORDB_URL": db_url,
        "CGRPY_RALS_GRPC_PORT": str(free_port()),
        "CGRPY_RALS_METRICS_PORT": str(free_port()),
        "CGRPY_GRACE_PERIOD": "1s",
    })
    return env


@pytest.fixture
def two_rals(two_rals_procs: tuple[list[subprocess.Popen[bytes]], list[str]]) -> list[str]:
    return two_rals_procs[1]


@pytest.fixture
def two_rals_procs(pg_url: str) -> Iterator[tuple[list[subprocess.Popen[bytes]], list[str]]]:
    load_tariffplan(pg_url, "tutorial")
    procs: list[subprocess.Popen[bytes]] = []
    addrs: list[str] = []
    try:
        for _ in range(2):
            env = _rals_env(pg_url)
            procs.append(subprocess.Popen([sys.executable, "-m", "services.rals"], cwd=REPO, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            addrs.append(f"127.0.0.1:{env['CGRPY_RALS_GRPC_PORT']}")
        deadline = time.monotonic() + 30
        for proc, addr in zip(procs, addrs, strict=True):
            with grpc.insecure_channel(addr) as ch:
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"rals exited {proc.returncode}: "
                                           f"{proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
                    try:
                        resp = health_pb2_grpc.HealthStub(ch).Check(
                            health_pb2.HealthCheckRequest(service=""), timeout=1)
                        if resp.status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    except grpc.RpcError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"rals at {addr} not SERVING in 30 s")
                    time.sleep(0.1)
        yield procs, addrs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def call(usage_s: int) -> rals_pb2.CallDescriptor:
    return rals_pb2.CallDescriptor(
        tenant="cgrates.org", category="call", subject="1001", account=ACCOUNT, destination="1002",
        tor="*voice", time_start_unix_ns=T0, usage_ns=usage_s * SECOND)


def usage_of(i: int) -> int:
    return 1 + (i * 37) % 300  # 1 s .. 5 min: every slot of RT_20CNT and its rounding


async def test_two_processes_debit_one_account_exactly(two_rals: list[str], pg_url: str) -> None:
    channels = [grpc.aio.insecure_channel(a) for a in two_rals]
    stubs = [rals_pb2_grpc.RalsServiceStub(c) for c in channels]
    try:
        await stubs[0].SetBalance(rals_pb2.SetBalanceRequest(
            tenant="cgrates.org", account=ACCOUNT, balance_type="*monetary", value=str(START),
            balance=rals_pb2.Balance(id="big")))
        gate = asyncio.Semaphore(64)

        async def debit(p: int, i: int, rid: str) -> rals_pb2.CostResponse:
            async with gate:
                return await stubs[p].Debit(rals_pb2.DebitRequest(
                    call=call(usage_of(i)), request_id=rid, request_type="*postpaid"), timeout=60)

        t0 = time.monotonic()
        jobs = [debit(p, i, f"conc:{p}:{i}") for i in range(PER_PROCESS) for p in (0, 1)]
        results = await asyncio.gather(*jobs)
        elapsed = time.monotonic() - t0
        assert not any(r.duplicate for r in results)
        charged = sum((Decimal(r.cost) for r in results), Decimal(0))

        # Each cost is what the tariff plan says (CDR-style: DestinationRate-rounded), exactly.
        data = RatingData.from_rows(read_folder(TARIFFPLANS / "tutorial"))
        start = parse_time("2014-08-04T13:00:00Z")
        expected = Decimal(0)
        for _p in (0, 1):
            for i in range(PER_PROCESS):
                expected += get_cost(data, CallDescriptor(
                    tenant="cgrates.org", category="call", subject="1001", account=ACCOUNT,
                    destination="1002", time_start=start, usage_ns=usage_of(i) * SECOND),
                    rounding_decimals=5).cost
        assert charged == expected

        acc = await stubs[1].GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org",
                                                                account=ACCOUNT))
        (big,) = [b for b in acc.balances if b.id == "big"]
        assert Decimal(big.value) == START - charged

        # 10 x the same request id, spread over both processes: one debit, nine replays.
        same = await asyncio.gather(*[debit(n % 2, 7, "conc:same") for n in range(10)])
        assert sorted(r.duplicate for r in same) == [False] + [True] * 9
        assert len({r.cost for r in same}) == 1
        once = Decimal(same[0].cost)
        assert once > 0
    finally:
        for c in channels:
            await c.close()

    engine = make_engine(pg_url)
    try:
        store = AccountStore(engine)
        final = store.get_account("cgrates.org", ACCOUNT).by_uuid(big.uuid)
        assert final is not None and final.value == START - charged - once
        journal = [j for j in store.journal("cgrates.org", ACCOUNT) if j["balance_uuid"] == big.uuid]
        debits = [j for j in journal if j["reason"] == "debit"]
        assert len(debits) == 2 * PER_PROCESS + 1
        assert -sum((j["delta"] for j in debits), Decimal(0)) == charged + once
        assert sum((j["delta"] for j in journal), Decimal(0)) == final.value
        # value_after of the journal in id order is a running balance: no lost update anywhere
        running = Decimal(0)
        for j in journal:
            running += j["delta"]
            assert j["value_after"] == running
        assert store.verify("cgrates.org", ACCOUNT) == {}
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(account_requests).where(
                account_requests.c.account == ACCOUNT, account_requests.c.kind == "debit")).scalar()
            same_rows = conn.execute(select(func.count()).select_from(balance_journal).where(
                balance_journal.c.request_id == "conc:same")).scalar()
        assert (n, same_rows) == (2 * PER_PROCESS + 1, 1)
        # one process owned the account all along; the other forwarded to it
        assert _owners(engine, ACCOUNT) == 1
    finally:
        engine.dispose()
    print(f"\n2 x {PER_PROCESS} debits over two RALs processes in {elapsed:.1f} s")


def _owners(engine: Engine, account: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :k AND l.objid = :p "
            "AND a.application_name LIKE 'cgrpy-rals %' AND a.datname = current_database()"),
            {"k": LOCK_CLASS, "p": partition_of("cgrates.org", account)}).scalar_one()


async def test_owner_killed_mid_run_the_other_takes_over_exactly(
    two_rals_procs: tuple[list[subprocess.Popen[bytes]], list[str]], pg_url: str,
) -> None:
    """kill -9 the owning process while debits flow through both: the survivor takes the
    partition over, every request (retried with its id, as SM does) is charged exactly once."""
    procs, addrs = two_rals_procs
    channels = [grpc.aio.insecure_channel(a) for a in addrs]
    stubs = [rals_pb2_grpc.RalsServiceStub(c) for c in channels]
    n = 300
    try:
        await stubs[0].SetBalance(rals_pb2.SetBalanceRequest(  # process 0 becomes the owner
            tenant="cgrates.org", account=ACCOUNT, balance_type="*monetary", value=str(START),
            balance=rals_pb2.Balance(id="big")))
        gate = asyncio.Semaphore(16)
        done = 0

        async def debit(i: int) -> Decimal:
            nonlocal done
            req = rals_pb2.DebitRequest(call=call(usage_of(i)), request_id=f"fail:{i}",
                                        request_type="*postpaid")
            async with gate:
                for attempt in range(40):
                    stub = stubs[i % 2] if attempt == 0 else stubs[1]  # retry on the survivor
                    try:
                        r = await stub.Debit(req, timeout=10)
                        done += 1
                        return Decimal(r.cost)
                    except grpc.aio.AioRpcError:
                        await asyncio.sleep(0.1)
            raise AssertionError(f"debit {i} never answered")

        async def killer() -> None:
            while done < n // 4:
                await asyncio.sleep(0.01)
            procs[0].kill()

        costs, _ = await asyncio.gather(asyncio.gather(*[debit(i) for i in range(n)]), killer())
        charged = sum(costs, Decimal(0))
        acc = await stubs[1].GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org",
                                                                account=ACCOUNT))
        (big,) = [b for b in acc.balances if b.id == "big"]
        assert Decimal(big.value) == START - charged
    finally:
        for c in channels:
            await c.close()
    assert procs[0].wait(timeout=10) != 0
    engine = make_engine(pg_url)
    try:
        store = AccountStore(engine)
        journal = [j for j in store.journal("cgrates.org", ACCOUNT) if j["reason"] == "debit"]
        assert len(journal) == n and len({j["request_id"] for j in journal}) == n
        assert -sum((j["delta"] for j in journal), Decimal(0)) == charged
        assert store.verify("cgrates.org", ACCOUNT) == {}
        assert _owners(engine, ACCOUNT) == 1  # the survivor
    finally:
        engine.dispose()


async def test_owner_hung_the_other_serves_retry_safe_requests_once(
    two_rals_procs: tuple[list[subprocess.Popen[bytes]], list[str]], pg_url: str,
) -> None:
    """SIGSTOP the owner: its lease lives on, nobody can take the partition. The other process
    gives it half of a debit's deadline, then serves the debit itself on the locked path; once
    the owner resumes, the same request id there is a replay, charged once."""
    procs, addrs = two_rals_procs
    channels = [grpc.aio.insecure_channel(a) for a in addrs]
    stubs = [rals_pb2_grpc.RalsServiceStub(c) for c in channels]
    req = rals_pb2.DebitRequest(call=call(60), request_id="hung:1", request_type="*postpaid")
    try:
        await stubs[0].SetBalance(rals_pb2.SetBalanceRequest(  # process 0 becomes the owner
            tenant="cgrates.org", account=ACCOUNT, balance_type="*monetary", value=str(START),
            balance=rals_pb2.Balance(id="big")))
        os.kill(procs[0].pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            first = await stubs[1].Debit(req, timeout=4)
            took = time.monotonic() - t0
            assert Decimal(first.cost) > 0 and not first.duplicate
            assert 1.5 <= took < 4  # half of the deadline went to the hung owner
            t0 = time.monotonic()  # the next request does not wait for the hung owner again
            acc = await stubs[1].GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org",
                                                                    account=ACCOUNT), timeout=4)
            assert time.monotonic() - t0 < 1
            (big,) = [b for b in acc.balances if b.id == "big"]
            assert Decimal(big.value) == START - Decimal(first.cost)
        finally:
            os.kill(procs[0].pid, signal.SIGCONT)
        again = await stubs[0].Debit(req, timeout=10)  # the owner, resumed: a replay
        assert again.duplicate and again.cost == first.cost
    finally:
        for c in channels:
            await c.close()
    engine = make_engine(pg_url)
    try:
        store = AccountStore(engine)
        debits = [j for j in store.journal("cgrates.org", ACCOUNT) if j["request_id"] == "hung:1"]
        assert len(debits) == 1
        assert store.verify("cgrates.org", ACCOUNT) == {}
    finally:
        engine.dispose()
