"""`python -m bench ramp`: raise the call rate stepwise on one suite until authorize p99 passes a
bound; the knee is the last step under it.

One open-loop generator runs the whole ramp as a rate schedule (``--start-cps``, × ``--factor``
every ``--step-seconds``), so calls of a step overlap the next as they would in production. A
controller evaluates each step once every call due in it has its authorize answer (or
``--request-timeout`` passed): p99 over the step's authorizations, an unanswered one counting as
infinitely late. The first step over ``--p99-bound`` (or with lost authorizations) stops new calls;
the calls already up finish normally, then the consistency check covers every call of the ramp.
The step running while the controller decided is reported as ``stopped`` (not evaluated).
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
from bench.procstats import ProcWatch
from bench.report import percentile
from bench.target import Target, add_load_args, add_suite_args
from cgrpy.units import SECOND, parse_duration


def add_ramp_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start-cps", type=float, default=2.0, help="rate of the first step")
    p.add_argument("--factor", type=float, default=1.5, help="each step's rate = previous × factor")
    p.add_argument("--step-seconds", type=float, default=20.0, help="length of one step")
    p.add_argument("--max-steps", type=int, default=12, help="stop after this many steps anyway")
    p.add_argument("--max-cps", type=float, default=1000.0, help="no step above this rate")
    p.add_argument("--p99-bound", default="100ms", help="authorize p99 bound of a step (e.g. 100ms)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ramp", help="raise the rate stepwise until authorize p99 passes a bound")
    add_ramp_args(p)
    add_load_args(p, call_length="20s")
    add_suite_args(p)
    p.set_defaults(func=run)


def schedule(start: float, factor: float, step_s: float, max_steps: int,
             max_cps: float) -> tuple[tuple[float, float], ...]:
    if start <= 0 or factor <= 1 or step_s <= 0 or max_steps < 1:
        raise SystemExit("bench ramp: need --start-cps > 0, --factor > 1, --step-seconds > 0, --max-steps >= 1")
    out, cps = [], start
    while len(out) < max_steps and cps <= max_cps:
        out.append((round(cps, 2), step_s))
        cps *= factor
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    sched = schedule(args.start_cps, args.factor, args.step_seconds, args.max_steps, args.max_cps)
    cfg = gen_config(args, cps=sched[0][0], duration_s=sum(s for _, s in sched), schedule=sched)
    bound_s = parse_duration(args.p99_bound) / SECOND
    return run_mode(args, "ramp", lambda plan, target: ramp(cfg, plan, target, bound_s))


def _in(rows: list[tuple[float, float]], lo: float, hi: float) -> list[float]:
    return sorted(lat for due, lat in rows if lo <= due < hi)


def step_row(gen: Generator, index: int, cps: float, lo: float, hi: float, cpu_s: float | None,
             status: str) -> dict[str, Any]:
    st = gen.stats
    auth = _in(st.latencies["auth"], lo, hi)
    lost = sum(1 for d in st.auth_lost if lo <= d < hi)
    # a lost authorization is infinitely late: it counts in the percentile, above every reply
    with_lost = auth + [math.inf] * lost
    init = _in(st.latencies["init"], lo, hi)

    def ms(v: float) -> float | None:
        return None if math.isnan(v) else (math.inf if math.isinf(v) else round(v * 1000, 2))

    return {
        "step": index, "cps": cps, "from_s": round(lo, 1), "to_s": round(hi, 1), "status": status,
        "attempted": sum(1 for d in st.attempted_due if lo <= d < hi),
        "auth_n": len(auth), "auth_lost": lost,
        "auth_p50_ms": ms(percentile(with_lost, 50)), "auth_p90_ms": ms(percentile(with_lost, 90)),
        "auth_p99_ms": ms(percentile(with_lost, 99)), "auth_max_ms": ms(with_lost[-1]) if with_lost else None,
        "init_p99_ms": ms(percentile(init, 99)),
        "service_cpu_pct": None if cpu_s is None else round(100 * cpu_s / (hi - lo), 1),
    }


async def control(gen: Generator, watch: ProcWatch | None, bound_s: float,
                  steps: list[dict[str, Any]]) -> None:
    """Evaluate each step as soon as its authorizations are in; stop new calls past the bound."""
    await gen.started.wait()
    loop = asyncio.get_running_loop()
    lo = 0.0
    cpu_prev = 0.0
    for index, (cps, seconds) in enumerate(gen.cfg.segments()):
        hi = lo + seconds
        await asyncio.sleep(max(0.0, gen.t0 + hi - loop.time()))
        cpu_now = None
        if watch is not None:
            await asyncio.to_thread(watch.sample, loop.time() - gen.t0)
            cpu_now = watch.cpu_total()
        deadline = loop.time() + gen.cfg.request_timeout_s + 2
        expected = round(cps * seconds)
        while loop.time() < deadline:
            st = gen.stats
            done = sum(1 for d, _ in st.latencies["auth"] if lo <= d < hi) + \
                sum(1 for d in st.auth_lost if lo <= d < hi)
            if done >= expected:
                break
            await asyncio.sleep(0.2)
        cpu_s = None if cpu_now is None else cpu_now - cpu_prev
        cpu_prev = cpu_now or 0.0
        row = step_row(gen, index + 1, cps, lo, hi, cpu_s, "ok")
        p99 = row["auth_p99_ms"]
        over = row["auth_lost"] > 0 or p99 is None or p99 > bound_s * 1000
        row["status"] = "over" if over else "ok"
        steps.append(row)
        print(f"  step {index + 1}: {cps} cps  auth p50/p99 {row['auth_p50_ms']}/{p99} ms  "
              f"lost {row['auth_lost']}  svc cpu {row['service_cpu_pct']}%  -> {row['status']}", flush=True)
        lo = hi
        if over:
            gen.stop_new = True
            # the step that ran meanwhile, up to where it was cut off
            nxt = gen.cfg.segments()[index + 1] if index + 1 < len(gen.cfg.segments()) else None
            if nxt is not None:
                cut = min(lo + nxt[1], loop.time() - gen.t0)
                steps.append(step_row(gen, index + 2, nxt[0], lo, cut, None, "stopped"))
            return


def knee(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [s for s in steps if s["status"] == "ok"]
    if not ok:
        return None
    # the last step under the bound before the first one over it
    first_over = next((s["step"] for s in steps if s["status"] == "over"), None)
    under = [s for s in ok if first_over is None or s["step"] < first_over]
    return under[-1] if under else None


async def ramp(cfg: Any, plan: Plan, target: Target, bound_s: float, mode: str = "ramp",
               consistency: bool = True) -> dict[str, Any]:
    before = await m.snapshot(target, plan)
    gen = Generator(cfg, plan, target.host, target.port)
    watch = m.proc_watch(target)
    steps: list[dict[str, Any]] = []
    ctl = asyncio.create_task(control(gen, watch, bound_s, steps))
    traffic = await m.drive(gen, target, watch=watch)
    if not ctl.done():  # the schedule ran out with every step under the bound
        await asyncio.wait_for(ctl, cfg.request_timeout_s + 5)
    check = await m.consistency(target, plan, before, traffic.stats.completed) if consistency else \
        {"ok": True, "problems": [], "skipped": "echo suite: no money to check", "cdrs_expected": 0,
         "cdrs_stored": 0, "money_debited": "-", "cdr_costs": "-"}
    result = m.result_base(mode, gen, plan, traffic, await m.sm_metrics(target), check)
    k = knee(steps)
    result["ramp"] = {"p99_bound_ms": round(bound_s * 1000, 3), "steps": steps,
                      "knee_cps": k["cps"] if k else None, "knee_step": k,
                      "stopped_early": gen.stop_new}
    return result
