"""Numbers out of a run: latency percentiles, a per-second timeline, the human summary."""

from __future__ import annotations

import math
from typing import Any

from bench.generator import STEPS, Stats

PERCENTILES = (50, 90, 99)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


def latency_table(stats: Stats) -> dict[str, dict[str, float | int]]:
    out: dict[str, dict[str, float | int]] = {}
    for step in STEPS:
        vals = sorted(lat for _, lat in stats.latencies[step])
        row: dict[str, float | int] = {"n": len(vals)}
        for p in PERCENTILES:
            row[f"p{p}_ms"] = round(percentile(vals, p) * 1000, 2) if vals else None  # type: ignore[assignment]
        row["max_ms"] = round(vals[-1] * 1000, 2) if vals else None  # type: ignore[assignment]
        out[step] = row
    return out


def timeline(stats: Stats, seconds: int) -> list[dict[str, Any]]:
    """Per second of the schedule: calls answered and the auth latency p50/p99 of calls due then."""
    auth: list[list[float]] = [[] for _ in range(seconds + 1)]
    for due, lat in stats.latencies["auth"]:
        auth[min(int(due), seconds)].append(lat)
    answered = [0] * (seconds + 1)
    for t in stats.answer_times:
        if 0 <= int(t) <= seconds:
            answered[int(t)] += 1
    rows = []
    for s in range(seconds + 1):
        vals = sorted(auth[s])
        rows.append({"t": s, "auth_n": len(vals), "answered": answered[s],
                     "auth_p50_ms": round(percentile(vals, 50) * 1000, 2) if vals else None,
                     "auth_p99_ms": round(percentile(vals, 99) * 1000, 2) if vals else None})
    return rows


def summary(result: dict[str, Any]) -> str:
    cfg, calls, check = result["config"], result["calls"], result["consistency"]
    lines = [
        f"cgrpy call benchmark  {result['started_utc']}  commit {result['commit']}  load {result['loadavg_before']}",
        f"offered {cfg['cps']} cps × {cfg['duration_s']} s, calls {cfg['call_length_s']} s, "
        f"{cfg['connections']} connections × {cfg['per_conn']} in flight, postpaid {cfg['postpaid_ratio']}",
        f"calls: attempted {calls['attempted']}  answered {calls['answered']}  completed {calls['completed']}  "
        f"failed {calls['failed_total']}  unfinished {calls['unfinished']}  achieved {calls['achieved_cps']} cps",
    ]
    for reason, n in sorted(calls["failed"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  failed {reason}: {n}")
    for reason, n in sorted(calls["step_errors"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  error reply {reason}: {n}")
    lines.append(f"{'step':<10}{'n':>7}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for step, row in result["latency"].items():
        def f(v: Any) -> str:
            return "-" if v is None else f"{v:.1f}"
        lines.append(f"{step:<10}{row['n']:>7}{f(row['p50_ms']):>10}{f(row['p90_ms']):>10}"
                     f"{f(row['p99_ms']):>10}{f(row['max_ms']):>10}")
    over = result.get("sm_metrics", {}).get("cgrpy_sm_replies_over_deadline", {})
    lines.append(f"SM replies over deadline: {sum(over.values()) if over else 0:g}")
    lines.append(f"{'process':<12}{'cpu s':>8}{'cpu %':>8}{'peak RSS MB':>13}")
    wall = result["traffic_seconds"] or 1
    procs = result["processes"]
    for name, row in procs.items():
        if name == "postgres":
            continue
        lines.append(f"{name:<12}{row['cpu_seconds']:>8.1f}{100 * row['cpu_seconds'] / wall:>8.0f}"
                     f"{row['peak_rss_mb']:>13.1f}")
    lines.append(f"{'(total)':<12}{result['processes_cpu_total']:>8.1f}"
                 f"{100 * result['processes_cpu_total'] / wall:>8.0f}")
    if "postgres" in procs:
        pg = procs["postgres"]
        lines.append(f"{'postgres':<12}{pg['cpu_seconds']:>8.1f}{100 * pg['cpu_seconds'] / wall:>8.0f}"
                     f"{pg['peak_rss_mb']:>13.1f}  ({pg['pids']} backends of the run's database)")
    g = result["generator"]
    lines.append(f"{'generator':<12}{g['cpu_seconds']:>8.1f}{100 * g['cpu_seconds'] / wall:>8.0f}"
                 f"{g['peak_rss_mb']:>13.1f}")
    lines.append(f"consistency: CDRs {check['cdrs_stored']} stored / {check['cdrs_expected']} expected; "
                 f"money debited {check['money_debited']} / CDR costs {check['cdr_costs']}")
    if check["ok"]:
        lines.append("consistency: OK")
    else:
        for problem in check["problems"]:
            lines.append(f"!!! CONSISTENCY MISMATCH: {problem}")
    return "\n".join(lines)
