"""The pieces every call-driving mode shares: the state before the run, the run itself (generator +
/proc sampling + optional periodic probes), the consistency check after it, and the common part
of the result JSON."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import check
from bench.generator import Generator, Stats
from bench.plan import RUNS_PER_CALL, Plan
from bench.procstats import ProcWatch, self_cpu, self_peak_rss_mb
from bench.report import latency_table, timeline
from bench.target import Target, commit


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Before:
    balances: dict[str, Decimal]
    cdrs: int
    costs: Decimal


async def snapshot(target: Target, plan: Plan) -> Before:
    balances = await check.balances(target.rals, plan.accounts)
    cdrs = await check.wait_cdr_count(target.cdre, 0, 0)
    costs, _, _ = await check.cdr_costs(target.cdre, set(plan.accounts))
    return Before(balances, cdrs, costs)


@dataclass
class Traffic:
    stats: Stats
    seconds: float
    generator_cpu: float
    watch: ProcWatch | None
    started_utc: str
    loadavg_before: str
    loadavg_after: str
    samples: list[dict[str, Any]] = field(default_factory=list)  # what ``probe`` returned


# A periodic probe: (generator, seconds since t0) -> one sample row (e.g. SM metrics now).
Probe = Callable[[Generator, float], Awaitable[dict[str, Any]]]


def proc_watch(target: Target) -> ProcWatch | None:
    if target.supervisor_pid or target.pg_dbname:
        return ProcWatch(target.supervisor_pid, target.pg_dbname)
    return None


async def drive(gen: Generator, target: Target, *, rss_every: float = 1.0, probe: Probe | None = None,
                probe_every: float = 5.0, watch: ProcWatch | None = None) -> Traffic:
    """Run the generator while sampling the service processes (and ``probe``) periodically."""
    watch = watch or proc_watch(target)
    before = loadavg()
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cpu0, t0 = self_cpu(), time.monotonic()
    samples: list[dict[str, Any]] = []
    tasks: list[asyncio.Task[None]] = []
    if watch is not None:
        watch.start()

        async def sample_procs() -> None:
            while True:
                await asyncio.sleep(rss_every)
                await asyncio.to_thread(watch.sample, time.monotonic() - t0)

        tasks.append(asyncio.create_task(sample_procs()))
    if probe is not None:
        async def run_probe() -> None:
            await gen.started.wait()
            while True:
                await asyncio.sleep(probe_every)
                try:
                    samples.append(await probe(gen, asyncio.get_running_loop().time() - gen.t0))
                except Exception as exc:  # noqa: BLE001 - a failed probe is a data point, not a crash
                    samples.append({"error": repr(exc)})

        tasks.append(asyncio.create_task(run_probe()))
    try:
        stats = await gen.run()
    finally:
        seconds = time.monotonic() - t0
        gen_cpu = self_cpu() - cpu0
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if watch is not None:
            watch.sample(seconds)
    return Traffic(stats, seconds, gen_cpu, watch, started, before, loadavg(), samples)


async def consistency(target: Target, plan: Plan, before: Before, completed: int) -> dict[str, Any]:
    """Every completed call has its CDRs, and the money adds up exactly."""
    accounts = set(plan.accounts)
    expected = before.cdrs + completed * RUNS_PER_CALL
    stored = await check.wait_cdr_count(target.cdre, expected, timeout_s=15)
    after = await check.balances(target.rals, plan.accounts)
    costs_after, runs, unrated = await check.cdr_costs(target.cdre, accounts)
    debited = sum((before.balances[a] - after[a] for a in plan.accounts), Decimal(0))
    costs = costs_after - before.costs
    problems = []
    if stored - before.cdrs != completed * RUNS_PER_CALL:
        problems.append(f"CDRs stored {stored - before.cdrs} != completed calls {completed} × "
                        f"{RUNS_PER_CALL} runs = {completed * RUNS_PER_CALL}")
    if debited != costs:
        problems.append(f"money debited {debited} != sum of charged CDR costs {costs} "
                        f"(difference {debited - costs})")
    if unrated:
        problems.append(f"{unrated} charged CDRs carry a negative (unrated) cost")
    return {"ok": not problems, "problems": problems, "cdrs_expected": expected - before.cdrs,
            "cdrs_stored": stored - before.cdrs, "cdrs_by_run": runs, "money_debited": str(debited),
            "cdr_costs": str(costs)}


async def sm_metrics(target: Target) -> dict[str, dict[str, float]]:
    try:
        return await asyncio.to_thread(check.scrape, target.metrics_url)
    except OSError as exc:
        return {"error": {str(exc): 0.0}}


def calls_section(stats: Stats, offered_cps: float) -> dict[str, Any]:
    answered = stats.answer_times
    achieved = (len(answered) / max(answered)) if len(answered) > 1 and max(answered) > 0 else 0.0
    return {
        "offered_cps": offered_cps,
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
    }


def cpu_per_call(procs: dict[str, Any], completed: int) -> dict[str, float] | None:
    """Milliseconds of CPU (user + system, /proc) per completed call: each service, the services'
    sum, the run database's Postgres backends, and everything. Calls that failed or were abandoned
    cost CPU too, so under overload this overstates what a completed call needs."""
    if not completed or not procs:
        return None
    out = {name: round(1000 * float(row["cpu_seconds"]) / completed, 2) for name, row in procs.items()}
    services = sum(v for n, v in out.items() if n != "postgres")
    out["services"] = round(services, 2)
    out["total"] = round(services + out.get("postgres", 0.0), 2)
    return out


def result_base(mode: str, gen: Generator, plan: Plan, traffic: Traffic, metrics: dict[str, Any],
                consistency_result: dict[str, Any], *, rss_every_n: int = 5) -> dict[str, Any]:
    """The result JSON every mode shares (``summary()`` renders it)."""
    cfg, stats, watch = gen.cfg, traffic.stats, traffic.watch
    procs = watch.report() if watch else {}
    offered = round(len(cfg.due_offsets()) / cfg.total_seconds(), 2)
    return {
        "mode": mode,
        "started_utc": traffic.started_utc,
        "commit": commit(),
        "loadavg_before": traffic.loadavg_before,
        "loadavg_after": traffic.loadavg_after,
        "cpus": os.cpu_count(),
        "config": {**asdict(cfg), "accounts": len(plan.accounts), "balance": str(plan.balance),
                   "runs_per_call": RUNS_PER_CALL},
        "traffic_seconds": round(traffic.seconds, 2),
        "calls": calls_section(stats, offered),
        "latency": latency_table(stats),
        "timeline": timeline(stats, int(cfg.total_seconds())),
        "processes": procs,
        "processes_cpu_total": round(sum(float(r["cpu_seconds"]) for n, r in procs.items() if n != "postgres"), 2),
        "cpu_per_call_ms": cpu_per_call(procs, stats.completed),
        "rss_timeline_mb": [(t, {k: round(v / 1024, 1) for k, v in rss.items()})
                            for t, rss in (watch.rss_timeline[::rss_every_n] if watch else [])],
        "generator": {"cpu_seconds": round(traffic.generator_cpu, 2), "peak_rss_mb": self_peak_rss_mb()},
        "sm_metrics": metrics,
        "consistency": consistency_result,
    }
