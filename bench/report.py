"""Numbers out of a run: latency percentiles, a per-second timeline, the human summary."""

from __future__ import annotations

import math
from pathlib import Path
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
    offered = [0] * (seconds + 1)
    for t in stats.attempted_due:
        offered[min(int(t), seconds)] += 1
    rows = []
    for s in range(seconds + 1):
        vals = sorted(auth[s])
        rows.append({"t": s, "offered": offered[s], "auth_n": len(vals), "answered": answered[s],
                     "auth_p50_ms": round(percentile(vals, 50) * 1000, 2) if vals else None,
                     "auth_p99_ms": round(percentile(vals, 99) * 1000, 2) if vals else None})
    return rows


def summary(result: dict[str, Any]) -> str:
    cfg, calls, check = result["config"], result["calls"], result["consistency"]
    lines = [
        f"cgrpy call benchmark  {result['started_utc']}  commit {result['commit']}  load {result['loadavg_before']}",
        f"offered {calls['offered_cps']} cps (mean) × {sum(s for _, s in cfg['schedule']) or cfg['duration_s']} s, calls {cfg['call_length_s']} s, "
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
    per_call = result.get("cpu_per_call_ms") or {}

    def ms(name: str) -> str:
        return f"{per_call[name]:>13.2f}" if name in per_call else f"{'-':>13}"

    lines.append(f"{'process':<12}{'cpu s':>8}{'cpu %':>8}{'peak RSS MB':>13}{'ms/call':>13}")
    wall = result["traffic_seconds"] or 1
    procs = result["processes"]
    for name, row in procs.items():
        if name == "postgres":
            continue
        lines.append(f"{name:<12}{row['cpu_seconds']:>8.1f}{100 * row['cpu_seconds'] / wall:>8.0f}"
                     f"{row['peak_rss_mb']:>13.1f}{ms(name)}")
    lines.append(f"{'(total)':<12}{result['processes_cpu_total']:>8.1f}"
                 f"{100 * result['processes_cpu_total'] / wall:>8.0f}{'':>13}{ms('services')}")
    if "postgres" in procs:
        pg = procs["postgres"]
        lines.append(f"{'postgres':<12}{pg['cpu_seconds']:>8.1f}{100 * pg['cpu_seconds'] / wall:>8.0f}"
                     f"{pg['peak_rss_mb']:>13.1f}{ms('postgres')}  ({pg['pids']} backends of the run's database)")
    if per_call:
        lines.append(f"CPU per completed call: services {per_call['services']} ms + postgres "
                     f"{per_call.get('postgres', '-')} ms = {per_call['total']} ms")
    g = result["generator"]
    lines.append(f"{'generator':<12}{g['cpu_seconds']:>8.1f}{100 * g['cpu_seconds'] / wall:>8.0f}"
                 f"{g['peak_rss_mb']:>13.1f}")
    lines.extend(_mode_lines(result))
    lines.append(f"consistency: CDRs {check['cdrs_stored']} stored / {check['cdrs_expected']} expected; "
                 f"money debited {check['money_debited']} / CDR costs {check['cdr_costs']}")
    if check["ok"]:
        lines.append("consistency: OK")
    else:
        for problem in check["problems"]:
            lines.append(f"!!! CONSISTENCY MISMATCH: {problem}")
    return "\n".join(lines)


def _ms(v: Any) -> str:
    if v is None:
        return "-"
    return "inf" if isinstance(v, float) and math.isinf(v) else f"{v:.1f}"


def _mode_lines(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "ramp" in result:
        r = result["ramp"]
        lines.append(f"ramp (authorize p99 bound {r['p99_bound_ms']} ms):")
        lines.append(f"{'step':>5}{'cps':>9}{'calls':>7}{'auth p50':>10}{'p90':>9}{'p99':>9}{'max':>9}"
                     f"{'lost':>6}{'init p99':>10}{'svc cpu%':>10}  status")
        for st in r["steps"]:
            lines.append(f"{st['step']:>5}{st['cps']:>9}{st['attempted']:>7}{_ms(st['auth_p50_ms']):>10}"
                         f"{_ms(st['auth_p90_ms']):>9}{_ms(st['auth_p99_ms']):>9}{_ms(st['auth_max_ms']):>9}"
                         f"{st['auth_lost']:>6}{_ms(st['init_p99_ms']):>10}"
                         f"{_ms(st['service_cpu_pct']):>10}  {st['status']}")
        lines.append(f"KNEE: {r['knee_cps']} cps (last step with authorize p99 <= {r['p99_bound_ms']} ms)"
                     if r["knee_cps"] is not None else "KNEE: none (the first step is already over the bound)")
    if "soak" in result:
        lines.append(f"memory (RSS sampled every {result['soak']['rss_every_s']} s; first vs last quarter):")
        lines.append(f"{'process':<12}{'first MB':>10}{'last MB':>10}{'peak MB':>10}{'MB/min':>9}")
        for name, row in result["soak"]["memory"].items():
            lines.append(f"{name:<12}{row['rss_first_mb']:>10.1f}{row['rss_last_mb']:>10.1f}"
                         f"{row['peak_mb']:>10.1f}{row['growth_mb_per_min']:>9.2f}")
    if "sessions" in result:
        ss = result["sessions"]
        lines.append(f"sessions (debit interval {ss['debit_interval_s']} s, all released at "
                     f"{ss['release_at_s']} s):")
        lines.append(f"{'t s':>7}{'live':>7}{'SM active':>10}{'debits':>8}{'owed':>7}{'lag s':>7}{'auth p99':>10}")
        for x in ss["samples"]:
            lines.append(f"{x['t']:>7}{x['engaged_prepaid']:>7}{_ms(x['sm_active_sessions']):>10}"
                         f"{x['debits_done']:>8.0f}{x['debits_owed']:>7}{x['debit_lag_s']:>7}"
                         f"{_ms(x['auth_p99_ms']):>10}")
        lines.append(f"HELD ON SCHEDULE: {ss['held_on_schedule']} concurrent prepaid sessions (debit lag <= "
                     f"{ss['lag_bound_s']} s, auth p99 <= {ss['p99_bound_ms']} ms); max live "
                     f"{ss['max_engaged']}, max debit lag {ss['max_debit_lag_s']} s")
        bad = ss.get("first_off_schedule")
        if bad:
            lines.append(f"first sample off schedule: {bad['engaged_prepaid']} live, debit lag "
                         f"{bad['debit_lag_s']} s, auth p99 {_ms(bad['auth_p99_ms'])} ms")
    if "echo" in result:
        e = result["echo"]
        lines.append(f"echo ceiling: knee {e.get('echo_knee_cps')} cps, service CPU per call "
                     f"{e.get('echo_cpu_per_call_ms')} ms")
        if "knee_ratio" in e:
            lines.append(f"real suite vs echo: knee {e['real_knee_cps']} / {e['echo_knee_cps']} cps = "
                         f"{e['knee_ratio']}; CPU per call {e['real_cpu_per_call_ms']} / "
                         f"{e['echo_cpu_per_call_ms']} ms = {e['cpu_per_call_ratio']}x "
                         f"(SM alone {e['real_sm_cpu_per_call_ms']} / {e['echo_sm_cpu_per_call_ms']} ms)")
    return lines


def write_plots(result: dict[str, Any], folder: Path) -> str:
    """PNG plots of a result (latency over time, calls/s over time, and per mode RSS / sessions);
    returns a line saying what was written, or why nothing was (no matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plots skipped: matplotlib is not installed (pip install matplotlib)"
    folder.mkdir(parents=True, exist_ok=True)
    mode = result.get("mode", "calls")
    title = f"cgrpy bench {mode} {result['started_utc']} ({result['commit']}, load {result['loadavg_before']})"
    tl = result["timeline"]
    written = []

    def save(fig: Any, name: str) -> None:
        fig.suptitle(title, fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
        written.append(name)

    t = [r["t"] for r in tl]
    fig, ax = plt.subplots(figsize=(9, 4))
    for key, label in (("auth_p50_ms", "authorize p50"), ("auth_p99_ms", "authorize p99")):
        ax.plot(t, [r[key] if r[key] is not None else math.nan for r in tl], label=label)
    if "ramp" in result:
        ax.axhline(result["ramp"]["p99_bound_ms"], color="red", linestyle=":", label="p99 bound")
    ax.set_yscale("log")
    ax.set_xlabel("seconds (calls due)")
    ax.set_ylabel("ms (from when due)")
    ax.legend()
    save(fig, f"{mode}-latency.png")

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(t, [r.get("offered", 0) for r in tl], label="offered (calls due)")
    ax.plot(t, [r["answered"] for r in tl], label="answered")
    ax.set_xlabel("seconds")
    ax.set_ylabel("calls/s")
    ax.legend()
    save(fig, f"{mode}-cps.png")

    rss = result.get("rss_timeline_mb") or []
    if rss:
        fig, ax = plt.subplots(figsize=(9, 4))
        for name in sorted({n for _, r in rss for n in r}):
            ax.plot([x for x, _ in rss], [r.get(name, math.nan) for _, r in rss], label=name)
        ax.set_xlabel("seconds")
        ax.set_ylabel("RSS MB")
        ax.legend(fontsize=7, ncol=3)
        save(fig, f"{mode}-rss.png")

    if "sessions" in result and result["sessions"]["samples"]:
        sm = result["sessions"]["samples"]
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.plot([x["t"] for x in sm], [x["engaged_prepaid"] for x in sm], label="live prepaid sessions")
        ax.set_xlabel("seconds")
        ax.set_ylabel("sessions")
        ax2 = ax.twinx()
        ax2.plot([x["t"] for x in sm], [x["debit_lag_s"] for x in sm], color="red", label="debit lag s")
        ax2.set_ylabel("debit lag s")
        ax.legend(loc="upper left")
        ax2.legend(loc="lower right")
        save(fig, f"{mode}-sessions.png")
    return f"plots written to {folder}: {', '.join(written)}"
