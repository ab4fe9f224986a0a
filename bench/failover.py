"""`python -m bench failover`: issue 21's Done-when run, one kill at a time.

    python -m bench failover --replicas 2 --duration 60 --cps 5 --kill all

For each named service (``all``: every one, SM and RALs included) a fresh suite: `cgr up
--replicas N` on a Postgres database of its own (tutorial plan), calls for ``--duration`` seconds
at ``--cps`` through SM's OpenSIPS-protocol client (bench/faults.py's Driver, failing over from
SM replica 0 to the next as OpenSIPS's cgrates module does), and kill -9 of one process of the
service at a third of the run: of SM the replica the calls go to, of RALs, StatS, ThresholdS and
ResourceS the replica owning what the calls use, of a stateless service one replica. Then, per
kill, strict checks (any failure: exit 1):

* every answered call has its CDRs once, none left unrated; money debited from each account ==
  the sum of its CDRs' costs; ``cgr account verify``; no session left active; every replica
  SERVING again (bench/faults.py ``run_fault``);
* no reply came after SM's deadline (``sm_reply_timeout``), and no call was refused for
  anything but the plan's own limits (ResourceS concurrent calls, credit);
* no request went unanswered, except, when SM itself is killed, those in flight on the dying
  replica's connections (OpenSIPS does not resend them either; reported);
* for an owner kill, the takeover happened (the time is reported).

Reported per kill: calls placed / answered / refused, CDRs, debited, the takeover time,
authorize latency p50/p99 and replies after the deadline. bench/faults.py's ``faults`` mode runs
many faults against one suite; this one runs one kill per fresh suite, for as long as asked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench.faults import (
    ACCOUNTS,
    Call,
    FaultSuite,
    Outcome,
    Target,
    account_verify,
    balances,
    cdrs_of,
    run_fault,
)
from cgrpy.config import SERVICES

# the fault that kills one process of each service (bench/faults.py FAULTS)
KILL = {"sm": "kill_sm_owner", "rals": "kill_rals_owner", "resources": "kill_resources_owner",
        "stats": "kill_stats_owner", "thresholds": "kill_thresholds_owner",
        **{n: f"kill_{n}" for n in ("attributes", "chargers", "suppliers", "cdre")}}
OWNER_KILLS = ("sm", "rals", "resources", "stats", "thresholds")  # a takeover to measure
# SM's answer to a call the plan itself refuses: not a fault's doing
REFUSALS = ("RESOURCE_UNAUTHORIZED", "RESOURCE_UNAVAILABLE", "INSUFFICIENT_CREDIT",
            "MAX_USAGE_EXCEEDED")
HOLD = (0.5, 1.5)  # seconds a call is up: ~cps calls at once, under the plan's limit of 7


@dataclass
class KillResult:
    service: str
    placed: int
    answered: int
    refused: int
    cdrs: int  # CDRs stored for the calls (each answered call: one per charging run, once)
    charged_once: bool  # per account: money debited == the sum of its CDRs' costs
    verify: bool  # `cgr account verify`: balances == their journal
    takeover_s: float | None
    authorize_p50_ms: float | None
    authorize_p99_ms: float | None
    replies_after_deadline: int
    unanswered_requests: int
    sessions_left: int
    debited: str
    problems: list[str] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)

    def row(self) -> str:
        ok = "all hold" if not self.problems else "; ".join(self.problems[:3])
        yes = {True: "yes", False: "NO"}
        return (f"| {self.service} | {self.placed} | {self.answered} | {self.refused} | "
                f"{self.cdrs} | {yes[self.charged_once]} | {yes[self.verify]} | "
                f"{self.sessions_left} | {_fmt(self.takeover_s)} | {_fmt(self.authorize_p50_ms)} | "
                f"{_fmt(self.authorize_p99_ms)} | {self.replies_after_deadline} | "
                f"{self.unanswered_requests} | {self.debited} | {ok} |")


HEADER = ("| killed | placed | answered | refused | CDRs | charged once | verify | sessions left | "
          "takeover s | authorize p50 ms | p99 ms | after deadline | unanswered | debited | checks |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v}"


def refused(call: Call) -> bool:
    return not call.answered and any(any(r in e for r in REFUSALS) for e in call.errors)


async def per_account(target: Target, calls: list[Call],
                      before: dict[str, Decimal]) -> tuple[list[str], int]:
    """Money debited from each account == the sum of its own CDRs' costs: (problems, CDRs)."""
    after = await balances(target)
    cdrs = await cdrs_of(target, [c.origin for c in calls])
    out = []
    for acc in ACCOUNTS:
        cost = sum((Decimal(c.cost) for c in cdrs if c.account == acc and Decimal(c.cost) > 0),
                   Decimal(0))
        if before[acc] - after[acc] != cost:
            out.append(f"account {acc}: debited {before[acc] - after[acc]} != its CDR costs {cost}")
    return out, len(cdrs)


