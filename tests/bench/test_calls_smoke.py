"""The call benchmark's instrument, tested: a few seconds of low-rate load against a real suite
(`cgr up` on Postgres) must complete every call, store 2 CDRs per call and balance the money
exactly; the wire helpers must speak what OpenSIPS speaks."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.generator import GenConfig, Generator
from bench.osips import jsonc
from bench.plan import write_plan
from bench.report import percentile


def test_requests_are_written_json_c_spaced_like_the_module() -> None:
    body = {"method": "SessionSv1.ProcessCDR", "id": 448117116, "params": [{"Tenant": "cgrates.org",
            "GetMaxUsage": True, "Event": {"Usage": "2s", "DialogID": 515806928}}]}
    assert jsonc(body) == ('{ "method": "SessionSv1.ProcessCDR", "id": 448117116, "params": [ { '
                           '"Tenant": "cgrates.org", "GetMaxUsage": true, "Event": { "Usage": "2s", '
                           '"DialogID": 515806928 } } ] }')
    assert json.loads(jsonc(body)) == body


def test_nearest_rank_percentiles() -> None:
    vals = [float(i) for i in range(1, 101)]
    assert (percentile(vals, 50), percentile(vals, 99), percentile(vals, 100)) == (50.0, 99.0, 100.0)
    assert percentile([7.0], 99) == 7.0


def test_engine_requests_are_answered_like_opensips(tmp_path: Path) -> None:
    gen = Generator(GenConfig(cps=1, duration_s=1, call_length_s=1), write_plan(tmp_path, 2), "127.0.0.1", 1)
    assert gen._engine_request("SessionSv1.GetActiveSessionIDs", "") == []
    assert gen._engine_request("SessionSv1.DisconnectSession",
                               {"EventStart": {"DialogID": 1, "DialogEntry": 2}, "Reason": "X"}) == "OK"
    with pytest.raises(ValueError, match="DialogID parameter is invalid"):
        gen._engine_request("SessionSv1.DisconnectSession", {"EventStart": {"DialogID": "1"}})
    with pytest.raises(ValueError, match="Unknown Method"):
        gen._engine_request("SessionSv1.Nope", {})


@pytest.mark.e2e
def test_low_rate_run_completes_every_call_and_balances_the_money(pg_url: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    rc = main(["calls", "--cps", "4", "--duration", "4", "--call-length", "2s", "--accounts", "10",
               "--postpaid-ratio", "0.5", "--debit-interval", "1s", "--connections", "2",
               "--db-url", pg_url, "--out", str(out)])
    result = json.loads(out.read_text())
    assert rc == 0, result["consistency"]
    calls = result["calls"]
    assert calls["attempted"] == 16
    assert calls["completed"] == 16 and calls["failed_total"] == 0 and calls["unfinished"] == 0
    assert calls["completed_prepaid"] + calls["completed_postpaid"] == 16
    assert all(result["latency"][s]["n"] == 16 for s in ("auth", "init", "terminate", "cdr"))
    check = result["consistency"]
    assert check["cdrs_stored"] == 32 and check["cdrs_by_run"] == {"*default": 16, "*raw": 16}
    # every call lasts 2 s (Usage "1s".."3s" by whole-second clocks) on a tariff with a connect
    # fee, so money moved and it matches the CDR costs to the last digit
    assert Decimal(check["money_debited"]) == Decimal(check["cdr_costs"]) > 0
    assert set(result["processes"]) == {"postgres", "attributes", "chargers", "rals", "suppliers", "stats",
                                        "thresholds", "cdre", "resources", "sm"}
    assert all(p["peak_rss_mb"] > 10 for p in result["processes"].values())
    per_call = result["cpu_per_call_ms"]  # first-class: every service, their sum, Postgres, all
    assert set(per_call) == set(result["processes"]) | {"services", "total"}
    assert per_call["services"] == pytest.approx(1000 * result["processes_cpu_total"] / 16, abs=0.05)
    assert per_call["total"] == pytest.approx(per_call["services"] + per_call["postgres"], abs=0.02)
    assert all(v > 0 for v in per_call.values())
