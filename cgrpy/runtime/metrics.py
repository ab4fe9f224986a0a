"""Prometheus metrics: the standard gRPC server metrics (as go-grpc-prometheus names them) around
every unary behaviour (:class:`RpcMetrics`, counted by the runtime's guard on either transport),
process metrics from prometheus_client, and the /metrics HTTP endpoint."""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import Counter, Histogram, start_http_server

GRPC_STARTED = Counter(
    "grpc_server_started_total", "RPCs started on the server.", ["grpc_type", "grpc_service", "grpc_method"]
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, regardless of success or failure.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
GRPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Response latency of RPCs handled by the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=_BUCKETS,
)
_BOUNDS = (*(float(b) for b in _BUCKETS), math.inf)  # what Histogram.observe compares with
# StatS/ThresholdS replicas: a request passed on to the owner of (some of) its keys costs one
# more hop; clients that route to owners keep this near zero (cgrpy.runtime.owner_routes).
PARTITION_FORWARDS = Counter(
    "cgrpy_partition_forwards_total",
    "Requests this replica passed to another replica owning their keys (one more hop).",
    ["service"],
)


def _split(full_method: str) -> tuple[str, str]:
    # "/cgrates.v1.RalsService/GetCost" -> ("cgrates.v1.RalsService", "GetCost")
    _, service, method = full_method.split("/", 2)
    return service, method


def _code_name(code: Any) -> str:
    if isinstance(code, int):  # context.code() may return the raw enum value
        code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    return code.name


class RpcMetrics:
    """The standard server metrics of one method under ``grpc_type`` ("unary", or "mux" over the
    Mux stream), one instance per label set (:meth:`of`).

    Why tallies, not the prometheus_client children: ``Counter.inc`` and ``Histogram.observe``
    take a lock and several Python calls each, ~4 µs per request for the three metrics (a
    quarter of a lane request's server CPU); here a request costs two counter increments and a
    bisect. The tallies are cumulative and written only by the event loop's thread; a scrape
    (another thread) copies them into the children (``set``, never ``inc``), so a scrape sees
    values at most one request old and exactly the names, labels and buckets as before."""

    __slots__ = ("_labels", "buckets", "handled", "seconds", "started")

    def __init__(self, grpc_type: str, full_method: str) -> None:
        service, method = _split(full_method)
        self._labels = (grpc_type, service, method)
        # the children exist from the first guard on, as they did: a scrape lists the method
        GRPC_STARTED.labels(*self._labels)
        GRPC_SECONDS.labels(*self._labels)
        self.started = 0
        self.handled: dict[Any, int] = {}  # status code (enum or raw value) -> calls
        self.buckets = [0] * len(_BOUNDS)  # calls per bucket, not cumulative (as Histogram keeps them)
        self.seconds = 0.0

    @classmethod
    def of(cls, grpc_type: str, full_method: str) -> RpcMetrics:
        """The tallies of this label set, shared by every guard of the process (several servers
        in one process, as in tests, add up as the shared children did)."""
        key = (grpc_type, full_method)
        metrics = _TALLIES.get(key)
        if metrics is None:
            metrics = _TALLIES[key] = cls(grpc_type, full_method)
        return metrics

    def start(self) -> float:
        """Count the call started; returns its start time for :meth:`finish`."""
        self.started += 1
        return time.perf_counter()

    def finish(self, code: Any, start: float) -> None:
        """Count the call handled with ``code`` (a StatusCode or its raw value) and time it."""
        elapsed = time.perf_counter() - start
        handled = self.handled
        handled[code] = handled.get(code, 0) + 1
        self.buckets[bisect_left(_BOUNDS, elapsed)] += 1
        self.seconds += elapsed

    def publish(self) -> None:
        """Copy the tallies into the prometheus_client children (any thread)."""
        GRPC_STARTED.labels(*self._labels)._value.set(self.started)
        by_name: dict[str, int] = {}
        for code, n in dict(self.handled).items():  # a copy: the loop may add a code meanwhile
            name = _code_name(code)
            by_name[name] = by_name.get(name, 0) + n
        for name, n in by_name.items():
            GRPC_HANDLED.labels(*self._labels, name)._value.set(n)
        child = GRPC_SECONDS.labels(*self._labels)
        for value, n in zip(child._buckets, list(self.buckets), strict=True):
            value.set(n)
        child._sum.set(self.seconds)


_TALLIES: dict[tuple[str, str], RpcMetrics] = {}


def _publish_all() -> None:
    for metrics in list(_TALLIES.values()):
        metrics.publish()


def _publishing(collect: Callable[[], Any]) -> Callable[[], Any]:
    def collect_published() -> Any:
        _publish_all()
        return collect()

    return collect_published


# Every way of collecting these three (the /metrics endpoint, a name-filtered scrape,
# REGISTRY.get_sample_value) goes through their collect(): the tallies are published first.
for _metric in (GRPC_STARTED, GRPC_HANDLED, GRPC_SECONDS):
    _metric.collect = _publishing(_metric.collect)  # type: ignore[method-assign]


def serve_metrics(host: str, port: int) -> Any:
    """Start the /metrics HTTP server in a daemon thread; returns (server, thread)."""
    return start_http_server(port, addr=host)
