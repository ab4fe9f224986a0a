"""StatS metric values exposed to Prometheus (ASR/ACD per queue for dashboards and alerts)."""

from __future__ import annotations

from prometheus_client import Gauge

STAT_METRIC = Gauge(
    "cgrpy_stats_metric_value",
    "Current value of a StatS metric (not exported while it has not enough items).",
    ["tenant", "queue", "metric"],
)
