"""ResourceS's own Prometheus metrics (beside the standard gRPC ones): decisions by outcome, and
each resource's usage and limit, read from the live engine at scrape time. Names are what the
dashboard (deploy/grafana/cgrpy.json) and the alert rules (deploy/prometheus/alerts.yml) query."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

DECISIONS = Counter(
    "cgrpy_resource_decisions_total",
    "ResourceS answers by operation (authorize, allocate, release) and result (ok, refused, "
    "not_found, error); refused = RESOURCE_UNAUTHORIZED / RESOURCE_UNAVAILABLE.",
    ["op", "result"],
)


class ResourceCollector(Collector):
    """Usage and limit of every resource of the engines registered (one per server)."""

    def __init__(self) -> None:
        self.engines: dict[int, Callable[[], Any]] = {}

    def collect(self) -> Iterator[Any]:
        usage = GaugeMetricFamily("cgrpy_resource_usage", "Units a resource holds now (its TotalUsage).",
                                  labels=["tenant", "resource"])
        limit = GaugeMetricFamily("cgrpy_resource_limit", "A resource's Limit (-1 = unlimited).",
                                  labels=["tenant", "resource"])
        for get in list(self.engines.values()):
            eng = get()
            if eng is None:
                continue
            for (tenant, rid), r in list(eng.resources.items()):
                usage.add_metric([tenant, rid], r.total_usage())
                limit.add_metric([tenant, rid], eng.profiles[(tenant, rid)].limit)
        yield usage
        yield limit


COLLECTOR = ResourceCollector()
REGISTRY.register(COLLECTOR)
