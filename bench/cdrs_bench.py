"""CDR batch-path benchmark: cdre ProcessCDR for ``*postpaid`` CDRs of the tutorial plan, then
ExportCDRs of everything stored to CSV.

    .venv/bin/python bench/cdrs_bench.py [--cdrs 20000] [--concurrency 32] [--accounts 0]
        [--no-stats] [--pg-admin postgresql://postgres@127.0.0.1:5432/postgres] [--out FILE]

Creates a fresh Postgres database, starts the whole suite (``cgr up --tariffplan
tariffplans/tutorial``, so ChargerS → AttributeS, RALs, StatS, ThresholdS are the real servers
on real ports), posts ``--cdrs`` CDR events straight to cdre's gRPC ProcessCDR with
``--concurrency`` requests in flight, and measures:

* CDR events/s and CDR rows/s (the tutorial's chargers fork every event into ``*default``,
  rated and debited, and ``*raw``, ``*none``: two stored rows per event);
* export rows/s of one ``ExportCDRs`` (``*default`` template, CSV) of all stored rows;
* CPU seconds per service process, and the generator's own.

Then checks: every event stored once per run, no unrated ``*default`` row, and the money taken
from the accounts equals the sum of the ``*default`` costs. Accounts: the tutorial's 1001, 1002,
1003 by default (every debit of an account serialises on its row lock, as in production); with
``--accounts N`` N extra accounts rated with subject 1001 (spreads the row locks). Prints JSON.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc

from bench.calls import FreshDatabase
from bench.procstats import ProcWatch, self_cpu
from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, rals_pb2, rals_pb2_grpc
from cgrpy.event import CGREvent
from cgrpy.wire import event_to_pb

REPO = Path(__file__).resolve().parent.parent
TENANT = "cgrates.org"
# account -> (rating subject, destination): RP_1001 → DST_1002, RP_1002/RP_1003 → DST_1001
TUTORIAL = {"1001": ("1001", "1002"), "1002": ("1002", "1001"), "1003": ("1003", "1001")}


def cdr_requests(n: int, accounts: dict[str, tuple[str, str]], tag: str,
                 flags: list[str]) -> list[cdre_pb2.ProcessCDRRequest]:
    names = sorted(accounts)
    out = []
    for i in range(n):
        acc = names[i % len(names)]
        subject, dest = accounts[acc]
        ev = CGREvent(TENANT, f"{tag}-{i}", None, {
            "OriginID": f"{tag}-{i}", "OriginHost": "10.0.0.1", "Source": "bench",
            "RequestType": "*postpaid", "ToR": "*voice", "Category": "call",
            "Account": acc, "Subject": subject, "Destination": dest,
            "SetupTime": "2026-01-10T10:00:00Z", "AnswerTime": "2026-01-10T10:00:05Z",
            "Usage": f"{30 + i % 271}s",  # 30 s .. 300 s: both rate slots, varied increments
        })
        out.append(cdre_pb2.ProcessCDRRequest(event=event_to_pb(ev), flags=flags))
    return out


async def post_all(stub: cdre_pb2_grpc.CdrServiceStub, reqs: list[cdre_pb2.ProcessCDRRequest],
                   concurrency: int) -> tuple[float, list[float], list[str]]:
    """Post every request with ``concurrency`` in flight; (seconds, latencies, errors)."""
    queue = iter(reqs)
    latencies: list[float] = []
    errors: list[str] = []

    async def worker() -> None:
        for req in queue:  # a shared iterator: each request taken by exactly one worker
            t = time.perf_counter()
            try:
                await stub.ProcessCDR(req, timeout=30)
            except grpc.aio.AioRpcError as exc:
                errors.append(f"{exc.code().name}: {exc.details()}")
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, latencies, errors


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 1) if s else 0.0


async def monetary(rals: rals_pb2_grpc.RalsServiceStub, account: str) -> Decimal:
    acc = await rals.GetAccount(rals_pb2.AccountRequest(tenant=TENANT, account=account))
    return sum((Decimal(b.value) for b in acc.balances if b.type == "*monetary"), Decimal(0))


async def measure(args: argparse.Namespace, cdre_addr: str, rals_addr: str,
                  watch: ProcWatch | None, export_dir: Path) -> dict[str, Any]:
    opts = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(cdre_addr, options=opts) as cch, \
            grpc.aio.insecure_channel(rals_addr) as rch:
        cdre = cdre_pb2_grpc.CdrServiceStub(cch)
        rals = rals_pb2_grpc.RalsServiceStub(rch)
        accounts = dict(TUTORIAL)
        for i in range(args.accounts):
            acc = f"bench{i:05d}"
            await rals.SetAccount(rals_pb2.SetAccountRequest(tenant=TENANT, account=acc))
            await rals.SetBalance(rals_pb2.SetBalanceRequest(
                tenant=TENANT, account=acc, balance_type="*monetary", value="1000",
                balance=rals_pb2.Balance(id="bench")))
            accounts[acc] = ("1001", "1002")
        if args.accounts:
            accounts = {a: v for a, v in accounts.items() if a.startswith("bench")}
        flags = ["*stats:false", "*thresholds:false"] if args.no_stats else []

        # warm-up (connections, caches, JIT-less but lazy imports): not counted
        warm = cdr_requests(args.warmup, accounts, "warm", flags)
        await post_all(cdre, warm, args.concurrency)
        before = {a: await monetary(rals, a) for a in accounts}
        count0 = (await cdre.CountCDRs(cdre_pb2.CDRFilter())).count

        reqs = cdr_requests(args.cdrs, accounts, "cdr", flags)
        if watch is not None:
            watch.start()
        cpu0 = self_cpu()
        seconds, lat, errors = await post_all(cdre, reqs, args.concurrency)
        gen_cpu = self_cpu() - cpu0
        if watch is not None:
            watch.sample(seconds)

        # ---- consistency
        stored = (await cdre.CountCDRs(cdre_pb2.CDRFilter())).count - count0
        after = {a: await monetary(rals, a) for a in accounts}
        debited = sum((before[a] - after[a] for a in accounts), Decimal(0))
        mine = cdre_pb2.CDRFilter(run_ids=["*default"], accounts=sorted(accounts))
        default_rows = [c for c in (await cdre.GetCDRs(mine)).cdrs if c.origin_id.startswith("cdr-")]
        costs = sum((Decimal(c.cost) for c in default_rows), Decimal(0))
        unrated = sum(1 for c in default_rows if Decimal(c.cost) < 0)
        problems = []
        if errors:
            problems.append(f"{len(errors)} ProcessCDR errors, first: {errors[0]}")
        if stored != 2 * args.cdrs:
            problems.append(f"stored {stored} rows != 2 runs x {args.cdrs} events")
        if unrated:
            problems.append(f"{unrated} *default rows unrated")
        if debited != costs:
            problems.append(f"debited {debited} != sum of *default costs {costs}")

        # ---- export: every stored row (warm-up included) to CSV
        total = (await cdre.CountCDRs(cdre_pb2.CDRFilter())).count
        t0 = time.perf_counter()
        exp = await cdre.ExportCDRs(cdre_pb2.ExportCDRsRequest(
            filter=cdre_pb2.CDRFilter(), format="csv", export_path=str(export_dir)), timeout=600)
        export_s = time.perf_counter() - t0
        if exp.exported != total:
            problems.append(f"exported {exp.exported} != stored {total}")
        export_lines = sum(1 for _ in open(exp.file)) if exp.file else 0

    return {
        "cdr_events": args.cdrs,
        "concurrency": args.concurrency,
        "accounts": len(accounts),
        "stats_thresholds": not args.no_stats,
        "seconds": round(seconds, 2),
        "cdr_events_per_s": round(args.cdrs / seconds, 1),
        "cdr_rows_per_s": round(stored / seconds, 1),
        "latency_ms": {"p50": pct(lat, 0.5), "p90": pct(lat, 0.9), "p99": pct(lat, 0.99),
                       "max": pct(lat, 1.0)},
        "money": {"debited": str(debited), "sum_default_costs": str(costs)},
        "export": {"rows": exp.exported, "seconds": round(export_s, 2),
                   "rows_per_s": round(exp.exported / export_s, 1) if export_s else 0.0,
                   "file_lines": export_lines},
        "cpu_seconds": {**(watch.report() if watch else {}), "generator": {"cpu_seconds": round(gen_cpu, 2)}},
        "ok": not problems,
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cdrs", type=int, default=20000, help="CDR events posted (each stores 2 rows)")
    ap.add_argument("--concurrency", type=int, default=32, help="ProcessCDR calls in flight")
    ap.add_argument("--warmup", type=int, default=300, help="CDR events posted first, not measured")
    ap.add_argument("--accounts", type=int, default=0,
                    help="0: the tutorial's 1001/1002/1003; N: N generated accounts (subject 1001)")
    ap.add_argument("--no-stats", action="store_true", help="flags *stats:false *thresholds:false")
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--log-level", default="WARNING")
    ap.add_argument("--out", type=Path, help="write the result JSON here too")
    args = ap.parse_args(argv)

    from tests.suite import Suite, suite_env

    with ExitStack() as stack:
        db_url = stack.enter_context(FreshDatabase(args.pg_admin))
        export_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cgrpy-cdrs-bench-")))
        env = suite_env(db_url, CGRPY_LOG_LEVEL=args.log_level.upper())
        print("starting the suite (cgr up, tutorial plan) ...", file=sys.stderr)
        suite = stack.enter_context(Suite(env, "--tariffplan", str(REPO / "tariffplans" / "tutorial"),
                                          timeout=180))
        assert suite.proc is not None
        watch = ProcWatch(suite.proc.pid)
        result = asyncio.run(measure(args, suite.addr("cdre"), suite.addr("rals"), watch, export_dir))
    result["command"] = " ".join(["bench/cdrs_bench.py", *(argv if argv is not None else sys.argv[1:])])
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["ok"] else 3


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
