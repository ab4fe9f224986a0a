"""`python -m bench calls`: drive the suite like OpenSIPS does and measure it.

By default: create a fresh Postgres database on 127.0.0.1:5432, generate a tariff plan with
``--accounts`` accounts, start the suite with ``cgr up --tariffplan`` on free loopback ports, run
an open-loop call load (``bench.generator``), check CDRs and money, stop the suite and drop the
database. With ``--target HOST:PORT`` it drives an SM that is already running instead (the plan is
loaded into ``--db-url`` with ``cgr load`` unless ``--no-load``).

Writes JSON (``--out``) and prints a human summary; exit code 0 only if the consistency check
holds, 3 when it does not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from bench import check
from bench.generator import GenConfig, Generator
from bench.plan import RUNS_PER_CALL, Plan, write_plan
from bench.procstats import ProcWatch, self_cpu, self_peak_rss_mb
from bench.report import latency_table, summary, timeline
from cgrpy.config import GRPC_PORTS, METRICS_PORTS
from cgrpy.units import SECOND, parse_duration

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calls", help="open-loop OpenSIPS call load against the suite")
    p.add_argument("--cps", type=float, default=10.0, help="calls started per second (offered load)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds during which calls start")
    p.add_argument("--call-length", default="30s", help="how long each answered call lasts (e.g. 30s)")
    p.add_argument("--accounts", type=int, default=1000, help="accounts generated for the run")
    p.add_argument("--balance", default="1000", help="monetary balance each account starts with")
    p.add_argument("--postpaid-ratio", type=float, default=0.2, help="share of *postpaid calls (0..1)")
    p.add_argument("--connections", type=int, default=4, help="TCP connections to SM (OpenSIPS workers)")
    p.add_argument("--per-conn", type=int, default=1,
                   help="requests in flight per connection (OpenSIPS: 1, a worker blocks on its command)")
    p.add_argument("--request-timeout", type=float, default=10.0, help="give up on a reply after (s)")
    p.add_argument("--debit-interval", default="10s", help="SM debit interval of the suite it starts")
    p.add_argument("--log-level", default="WARNING", help="log level of the suite it starts")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--suite-log", type=Path, help="write the started suite's output (logs) here")
    p.add_argument("--out", type=Path, help="write the result JSON here")
    p.add_argument("--db-url", help="start the suite on this StorDB (kept) instead of a fresh Postgres DB")
    p.add_argument("--pg-admin", default=PG_ADMIN, help="Postgres server where the fresh DB is created")
    p.add_argument("--target", metavar="HOST:PORT", help="drive this running SM's OpenSIPS port instead")
    p.add_argument("--rals", default=f"127.0.0.1:{GRPC_PORTS['rals']}", help="with --target: RALs gRPC")
    p.add_argument("--cdre", default=f"127.0.0.1:{GRPC_PORTS['cdre']}", help="with --target: cdre gRPC")
    p.add_argument("--sm-metrics", default=f"http://127.0.0.1:{METRICS_PORTS['sm']}/metrics",
                   help="with --target: SM's Prometheus endpoint")
    p.add_argument("--supervisor-pid", type=int, help="with --target: pid of `cgr up` (for CPU/RSS)")
    p.add_argument("--no-load", action="store_true", help="with --target: the plan is loaded already")
    p.set_defaults(func=run)


def _loopback(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise SystemExit(f"bench calls: --target {hostport!r} is not a loopback address")
    return host, int(port)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


class FreshDatabase:
    """A Postgres database created for the run and dropped (WITH FORCE) afterwards."""

    def __init__(self, admin_url: str) -> None:
        self.admin = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.name = f"cgrpy_bench_{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> str:
        with psycopg.connect(self.admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        base = self.admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        return f"{base}/{self.name}"

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.postpaid_ratio <= 1:
        raise SystemExit("bench calls: --postpaid-ratio must be within 0..1")
    if args.cps <= 0 or args.duration <= 0:
        raise SystemExit("bench calls: --cps and --duration must be positive")
    call_length_s = parse_duration(args.call_length) / SECOND
    gen_cfg = GenConfig(cps=args.cps, duration_s=args.duration, call_length_s=call_length_s,
                        postpaid_ratio=args.postpaid_ratio, connections=args.connections,
                        per_conn=args.per_conn, request_timeout_s=args.request_timeout, seed=args.seed)
    suite = None
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="cgrpy-bench-plan-") as tmp:
        plan = write_plan(Path(tmp), args.accounts, balance=Decimal(args.balance))
        if args.target:
            host, port = _loopback(args.target)
            if not args.no_load:
                if not args.db_url:
                    raise SystemExit("bench calls: --target needs --db-url to load the plan (or --no-load)")
                rc = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "load", str(plan.folder),
                                     "--db-url", args.db_url], cwd=REPO).returncode
                if rc != 0:
                    raise SystemExit(f"bench calls: cgr load failed ({rc})")
            rals, cdre, metrics, sup_pid = args.rals, args.cdre, args.sm_metrics, args.supervisor_pid
        else:
            from tests.suite import Suite, suite_env

            db_url = args.db_url or stack.enter_context(FreshDatabase(args.pg_admin))
            env = suite_env(db_url, CGRPY_DEBIT_INTERVAL=args.debit_interval,
                            CGRPY_LOG_LEVEL=args.log_level.upper())
            print(f"starting the suite (cgr up) on {db_url.rsplit('@', 1)[-1]} ...", file=sys.stderr)
            try:
                suite = stack.enter_context(Suite(env, "--tariffplan", str(plan.folder), timeout=180))
            except RuntimeError as exc:  # not SERVING in time (e.g. a loaded machine): say so, briefly
                print(f"bench calls: the suite did not start: {str(exc)[-600:]}", file=sys.stderr)
                return 2
            host, port = _loopback(env["CGRPY_OPENSIPS_LISTEN"])
            rals, cdre = suite.addr("rals"), suite.addr("cdre")
            metrics = f"http://127.0.0.1:{env['CGRPY_SM_METRICS_PORT']}/metrics"
            assert suite.proc is not None
            sup_pid = suite.proc.pid
        db = args.db_url if args.target else db_url
        pg_dbname = db.rsplit("/", 1)[-1].split("?")[0] if db and db.startswith("postgresql") else None
        result = asyncio.run(measure(gen_cfg, plan, host, port, rals, cdre, metrics, sup_pid, pg_dbname))
    if args.suite_log and suite is not None:
        args.suite_log.write_text(suite.read_output())
    result["command"] = " ".join(["python -m bench", *sys.argv[1:]]) if sys.argv else ""
    text = summary(result)
    print(text)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"result written to {args.out}")
    return 0 if result["consistency"]["ok"] else 3


async def measure(cfg: GenConfig, plan: Plan, host: str, port: int, rals: str, cdre: str,
                  metrics_url: str, supervisor_pid: int | None, pg_dbname: str | None) -> dict[str, Any]:
    accounts = set(plan.accounts)
    before = await check.balances(rals, plan.accounts)
    cdrs_before = await check.wait_cdr_count(cdre, 0, 0)
    costs_before, _, _ = await check.cdr_costs(cdre, accounts)
    watch = ProcWatch(supervisor_pid, pg_dbname) if supervisor_pid or pg_dbname else None
    loadavg_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    gen = Generator(cfg, plan, host, port)
    cpu0, t0 = self_cpu(), time.monotonic()
    sampler = None
    if watch is not None:
        watch.start()

        async def sample() -> None:
            while True:
                await asyncio.sleep(1.0)
                await asyncio.to_thread(watch.sample, time.monotonic() - t0)

        sampler = asyncio.create_task(sample())
    try:
        stats = await gen.run()
    finally:
        traffic_s = time.monotonic() - t0
        gen_cpu = self_cpu() - cpu0
        if sampler is not None:
            sampler.cancel()
        if watch is not None:
            watch.sample(traffic_s)
    loadavg_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])

    # -------- consistency: every completed call has its CDRs, and the money adds up
    expected = cdrs_before + stats.completed * RUNS_PER_CALL
    stored = await check.wait_cdr_count(cdre, expected, timeout_s=15)
    after = await check.balances(rals, plan.accounts)
    costs_after, runs, unrated = await check.cdr_costs(cdre, accounts)
    debited = sum((before[a] - after[a] for a in plan.accounts), Decimal(0))
    costs = costs_after - costs_before
    problems = []
    if stored - cdrs_before != stats.completed * RUNS_PER_CALL:
        problems.append(f"CDRs stored {stored - cdrs_before} != completed calls {stats.completed} × "
                        f"{RUNS_PER_CALL} runs = {stats.completed * RUNS_PER_CALL}")
    if debited != costs:
        problems.append(f"money debited {debited} != sum of charged CDR costs {costs} "
                        f"(difference {debited - costs})")
    if unrated:
        problems.append(f"{unrated} charged CDRs carry a negative (unrated) cost")
    try:
        sm_metrics = await asyncio.to_thread(check.scrape, metrics_url)
    except OSError as exc:
        sm_metrics = {"error": {str(exc): 0.0}}

    procs = watch.report() if watch else {}
    answered = stats.answer_times
    achieved = (len(answered) / max(answered)) if len(answered) > 1 and max(answered) > 0 else 0.0
    return {
        "started_utc": started,
        "commit": _commit(),
        "loadavg_before": loadavg_before,
        "loadavg_after": loadavg_after,
        "cpus": os.cpu_count(),
        "config": {**asdict(cfg), "accounts": len(plan.accounts), "balance": str(plan.balance),
                   "runs_per_call": RUNS_PER_CALL},
        "traffic_seconds": round(traffic_s, 2),
        "calls": {
            "offered_cps": cfg.cps,
            "achieved_cps": round(achieved, 2),
            "attempted": stats.attempted,
            "answered": stats.answered,
            "completed": stats.completed,
            "completed_prepaid": stats.completed_prepaid,
            "completed_postpaid": stats.completed_postpaid,
            "failed_total": sum(stats.failed.values()),
            "failed": dict(stats.failed),
            "step_errors": dict(stats.step_errors),
            "unfinished": stats.unfinished,
            "ended_by": dict(stats.ended_by),
            "sm_requests_answered": dict(stats.engine_requests),
        },
        "latency": latency_table(stats),
        "timeline": timeline(stats, int(cfg.duration_s)),
        "processes": procs,
        "processes_cpu_total": round(sum(float(r["cpu_seconds"]) for n, r in procs.items() if n != "postgres"), 2),
        "rss_timeline_mb": [(t, {k: round(v / 1024, 1) for k, v in rss.items()})
                            for t, rss in (watch.rss_timeline[::5] if watch else [])],
        "generator": {"cpu_seconds": round(gen_cpu, 2), "peak_rss_mb": self_peak_rss_mb()},
        "sm_metrics": sm_metrics,
        "consistency": {
            "ok": not problems,
            "problems": problems,
            "cdrs_expected": expected - cdrs_before,
            "cdrs_stored": stored - cdrs_before,
            "cdrs_by_run": runs,
            "money_debited": str(debited),
            "cdr_costs": str(costs),
        },
    }
