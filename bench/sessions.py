"""`python -m bench sessions`: how many concurrent prepaid calls SM holds with its debits on schedule.

The plan bills per second from the first second (``bench.plan.PER_SECOND_RATES``), so every
periodic debit reaches RALs. Long ``*prepaid`` calls start at ``--cps`` for ``--duration`` seconds and are never hung up until
``--hold`` seconds after the last one started, so the number of live sessions grows linearly (the
ramp). Every ``--sample-every`` seconds the bench scrapes SM's ``/metrics`` and compares
``cgrpy_sm_debits{run_id="*default"}`` with the schedule: a session answered at *a* owes
1 + ⌊(t − a) / debit interval⌋ debits by *t* (InitiateSession debits the first interval before
it replies, then one per interval). The **debit lag** at a sample is the smallest delay *g* for
which every debit due before *t − g* has been counted: how late the oldest missing debit is. SM's
reply latency is the authorize p99 of the calls due in the sample window. Then every call is hung
up (TerminateSession + ProcessCDR, in start order at ``--cps``: a burst of every hang-up at once
would only measure the generator's queue) and the consistency check runs.

``held_on_schedule`` = the most sessions live while every sample so far had its debit lag ≤
``--lag-bound`` and its authorize p99 ≤ ``--p99-bound`` (up to the first sample off schedule).
"""

from __future__ import annotations

import argparse
import asyncio
import math
from typing import Any

from bench import measure as m
from bench.calls import gen_config, run_mode
from bench.generator import Generator
from bench.plan import Plan
from bench.report import percentile
from bench.target import Target, add_load_args, add_suite_args
from cgrpy.units import SECOND, parse_duration


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sessions", help="concurrent prepaid sessions SM holds with debits on schedule")
    p.add_argument("--cps", type=float, default=5.0, help="long calls started per second")
    p.add_argument("--duration", type=float, default=60.0, help="seconds during which calls start")
    p.add_argument("--hold", type=float, default=20.0, help="seconds every call stays up after the last start")
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between SM metric samples")
    p.add_argument("--lag-bound", default="1s", help="debit lag still 'on schedule'")
    p.add_argument("--p99-bound", default="100ms", help="authorize p99 still 'on schedule'")
    add_load_args(p, call_length="600s", postpaid=0.0)
    add_suite_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.cps <= 0 or args.duration <= 0 or args.hold < 0 or args.sample_every <= 0:
        raise SystemExit("bench sessions: --cps, --duration, --sample-every must be positive, --hold >= 0")
    cfg = gen_config(args, cps=args.cps, duration_s=args.duration, hold=True)
    interval_s = parse_duration(args.debit_interval) / SECOND
    if interval_s <= 0:
        raise SystemExit("bench sessions: needs a periodic debit (--debit-interval > 0)")
    lag_bound = parse_duration(args.lag_bound) / SECOND
    p99_bound = parse_duration(args.p99_bound) / SECOND
    return run_mode(args, "sessions", lambda plan, target: sessions(
        cfg, plan, target, interval_s, args.duration + args.hold, args.sample_every, lag_bound, p99_bound),
        per_second=True)


def owed(answers: list[float], t: float, interval_s: float, grace_s: float = 0.0) -> int:
    """Debits due by ``t - grace_s`` for sessions answered at ``answers`` (first at answer)."""
    cut = t - grace_s
    return sum(1 + int((cut - a) // interval_s) for a in answers if a <= cut)


def debit_lag(answers: list[float], t: float, interval_s: float, done: float, step: float = 0.1) -> float:
    """Smallest grace g (seconds, in ``step``s) with owed(t - g) <= done debits."""
    g = 0.0
    while owed(answers, t, interval_s, g) > done and g < t:
        g += step
    return round(g, 2)


def default_debits(metrics: dict[str, dict[str, float]]) -> float:
    return metrics.get("cgrpy_sm_debits", {}).get("run_id=*default", 0.0)


async def sessions(cfg: Any, plan: Plan, target: Target, interval_s: float, release_at: float,
                   sample_every: float, lag_bound: float, p99_bound: float) -> dict[str, Any]:
    before = await m.snapshot(target, plan)
    base = default_debits(await m.sm_metrics(target))
    gen = Generator(cfg, plan, target.host, target.port)
    last_t = [0.0]

    async def probe(g: Generator, t: float) -> dict[str, Any]:
        if g.release.is_set() or t >= release_at - 0.5:
            return {"t": round(t, 1), "released": True}
        metrics = await m.sm_metrics(target)
        # the answers and the counter at (nearly) the same instant: the scrape is the later one
        t = asyncio.get_running_loop().time() - g.t0
        answers = [c.answered_at for c in g.engaged.values() if c.request_type == "*prepaid"]
        done = default_debits(metrics) - base
        all_answers = list(g.stats.prepaid_answer_times)
        auth = sorted(lat for due, lat in g.stats.latencies["auth"] if last_t[0] <= due < t)
        lost = sum(1 for due in g.stats.auth_lost if last_t[0] <= due < t)
        last_t[0] = t
        with_lost = auth + [math.inf] * lost
        p99 = percentile(with_lost, 99) if with_lost else math.nan
        return {
            "t": round(t, 1),
            "engaged": len(g.engaged),
            "engaged_prepaid": len(answers),
            "sm_active_sessions": metrics.get("cgrpy_sm_active_sessions", {}).get("-"),
            "debits_done": done,
            "debits_owed": owed(all_answers, t, interval_s),
            "debit_lag_s": debit_lag(all_answers, t, interval_s, done),
            "auth_n": len(with_lost),
            "auth_p99_ms": None if math.isnan(p99) else (math.inf if math.isinf(p99) else round(p99 * 1000, 2)),
        }

    async def release() -> None:
        await gen.started.wait()
        await asyncio.sleep(max(0.0, gen.t0 + release_at - asyncio.get_running_loop().time()))
        gen.release_all()

    rel = asyncio.create_task(release())
    traffic = await m.drive(gen, target, probe=probe, probe_every=sample_every)
    rel.cancel()
    check = await m.consistency(target, plan, before, traffic.stats.completed)
    result = m.result_base("sessions", gen, plan, traffic, await m.sm_metrics(target), check)
    samples = [s for s in traffic.samples if "engaged" in s]
    good = [s for s in samples if s["debit_lag_s"] <= lag_bound
            and (s["auth_p99_ms"] is None or s["auth_p99_ms"] <= p99_bound * 1000)]
    first_bad = next((s for s in samples if s not in good), None)
    # held = sessions reached while every sample so far was on schedule: the samples after the
    # last start have no authorize at all, so "good" there says nothing about the replies
    held = max((s["engaged_prepaid"] for s in samples[:samples.index(first_bad)]), default=0) \
        if first_bad is not None else max((s["engaged_prepaid"] for s in good), default=0)
    result["sessions"] = {
        "debit_interval_s": interval_s, "release_at_s": release_at,
        "lag_bound_s": lag_bound, "p99_bound_ms": p99_bound * 1000,
        "max_engaged": max((s["engaged_prepaid"] for s in samples), default=0),
        "held_on_schedule": held,
        "first_off_schedule": first_bad,
        "max_debit_lag_s": max((s["debit_lag_s"] for s in samples), default=0.0),
        "samples": samples,
    }
    return result
