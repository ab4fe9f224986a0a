"""The bench modes, tested: pure pieces (ramp schedule and knee, the sessions debit schedule, the
soak memory trend) with concrete numbers, then each mode once at a tiny rate against a real suite
(or the echo suite), asserting the instrument measured and checked what it claims."""

from __future__ import annotations

import builtins
import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import main
from bench.echo import compare
from bench.generator import GenConfig
from bench.ramp import knee, schedule
from bench.report import write_plots
from bench.sessions import debit_lag, owed
from bench.soak import memory_trend

# ---------------------------------------------------------------------- pure pieces


def test_cpu_per_call_per_service_and_in_total() -> None:
    from bench.measure import cpu_per_call

    procs = {"sm": {"cpu_seconds": 2.5}, "rals": {"cpu_seconds": 1.0}, "postgres": {"cpu_seconds": 0.5}}
    assert cpu_per_call(procs, 500) == {"sm": 5.0, "rals": 2.0, "postgres": 1.0, "services": 7.0, "total": 8.0}
    assert cpu_per_call(procs, 0) is None


def test_ramp_schedule_multiplies_the_rate_until_a_cap() -> None:
    assert schedule(2, 1.5, 10, 12, 8) == ((2, 10), (3.0, 10), (4.5, 10), (6.75, 10))
    assert schedule(2, 2, 5, 2, 1000) == ((2, 5), (4, 5))
    with pytest.raises(SystemExit, match="--factor > 1"):
        schedule(2, 1, 5, 2, 1000)


def test_schedule_due_offsets_are_even_within_each_segment() -> None:
    cfg = GenConfig(cps=2, duration_s=0, call_length_s=1, schedule=((2, 1), (4, 1)))
    assert cfg.due_offsets() == [0.0, 0.5, 1.0, 1.25, 1.5, 1.75]
    assert cfg.total_seconds() == 2


def test_knee_is_the_last_step_under_the_bound_before_the_first_over() -> None:
    steps = [{"step": 1, "cps": 2, "status": "ok"}, {"step": 2, "cps": 3, "status": "ok"},
             {"step": 3, "cps": 4.5, "status": "over"}, {"step": 4, "cps": 6.75, "status": "stopped"}]
    assert knee(steps)["cps"] == 3
    assert knee([{"step": 1, "cps": 2, "status": "over"}]) is None


def test_debits_owed_and_lag_follow_the_interval() -> None:
    # answered at 0 s and 5 s, interval 10 s: by 25 s the first owes 3 (0, 10, 20), the second 3
    assert owed([0.0, 5.0], 25.0, 10.0) == 6
    assert owed([0.0, 5.0], 25.0, 10.0, grace_s=6.0) == 4  # by 19 s: 0, 10 and 5, 15
    assert debit_lag([0.0, 5.0], 25.0, 10.0, done=6) == 0.0
    # two debits missing (the ones due at 20 s and 15 s): the oldest is 10 s late
    assert debit_lag([0.0, 5.0], 25.0, 10.0, done=4) == pytest.approx(5.1, abs=0.11)


def test_memory_trend_compares_first_and_last_quarter() -> None:
    tl = [(float(t), {"sm": 60.0 + t / 6, "rals": 90.0}) for t in range(0, 121, 10)]
    trend = memory_trend(tl)
    assert trend["rals"]["growth_mb_per_min"] == 0
    assert trend["sm"]["growth_mb_per_min"] == pytest.approx(10.0, abs=0.01)  # 1/6 MB per s
    assert trend["sm"]["peak_mb"] == 80.0


def test_echo_ratio_of_a_real_ramp() -> None:
    def result(knee_cps: float, cpu: float, sm_cpu: float, completed: int) -> dict[str, Any]:
        return {"mode": "ramp", "started_utc": "x", "commit": "c", "loadavg_before": "0",
                "ramp": {"knee_cps": knee_cps}, "calls": {"completed": completed},
                "processes_cpu_total": cpu, "processes": {"sm": {"cpu_seconds": sm_cpu}},
                "consistency": {"ok": True}}

    c = compare(result(40, 4.0, 2.0, 100), result(10, 11.0, 2.5, 100))
    assert (c["knee_ratio"], c["echo_cpu_per_call_ms"], c["real_cpu_per_call_ms"]) == (0.25, 40.0, 110.0)
    assert c["cpu_per_call_ratio"] == 2.75 and c["real_sm_cpu_per_call_ms"] == 25.0


