"""RALs benchmark : GetCost in process and over gRPC, Debit on Postgres.

Run: ``.venv/bin/python -m bench.rals_bench [--runs 20000] [--seconds 5] [--debits 2000]
[--pg ADMIN_URL]``. Prints one JSON object. Not a unit test.

1. ``get_cost`` in process on the tutorial plan, 1001 -> 1002, 85 s (EventCost 0.64175): per-call
   latency over ``--runs`` calls (median, p99; target median <= 15 us).
2. ``GetCost`` over gRPC against a real RALs process (``python -m services.rals`` on a fresh
   Postgres database with the tutorial plan): calls/s with 16 concurrent clients for
   ``--seconds``.
3. ``Debit`` (``*postpaid``, fresh request id each) over gRPC on that RALs, 16 concurrent clients:
   debits/s all on one account (every debit waits for the account's previous commit), and
   spread over 1,000 accounts; then ``GetMaxUsage`` on those (warm) accounts. Each with the CPU
   per operation of the RALs process and of the Postgres backends of its database
   (``rals_cpu_ms``, ``pg_cpu_ms``, from /proc).
The client and the server share the machine: on 2 cores the client's own CPU is part of the
number.

``--rate R [--duration S] [--call-length L] [--accounts N] [--postpaid-ratio P]`` runs only an
open-loop *call* load shaped as the suite drives RALs, R calls/s for S seconds: a prepaid call is
GetMaxUsage, a first MaxDebit piece (``keep_event_cost``), a second one L/2 later, and the
session's Refund (``want_event_cost``, ``round_kept``) L/2 after that; a postpaid call is one CDR
Debit (``want_event_cost``). It prints RALs's and Postgres's CPU per call, latencies per RPC and
the transactions Postgres committed per call (group commits: fewer than the writes when
batched). Compare a low and a high rate to see how the cost per call moves with load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cgrates.v1 import rals_pb2, rals_pb2_grpc
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.storage.tariffplans import replace_tariffplan
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND, to_unix_nano
from services.rals.rating import CallDescriptor, RatingData, get_cost

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = REPO / "tariffplans" / "tutorial"
T0 = datetime(2014, 8, 4, 13, 0, 0, tzinfo=UTC)
CLIENTS = 16


def bench_in_process(runs: int) -> dict[str, Any]:
    data = RatingData.from_rows(read_folder(TUTORIAL))
    cd = CallDescriptor(tenant="cgrates.org", category="call", subject="1001", account="1001",
                        destination="1002", time_start=T0, usage_ns=85 * SECOND)
    assert get_cost(data, cd, rounding_decimals=5).event_cost_amount() == Decimal("0.64175")
    for _ in range(min(1000, runs)):  # warm caches
        get_cost(data, cd, rounding_decimals=5)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        t = clock()
        get_cost(data, cd, rounding_decimals=5)
        samples.append(clock() - t)
    samples.sort()
    with_details = []
    for _ in range(min(runs, 5000)):
        t = clock()
        get_cost(data, cd, rounding_decimals=5).to_event_cost()
        with_details.append(clock() - t)
    with_details.sort()
    return {
        "runs": runs,
        "median_us": round(statistics.median(samples) / 1000, 2),
        "p99_us": round(samples[int(len(samples) * 0.99) - 1] / 1000, 2),
        "mean_us": round(sum(samples) / len(samples) / 1000, 2),
        "median_with_event_cost_us": round(statistics.median(with_details) / 1000, 2),
        "target_median_us": 15,
    }


def _free_port() -> int:
    from tests.suite import free_port  # below the ephemeral range (see there)

    return free_port()


class RalsProcess:
    """``python -m services.rals`` on a fresh Postgres database holding the tutorial plan."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.dbname = f"cgrpy_bench_{uuid.uuid4().hex[:8]}"
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.dbname
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def _admin(self, sql: str) -> None:
        libpq = self.admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(sql)

    def __enter__(self) -> RalsProcess:
        self._admin(f'CREATE DATABASE "{self.dbname}"')
        upgrade(self.url)
        engine = make_engine(self.url)
        replace_tariffplan(engine, "cgrpy", read_folder(TUTORIAL), source="tutorial")
        engine.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
        env.update({"CGRPY_STORDB_URL": self.url, "CGRPY_RALS_GRPC_PORT": str(self.port),
                    "CGRPY_RALS_METRICS_PORT": str(_free_port()), "CGRPY_LOG_LEVEL": "warning"})
        self.proc = subprocess.Popen([sys.executable, "-m", "services.rals"], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(self.addr) as ch:
            while True:
                try:
                    r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                             timeout=1)
                    if r.status == health_pb2.HealthCheckResponse.SERVING:
                        return self
                except grpc.RpcError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("RALs did not start")
                time.sleep(0.1)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._admin(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU spent by the RALs process and by the Postgres backends serving its database."""

    def __init__(self, rals: RalsProcess) -> None:
        self.rals = rals
        self._start: dict[int, float] = {}

    def _pids(self) -> list[int]:
        libpq = self.rals.admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(libpq, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                (self.rals.dbname,)).fetchall()
        return [r[0] for r in rows]

    def start(self) -> None:
        assert self.rals.proc is not None
        self._start = {p: _cpu_s(p) for p in [self.rals.proc.pid, *self._pids()]}

    def per_op_ms(self, ops: int) -> dict[str, float]:
        assert self.rals.proc is not None
        rals_pid = self.rals.proc.pid
        rals = _cpu_s(rals_pid) - self._start.get(rals_pid, 0.0)
        pg = sum(_cpu_s(p) - self._start.get(p, 0.0) for p in self._pids())
        return {"rals_cpu_ms": round(rals * 1000 / ops, 3), "pg_cpu_ms": round(pg * 1000 / ops, 3)}


def _cd(account: str = "1001", usage_s: int = 85) -> rals_pb2.CallDescriptor:
    return rals_pb2.CallDescriptor(
        tenant="cgrates.org", category="call", subject="1001", account=account,
        destination="1002", tor="*voice", time_start_unix_ns=to_unix_nano(T0),
        usage_ns=usage_s * SECOND)


async def bench_grpc_getcost(addr: str, seconds: float) -> dict[str, Any]:
    # One channel per client: 16 independent connections, like 16 callers.
    channels = [grpc.aio.insecure_channel(addr) for _ in range(CLIENTS)]
    stubs = [rals_pb2_grpc.RalsServiceStub(c) for c in channels]
    assert (await stubs[0].GetCost(_cd())).cost == "0.64175"
    stop = time.monotonic() + seconds
    counts = [0] * CLIENTS
    latencies: list[float] = []

    async def client(i: int) -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            await stubs[i].GetCost(_cd(), timeout=10)
            latencies.append(time.perf_counter() - t)
            counts[i] += 1

    t0 = time.monotonic()
    await asyncio.gather(*[client(i) for i in range(CLIENTS)])
    elapsed = time.monotonic() - t0
    for c in channels:
        await c.close()
    latencies.sort()
    return {"clients": CLIENTS, "seconds": round(elapsed, 2), "calls": sum(counts),
            "calls_per_s": round(sum(counts) / elapsed, 1),
            "median_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)}


async def bench_debits(addr: str, n: int, accounts: list[str], meter: CpuMeter | None = None,
                       max_usage: bool = False) -> dict[str, Any]:
    channels = [grpc.aio.insecure_channel(addr) for _ in range(CLIENTS)]
    stubs = [rals_pb2_grpc.RalsServiceStub(c) for c in channels]
    gate = asyncio.Semaphore(CLIENTS)
    # accounts with a big balance (not timed)
    async def fund(i: int, acc: str) -> None:
        async with gate:
            await stubs[i % CLIENTS].SetBalance(rals_pb2.SetBalanceRequest(
                tenant="cgrates.org", account=acc, balance_type="*monetary", value="1000000",
                balance=rals_pb2.Balance(id="bench")), timeout=30)
    await asyncio.gather(*[fund(i, a) for i, a in enumerate(accounts)])
    run = uuid.uuid4().hex[:8]
    next_job = iter(range(n))
    latencies: list[float] = []
    total = Decimal(0)

    async def client(i: int) -> None:
        nonlocal total
        for k in next_job:
            t = time.perf_counter()
            if max_usage:
                await stubs[i].GetMaxUsage(_cd(accounts[k % len(accounts)]), timeout=60)
                latencies.append(time.perf_counter() - t)
                total += Decimal("0.6418")
                continue
            resp = await stubs[i].Debit(rals_pb2.DebitRequest(
                call=_cd(accounts[k % len(accounts)]), request_id=f"bench:{run}:{k}",
                request_type="*postpaid"), timeout=60)
            latencies.append(time.perf_counter() - t)
            total += Decimal(resp.cost)

    if max_usage:  # answers from a warm account: one debit each first (not timed)
        await asyncio.gather(*[stubs[0].Debit(rals_pb2.DebitRequest(
            call=_cd(a), request_id=f"warm:{run}:{a}", request_type="*postpaid"), timeout=60)
            for a in accounts])
    if meter is not None:
        meter.start()
    t0 = time.monotonic()
    await asyncio.gather(*[client(i) for i in range(CLIENTS)])
    elapsed = time.monotonic() - t0
    cpu = meter.per_op_ms(n) if meter is not None else {}
    for c in channels:
        await c.close()
    latencies.sort()
    assert total == Decimal("0.6418") * n, total  # every debit charged exactly the CDR cost
    return {**cpu, "accounts": len(accounts), "debits": n, "seconds": round(elapsed, 2),
            "debits_per_s": round(n / elapsed, 1),
            "median_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)}


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * q))] * 1000, 2) if xs else 0.0


def _xact_commit(rals: RalsProcess) -> int:
    libpq = rals.admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                           (rals.dbname,)).fetchone()
    return int(row[0]) if row else 0


class CallLoad:
    """Open-loop calls at a fixed rate against one RALs (see module doc, ``--rate``)."""

    def __init__(self, addr: str, accounts: list[str], call_length_s: float,
                 postpaid_ratio: float) -> None:
        self.addr = addr
        self.accounts = accounts
        self.half = call_length_s / 2
        self.postpaid_every = round(1 / postpaid_ratio) if postpaid_ratio > 0 else 0
        self.run = uuid.uuid4().hex[:8]
        self.lat: dict[str, list[float]] = {"GetMaxUsage": [], "Debit": [], "Refund": [],
                                            "CdrDebit": []}
        self.errors: list[str] = []
        self.done = 0

    async def _timed(self, name: str, coro: Any) -> Any:
        t = time.perf_counter()
        out = await coro
        self.lat[name].append(time.perf_counter() - t)
        return out

    async def call(self, stub: rals_pb2_grpc.RalsServiceStub, k: int) -> None:
        acc = self.accounts[k % len(self.accounts)]
        cgrid = f"{self.run}{k:08d}"
        try:
            if self.postpaid_every and k % self.postpaid_every == 0:
                cd = _cd(acc, 20)
                cd.cgrid, cd.run_id = cgrid, "*default"
                await self._timed("CdrDebit", stub.Debit(rals_pb2.DebitRequest(
                    call=cd, request_id=f"{cgrid}:cdr", request_type="*postpaid",
                    want_event_cost=True), timeout=60))
                self.done += 1
                return
            await self._timed("GetMaxUsage", stub.GetMaxUsage(_cd(acc, 20), timeout=60))
            ids = []
            for loop in (0, 1):
                cd = _cd(acc, 10)
                cd.cgrid, cd.run_id, cd.loop_index = cgrid, "*default", loop
                cd.time_start_unix_ns += loop * 10 * SECOND
                cd.duration_index_ns = (loop + 1) * 10 * SECOND
                ids.append(f"{cgrid}:*default:{loop}")
                await self._timed("Debit", stub.Debit(rals_pb2.DebitRequest(
                    call=cd, request_id=ids[-1], request_type="*prepaid", allow_partial=True,
                    keep_event_cost=True), timeout=60))
                await asyncio.sleep(self.half)
            r = await self._timed("Refund", stub.Refund(rals_pb2.RefundRequest(
                debit_request_ids=ids, keep_usage_ns=17 * SECOND, refund_id=f"{cgrid}:refund",
                round_kept=True, want_event_cost=True), timeout=60))
            assert r.event_cost_json, "the session's EventCost"
            self.done += 1
        except Exception as exc:  # noqa: BLE001 - counted and shown, the load goes on
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")

    async def drive(self, rate: float, seconds: float) -> float:
        channels = [grpc.aio.insecure_channel(self.addr) for _ in range(CLIENTS)]
        stubs = [rals_pb2_grpc.RalsServiceStub(c) for c in channels]
        n = int(rate * seconds)
        tasks = []
        t0 = time.monotonic()
        for k in range(n):
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.call(stubs[k % CLIENTS], k)))
        placed = time.monotonic() - t0
        await asyncio.gather(*tasks)
        for c in channels:
            await c.close()
        return n / placed if placed > 0 else 0.0


async def _fund(addr: str, accounts: list[str]) -> None:
    async with grpc.aio.insecure_channel(addr) as ch:
        stub = rals_pb2_grpc.RalsServiceStub(ch)
        gate = asyncio.Semaphore(CLIENTS)

        async def one(acc: str) -> None:
            async with gate:
                await stub.SetBalance(rals_pb2.SetBalanceRequest(
                    tenant="cgrates.org", account=acc, balance_type="*monetary",
                    value="1000000", balance=rals_pb2.Balance(id="bench")), timeout=30)
                # warm: loaded into RALs's memory before the clock starts, as a live suite's
                await stub.GetMaxUsage(_cd(acc), timeout=30)

        await asyncio.gather(*[one(a) for a in accounts])


def bench_rate(rals: RalsProcess, args: argparse.Namespace) -> dict[str, Any]:
    accounts = [f"r{i:05d}" for i in range(args.accounts)]
    asyncio.run(_fund(rals.addr, accounts))
    load = CallLoad(rals.addr, accounts, args.call_length, args.postpaid_ratio)
    meter = CpuMeter(rals)
    time.sleep(1)  # let pg_stat_database catch up with the funding
    xacts = _xact_commit(rals)
    meter.start()
    achieved = asyncio.run(load.drive(args.rate, args.duration))
    calls = max(load.done, 1)
    cpu = meter.per_op_ms(calls)
    time.sleep(1)
    commits = _xact_commit(rals) - xacts
    writes = sum(len(load.lat[k]) for k in ("Debit", "Refund", "CdrDebit"))
    return {
        "rate": args.rate, "achieved_cps": round(achieved, 1), "calls": load.done,
        "errors": len(load.errors), "first_errors": load.errors[:3], **cpu,
        "pg_commits_per_write": round(commits / max(writes, 1), 3),
        **{f"{k}_p50_ms": _pct(v, 0.5) for k, v in load.lat.items() if v},
        **{f"{k}_p99_ms": _pct(v, 0.99) for k, v in load.lat.items() if v},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--debits", type=int, default=2000)
    ap.add_argument("--pg", default=os.environ.get(
        "CGRPY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--rate", type=float, default=0.0,
                    help="only the open-loop call load, at this many calls/s")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--call-length", type=float, default=2.0, help="seconds, --rate only")
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--postpaid-ratio", type=float, default=0.2)
    args = ap.parse_args()
    out: dict[str, Any] = {"load_before": os.getloadavg()}
    if args.rate > 0:
        with RalsProcess(args.pg) as rals:
            print(f"rals pid {rals.proc.pid if rals.proc else '?'}", file=sys.stderr, flush=True)
            out["calls"] = bench_rate(rals, args)
        out["load_after"] = os.getloadavg()
        print(json.dumps(out, indent=2))
        return
    out["getcost_in_process"] = bench_in_process(args.runs)
    with RalsProcess(args.pg) as rals:
        out["getcost_grpc"] = asyncio.run(bench_grpc_getcost(rals.addr, args.seconds))
        meter = CpuMeter(rals)
        out["debit_one_account"] = asyncio.run(bench_debits(rals.addr, args.debits, ["bench1"],
                                                            meter))
        many = [f"b{i:04d}" for i in range(1000)]
        out["debit_1000_accounts"] = asyncio.run(bench_debits(rals.addr, args.debits, many, meter))
        out["max_usage_1000_accounts"] = asyncio.run(bench_debits(
            rals.addr, args.debits, many, meter, max_usage=True))
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