def strict(service: str, out: Outcome, calls: list[Call]) -> list[str]:
    """The checks beyond bench/faults.py's invariants (module doc)."""
    m = out.measured
    found = list(out.problems)
    if m.get("replies_after_deadline"):
        found.append(f"{m['replies_after_deadline']} replies after SM's deadline ({m['deadline_s']} s)")
    bad = sorted({e for c in calls for e in c.errors if not any(r in e for r in REFUSALS)
                  and not e.endswith(("connection_closed", "timeout", "connection_refused"))})
    if bad:
        found.append(f"calls failed for a backend: {bad[:5]}")
    if m.get("unanswered_requests") and service != "sm":
        found.append(f"{m['unanswered_requests']} requests unanswered")
    if service in OWNER_KILLS and m.get("takeover_s") is None:
        found.append(f"no takeover observed after killing the {service} owner")
    if out.answered == 0:
        found.append("no call answered")
    return found


async def one_kill(target: Target, service: str, args: argparse.Namespace) -> KillResult:
    """A run of calls with ``service``'s kill at a third of it, and its checks."""
    out = await run_fault(target, KILL[service], calls=max(1, round(args.duration * args.cps)),
                          cps=args.cps, hold=HOLD, services=SERVICES, settle_timeout=180,
                          at=1 / 3, seed=args.seed)
    calls = out.call_log
    money, cdrs = await per_account(target, calls, out.balances_before)
    rc, text = await asyncio.to_thread(account_verify, target)
    found = strict(service, out, calls) + money
    if rc != 0:
        found.append(f"cgr account verify exit {rc}: {text[-300:]}")
    m = out.measured
    return KillResult(service, out.calls, out.answered, sum(refused(c) for c in calls), cdrs,
                      not money, rc == 0,
                      m.get("takeover_s"), m.get("authorize_p50_ms"), m.get("authorize_p99_ms"),
                      m.get("replies_after_deadline", 0), m.get("unanswered_requests", 0),
                      m.get("sessions_left", -1), str(out.debited), found,
                      {**m, "settle_s": round(out.settle_s, 1), "recovery_s": round(out.recovery_s, 1)})


def run_one(service: str, args: argparse.Namespace) -> KillResult:
    """A fresh suite (its own database) for one kill."""
    from tests.suite import replica_env, started

    with started(lambda: FaultSuite("", **replica_env(args.replicas))) as suite:
        started_at = time.monotonic()
        result = asyncio.run(one_kill(suite.target, service, args))
        result.measured["run_s"] = round(time.monotonic() - started_at, 1)
        if result.problems and args.logs:
            path = os.path.join(args.logs, f"failover-{service}.log")
            with open(path, "w") as f:
                f.write(suite.suite.read_output())
            result.measured["suite_log"] = path
    return result


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("failover", help="N replicas of everything, calls for a while, kill -9 one "
                                        "process of a service at a third, strict checks")
    p.add_argument("--replicas", type=int, default=2, help="processes of every service (>= 2)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of calls per kill")
    p.add_argument("--cps", type=float, default=5.0, help="calls started per second")
    p.add_argument("--kill", default="all", help=f"one of {', '.join(KILL)}, several "
                                                 "comma-separated, or all (one fresh suite each)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="", help="write the results as JSON here")
    p.add_argument("--logs", default="", help="directory for the suite log of a failed kill")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = list(KILL) if args.kill == "all" else args.kill.split(",")
    unknown = [n for n in names if n not in KILL]
    if unknown or args.replicas < 2:
        raise SystemExit(f"bench failover: unknown service {unknown}" if unknown
                         else "bench failover: --replicas must be 2 or more")
    results = []
    print(HEADER, flush=True)
    for name in names:
        result = run_one(name, args)
        print(result.row(), flush=True)
        results.append(result)
    print(f"load average: {os.getloadavg()}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump([vars(r) for r in results], f, indent=1, default=str)
    return 0 if all(not r.problems for r in results) else 1