def test_plots_are_skipped_with_a_clear_message_without_matplotlib(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    real_import = builtins.__import__

    def no_mpl(name: str, *a: Any, **k: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    msg = write_plots({"mode": "calls", "timeline": []}, tmp_path / "p")
    assert msg.startswith("plots skipped: matplotlib is not installed")
    assert not (tmp_path / "p").exists()


# ---------------------------------------------------------------------- each mode, tiny, for real


def _run(args: list[str], out: Path) -> tuple[int, dict[str, Any]]:
    rc = main([*args, "--out", str(out)])
    return rc, json.loads(out.read_text())


@pytest.mark.e2e
def test_ramp_reports_each_step_and_a_knee(pg_url: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rc, r = _run(["ramp", "--start-cps", "3", "--factor", "2", "--step-seconds", "1.5", "--max-steps", "2",
                  "--p99-bound", "5s", "--call-length", "1s", "--accounts", "10", "--debit-interval", "1s",
                  "--db-url", pg_url, "--plots", str(tmp_path / "plots")], tmp_path / "r.json")
    assert rc == 0, r["consistency"]
    steps = r["ramp"]["steps"]
    assert [(s["step"], s["cps"], s["attempted"], s["status"]) for s in steps] == [(1, 3, 4, "ok"), (2, 6, 9, "ok")]
    assert all(s["auth_n"] == s["attempted"] and s["auth_p99_ms"] < 5000 for s in steps)
    assert r["ramp"]["knee_cps"] == 6 and r["calls"]["completed"] == 13
    assert r["consistency"]["cdrs_stored"] == 26
    assert {p.name for p in (tmp_path / "plots").iterdir()} >= {"ramp-latency.png", "ramp-cps.png", "ramp-rss.png"}


@pytest.mark.e2e
def test_soak_samples_memory_and_checks_the_money(pg_url: str, tmp_path: Path) -> None:
    rc, r = _run(["soak", "--cps", "3", "--minutes", "0.04", "--rss-every", "0.5", "--call-length", "1s",
                  "--accounts", "10", "--debit-interval", "1s", "--db-url", pg_url], tmp_path / "s.json")
    assert rc == 0, r["consistency"]
    assert r["calls"]["completed"] == 7
    assert len(r["rss_timeline_mb"]) >= 6  # every 0.5 s over >= 3 s of traffic
    mem = r["soak"]["memory"]
    assert set(mem) >= {"sm", "rals", "cdre"} and all(row["peak_mb"] > 10 for row in mem.values())


@pytest.mark.e2e
def test_sessions_holds_calls_and_counts_debits_on_schedule(pg_url: str, tmp_path: Path) -> None:
    rc, r = _run(["sessions", "--cps", "4", "--duration", "2", "--hold", "3", "--sample-every", "1",
                  "--debit-interval", "1s", "--accounts", "10", "--db-url", pg_url], tmp_path / "x.json")
    assert rc == 0, r["consistency"]
    s = r["sessions"]
    assert r["calls"]["completed"] == 8 and r["calls"]["completed_prepaid"] == 8
    assert r["calls"]["ended_by"] == {"Downstream BYE": 8}  # held until released, then hung up
    assert s["max_engaged"] == 8 and s["held_on_schedule"] >= 4
    # the counter moved with the schedule: by the last sample every session debited >= 3 times
    last = s["samples"][-1]
    assert last["engaged_prepaid"] == 8 and last["debits_done"] >= 8 * 2
    assert all(x["debits_done"] <= x["debits_owed"] + 8 for x in s["samples"])


@pytest.mark.e2e
def test_echo_runs_the_real_sm_on_do_nothing_backends(tmp_path: Path) -> None:
    rc, r = _run(["echo", "--start-cps", "4", "--factor", "2", "--step-seconds", "2", "--max-steps", "1",
                  "--call-length", "1s", "--accounts", "5", "--debit-interval", "1s"], tmp_path / "e.json")
    assert rc == 0, r["consistency"]
    assert r["calls"]["completed"] == 8 and r["consistency"]["cdrs_stored"] == 16
    assert set(r["processes"]) == {"attributes", "chargers", "rals", "suppliers", "stats", "thresholds",
                                   "cdre", "resources", "sm"}
    assert r["ramp"]["knee_cps"] == 4 and r["echo"]["echo_cpu_per_call_ms"] > 0


@pytest.mark.e2e
def test_micro_times_getcost_and_cdr_storing(tmp_path: Path) -> None:
    rc = main(["micro", "--runs", "200", "--cdrs", "20", "--sqlite", "--sessions-closed", "10,100",
               "--sessions-ops", "10", "--out", str(tmp_path / "m.json")])
    r = json.loads((tmp_path / "m.json").read_text())
    assert rc == 0
    assert r["getcost_in_process"]["runs"] == 200 and r["getcost_in_process"]["median_us"] > 0
    assert [(s["backend"], s["rows"], s["ok"]) for s in r["cdr_store"]] == [
        ("postgresql+psycopg", 20, True), ("sqlite", 20, True)]
    assert not math.isnan(r["cdr_store"][0]["rows_per_s"])
    assert r["sm_session_table"]["ok"] and set(r["sm_session_table"]["ratio"]) == {
        "process_cdr_unknown", "process_cdr_closed", "terminate_active", "terminate_closed"}


def test_micro_sm_session_table_only(tmp_path: Path) -> None:
    rc = main(["micro", "--only", "sessions", "--sessions-closed", "10,300", "--sessions-ops", "20",
               "--out", str(tmp_path / "s.json")])
    r = json.loads((tmp_path / "s.json").read_text())
    assert rc == 0 and r["consistency"]["ok"]
    assert "getcost_in_process" not in r and "cdr_store" not in r
    t = r["sm_session_table"]
    assert [(x["closed"], x["closed_after"], x["ok"]) for x in t["runs"]] == [(10, 30, True), (300, 320, True)]
    ops = ("process_cdr_unknown", "process_cdr_closed", "terminate_active", "terminate_closed")
    assert all(x[f"{op}_us"]["median"] > 0 for x in t["runs"] for op in ops)
    assert t["ratio_closed"] == [10, 300] and set(t["ratio"]) == set(ops) and all(v > 0 for v in t["ratio"].values())
