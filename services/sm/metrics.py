"""SM's own Prometheus metrics (beside the standard gRPC ones). Names are what the dashboard
(deploy/grafana/cgrpy.json) and the alert rules (deploy/prometheus/alerts.yml) query.

Request counts and reply latency are observed where SM answers OpenSIPS; the session counters
live in the session core (``SessionManager.metrics``) and are read at scrape time by
:class:`SessionCollector`, so the core stays free of Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

OPENSIPS_REQUESTS = Counter(
    "cgrpy_sm_requests_total",
    "Requests from OpenSIPS (cgrates module / events), by method and result (ok, error).",
    ["method", "result"],
)
OPENSIPS_REPLY_SECONDS = Histogram(
    "cgrpy_sm_reply_seconds",
    "Time SM took to answer OpenSIPS, by method.",
    ["method"],
    buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.5, 1, 2, 5),
)


class SessionCollector(Collector):
    """Exports the session core's counters and gauges on each scrape."""

    def __init__(self, sm: Any, spool_depth: Callable[[], int],
                 connections: Callable[[], int] | None = None,
                 cdr_paths: Callable[[], dict[str, int]] | None = None) -> None:
        self.sm = sm
        self.spool_depth = spool_depth
        self.connections = connections
        self.cdr_paths = cdr_paths

    def collect(self) -> Iterator[Any]:
        counts = self.sm.metrics.counts
        active = GaugeMetricFamily("cgrpy_sm_active_sessions", "Sessions being charged now.")
        active.add_metric([], len(self.sm.active_sessions()))
        yield active
        spool = GaugeMetricFamily("cgrpy_sm_cdr_spool_depth", "CDRs accepted from OpenSIPS not yet stored by cdre.")
        spool.add_metric([], self.spool_depth())
        yield spool
        if self.connections is not None:
            conns = GaugeMetricFamily("cgrpy_sm_opensips_connections",
                                      "Open connections from OpenSIPS's cgrates module.")
            conns.add_metric([], self.connections())
            yield conns
        if self.cdr_paths is not None:
            paths = CounterMetricFamily(
                "cgrpy_sm_cdrs", "CDRs SM handed on, by the commit it answered after: direct (cdre "
                "stored them) or spooled (cdre failed, was slow or refused them).", labels=["path"])
            for path, n in self.cdr_paths().items():
                paths.add_metric([path], n)
            yield paths
        debits = CounterMetricFamily("cgrpy_sm_debits", "Session debits sent to RALs, by run.", labels=["run_id"])
        disconnects = CounterMetricFamily("cgrpy_sm_disconnects", "Calls SM cut off, by reason.", labels=["reason"])
        calls = CounterMetricFamily("cgrpy_sm_calls_started", "Sessions initiated (answered calls).", labels=["result"])
        auths = CounterMetricFamily("cgrpy_sm_authorizations", "Authorizations, by outcome.", labels=["outcome"])
        failures = CounterMetricFamily("cgrpy_sm_backend_failures", "Failed backend calls, by step.", labels=["step"])
        late = CounterMetricFamily("cgrpy_sm_replies_over_deadline", "Replies that hit the deadline.", labels=["step"])
        families = {"debits": debits, "disconnects": disconnects, "initiations": calls,
                    "authorizations": auths, "backend_failures": failures, "replies_over_deadline": late}
        for (name, label), value in list(counts.items()):
            fam = families.get(name)
            if fam is not None:
                fam.add_metric([label], value)
        yield from families.values()


def register_session_collector(sm: Any, spool_depth: Callable[[], int],
                               connections: Callable[[], int] | None = None,
                               cdr_paths: Callable[[], dict[str, int]] | None = None) -> SessionCollector:
    collector = SessionCollector(sm, spool_depth, connections, cdr_paths)
    REGISTRY.register(collector)
    return collector


def unregister(collector: SessionCollector) -> None:
    try:
        REGISTRY.unregister(collector)
    except KeyError:
        pass
