"""SM's own Prometheus metrics (beside the standard gRPC ones). Names are what the dashboard
(deploy/grafana/cgrpy.json) and the alert rules (deploy/prometheus/alerts.yml) query."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OPENSIPS_REQUESTS = Counter(
    "cgrpy_sm_requests_total",
    "Requests from OpenSIPS (cgrates module / events), by method and result (ok, error, timeout).",
    ["method", "result"],
)
OPENSIPS_REPLY_SECONDS = Histogram(
    "cgrpy_sm_reply_seconds",
    "Time SM took to answer OpenSIPS, by method.",
    ["method"],
    buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.5, 1, 2, 5),
)
ACTIVE_SESSIONS = Gauge("cgrpy_sm_active_sessions", "Sessions being charged now.")
DEBITS = Counter("cgrpy_sm_debits_total", "Session debits sent to RALs, by result.", ["result"])
DISCONNECTS = Counter(
    "cgrpy_sm_disconnects_total", "Calls SM cut off, by reason (e.g. INSUFFICIENT_CREDIT).", ["reason"]
)
CDR_SPOOL = Gauge("cgrpy_sm_cdr_spool_depth", "CDRs accepted from OpenSIPS not yet stored by cdre.")
CALLS_STARTED = Counter("cgrpy_sm_calls_started_total", "Sessions initiated (answered calls).")
