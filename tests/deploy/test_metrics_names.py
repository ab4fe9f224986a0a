"""Every metric an alert or a dashboard panel queries is exported by the code, so renaming a
metric breaks this test instead of silently emptying a panel or muting an alert."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from .deployfiles import ALERTS, DASHBOARD, ROOT

# Metric declarations: Counter("name", ...), Gauge(...), Histogram(...), Summary(...) and the
# custom-collector families (CounterMetricFamily("name", ...), ...).
_DECL = re.compile(
    r'\b(Counter|Gauge|Histogram|Summary)(?:MetricFamily)?\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"'
)
_PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "rate", "irate", "increase", "deriv", "delta",
    "histogram_quantile", "by", "without", "and", "or", "unless", "on", "ignoring", "offset",
    "abs", "clamp_min", "clamp_max", "time", "vector", "topk", "bottomk", "absent",
}
# Standard series Prometheus adds itself for every target.
_BUILTIN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def exported_names() -> set[str]:
    names: set[str] = set(_BUILTIN)
    for folder in ("cgrpy", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            for kind, name in _DECL.findall(path.read_text()):
                if kind == "Counter":
                    base = name.removesuffix("_total")
                    names |= {f"{base}_total", f"{base}_created"}
                elif kind in ("Histogram", "Summary"):
                    names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
                else:
                    names.add(name)
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers, grouping labels, strings removed)."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    words = set(re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w(])", expr))
    calls = set(re.findall(r"([a-zA-Z_]+)\s*\(", expr))
    return {w for w in words - calls if w not in _PROMQL_WORDS and not re.fullmatch(r"\d+e\d+", w)}


def alert_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


def panel_exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]


def test_metric_name_extraction():
    assert metric_names('sum by (le) (rate(cgrpy_sm_reply_seconds_bucket{method="a b"}[5m])) > 0.5') == {
        "cgrpy_sm_reply_seconds_bucket"
    }
    assert metric_names('up{job="cgrpy"} == 0 and deriv(x_total[10m]) > 0') == {"up", "x_total"}


def test_exported_names_found_in_code():
    names = exported_names()
    for expected in ("cgrpy_sm_requests_total", "cgrpy_sm_reply_seconds_bucket", "cgrpy_sm_active_sessions",
                     "grpc_server_handled_total", "grpc_server_handling_seconds_bucket",
                     "cgrpy_cdrs_processed_total", "cgrpy_stats_metric_value"):
        assert expected in names


@pytest.mark.parametrize(("alert", "expr"), alert_exprs())
def test_alert_uses_exported_metrics(alert, expr):
    used = metric_names(expr)
    assert used, f"{alert}: no metric found in {expr!r}"
    assert used <= exported_names(), f"{alert}: unknown metrics {used - exported_names()}"


@pytest.mark.parametrize(("panel", "expr"), panel_exprs())
def test_panel_uses_exported_metrics(panel, expr):
    used = metric_names(expr)
    assert used, f"{panel}: no metric found in {expr!r}"
    assert used <= exported_names(), f"{panel}: unknown metrics {used - exported_names()}"


def test_dashboard_covers_the_brief():
    text = DASHBOARD.read_text()
    for metric in ("cgrpy_sm_calls_started_total", "cgrpy_sm_active_sessions", "cgrpy_sm_reply_seconds_bucket",
                   "cgrpy_sm_authorizations_total", "cgrpy_sm_debits_total", "cgrpy_sm_disconnects_total", "cgrpy_cdrs_processed_total",
                   "cgrpy_sm_cdr_spool_depth", "grpc_server_handled_total", "cgrpy_stats_metric_value"):
        assert metric in text, metric
    for q in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({q}, sum by (le) (rate(cgrpy_sm_reply_seconds_bucket" in text
    assert '*asr' in text and '*acd' in text


def test_alerts_cover_the_brief():
    names = {a for a, _ in alert_exprs()}
    assert {"CgrpySmRepliesOverDeadline", "CgrpyAuthorizationFailuresSpike", "CgrpyCdrSpoolGrowing",
            "CgrpyServiceDown", "CgrpyAsrLow", "CgrpyAcdLow"} <= names
