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
import sys
import tempfile
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import measure as m
from bench.generator import GenConfig, Generator
from bench.plan import Plan, write_plan
from bench.report import summary, write_plots
from bench.target import (  # noqa: F401 - FreshDatabase: bench/cdrs_bench.py imports it from here
    FreshDatabase,
    SuiteDidNotStart,
    Target,
    add_load_args,
    add_suite_args,
    open_target,
)
from cgrpy.units import SECOND, parse_duration


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calls", help="open-loop OpenSIPS call load against the suite")
    p.add_argument("--cps", type=float, default=10.0, help="calls started per second (offered load)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds during which calls start")
    add_load_args(p)
    add_suite_args(p)
    p.set_defaults(func=run)


def gen_config(args: argparse.Namespace, **over: Any) -> GenConfig:
    if not 0 <= args.postpaid_ratio <= 1:
        raise SystemExit("bench: --postpaid-ratio must be within 0..1")
    kw: dict[str, Any] = dict(
        cps=getattr(args, "cps", 1.0), duration_s=getattr(args, "duration", 1.0),
        call_length_s=parse_duration(args.call_length) / SECOND, postpaid_ratio=args.postpaid_ratio,
        connections=args.connections, per_conn=args.per_conn, request_timeout_s=args.request_timeout,
        seed=args.seed)
    kw.update(over)
    return GenConfig(**kw)


def run_mode(args: argparse.Namespace, mode: str, body: Any, *, per_second: bool = False) -> int:
    """Plan + target + ``body(plan, target) -> result`` + output; the exit code of every mode:
    0 when the consistency check holds, 3 when not, 2 when the suite did not start."""
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="cgrpy-bench-plan-") as tmp:
        plan = write_plan(Path(tmp), args.accounts, balance=Decimal(args.balance), per_second=per_second)
        try:
            target = open_target(args, stack, plan)
        except SuiteDidNotStart as exc:
            print(f"bench {mode}: the suite did not start: {exc}", file=sys.stderr)
            return 2
        result = asyncio.run(body(plan, target))
    return emit(args, result)


def emit(args: argparse.Namespace, result: dict[str, Any]) -> int:
    result["command"] = " ".join(["python -m bench", *sys.argv[1:]]) if sys.argv else ""
    print(summary(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"result written to {args.out}")
    if getattr(args, "plots", None):
        print(write_plots(result, args.plots))
    return 0 if result["consistency"]["ok"] else 3


def run(args: argparse.Namespace) -> int:
    if args.cps <= 0 or args.duration <= 0:
        raise SystemExit("bench calls: --cps and --duration must be positive")
    cfg = gen_config(args)
    return run_mode(args, "calls", lambda plan, target: measure(cfg, plan, target))


async def measure(cfg: GenConfig, plan: Plan, target: Target, mode: str = "calls") -> dict[str, Any]:
    before = await m.snapshot(target, plan)
    gen = Generator(cfg, plan, target.host, target.port)
    traffic = await m.drive(gen, target)
    check = await m.consistency(target, plan, before, traffic.stats.completed)
    return m.result_base(mode, gen, plan, traffic, await m.sm_metrics(target), check)
