"""`python -m bench soak`: a fixed rate for ``--minutes``, the RSS of every service sampled every
``--rss-every`` seconds, the consistency check at the end.

The memory verdict compares each service's RSS over the last quarter of the run with the first
quarter after warm-up: a service that keeps growing while the load is steady is leaking (or
caching without bound); the growth per minute is reported per service.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import measure as m
from bench.calls import gen_config, run_mode
from bench.generator import Generator
from bench.plan import Plan
from bench.target import Target, add_load_args, add_suite_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("soak", help="fixed rate for N minutes: memory over time, correctness at the end")
    p.add_argument("--cps", type=float, default=5.0, help="calls started per second")
    p.add_argument("--minutes", type=float, default=10.0, help="minutes during which calls start")
    p.add_argument("--rss-every", type=float, default=5.0, help="seconds between RSS samples")
    add_load_args(p)
    add_suite_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.cps <= 0 or args.minutes <= 0 or args.rss_every <= 0:
        raise SystemExit("bench soak: --cps, --minutes and --rss-every must be positive")
    cfg = gen_config(args, cps=args.cps, duration_s=args.minutes * 60)
    return run_mode(args, "soak", lambda plan, target: soak(cfg, plan, target, args.rss_every))


def memory_trend(timeline: list[tuple[float, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per service: RSS (MB) at start/end and growth per minute between the first and the last
    quarter of the samples (each quarter averaged, so one GC spike does not decide)."""
    if len(timeline) < 4:
        return {}
    q = max(1, len(timeline) // 4)
    first, last = timeline[:q], timeline[-q:]
    span_min = (sum(t for t, _ in last) / q - sum(t for t, _ in first) / q) / 60 or 1.0
    out: dict[str, dict[str, float]] = {}
    for name in sorted({n for _, rss in timeline for n in rss}):
        a = [rss[name] for _, rss in first if name in rss]
        b = [rss[name] for _, rss in last if name in rss]
        if not a or not b:
            continue
        avg_a, avg_b = sum(a) / len(a), sum(b) / len(b)
        out[name] = {"rss_first_mb": round(avg_a, 1), "rss_last_mb": round(avg_b, 1),
                     "peak_mb": round(max(rss.get(name, 0.0) for _, rss in timeline), 1),
                     "growth_mb_per_min": round((avg_b - avg_a) / span_min, 2)}
    return out


async def soak(cfg: Any, plan: Plan, target: Target, rss_every: float) -> dict[str, Any]:
    before = await m.snapshot(target, plan)
    gen = Generator(cfg, plan, target.host, target.port)
    traffic = await m.drive(gen, target, rss_every=rss_every)
    check = await m.consistency(target, plan, before, traffic.stats.completed)
    result = m.result_base("soak", gen, plan, traffic, await m.sm_metrics(target), check, rss_every_n=1)
    result["soak"] = {"rss_every_s": rss_every, "memory": memory_trend(result["rss_timeline_mb"])}
    return result
