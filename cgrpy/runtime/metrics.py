"""Prometheus metrics: the standard gRPC server metrics (as go-grpc-prometheus names them) around
every unary behaviour (:class:`RpcMetrics`, counted by the runtime's guard on either transport),
process metrics from prometheus_client, and the /metrics HTTP endpoint."""

from __future__ import annotations

import time
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
GRPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Response latency of RPCs handled by the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
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
    Mux stream): the label children are resolved here, once, not on every call. The runtime's
    guard (``cgrpy.runtime.server.make_guard``) calls :meth:`start` and :meth:`finish` inline
    rather than through a wrapper coroutine of its own: one coroutine less per request."""

    __slots__ = ("_handled", "_labels", "_seconds", "_started")

    def __init__(self, grpc_type: str, full_method: str) -> None:
        service, method = _split(full_method)
        self._labels = (grpc_type, service, method)
        self._started = GRPC_STARTED.labels(grpc_type, service, method)
        self._seconds = GRPC_SECONDS.labels(grpc_type, service, method)
        self._handled: dict[Any, Any] = {}  # status code -> its grpc_server_handled_total child

    def start(self) -> float:
        """Count the call started; returns its start time for :meth:`finish`."""
        self._started.inc()
        return time.perf_counter()

    def finish(self, code: Any, start: float) -> None:
        """Count the call handled with ``code`` (a StatusCode or its raw value) and time it."""
        counter = self._handled.get(code)
        if counter is None:
            counter = self._handled[code] = GRPC_HANDLED.labels(*self._labels, _code_name(code))
        counter.inc()
        self._seconds.observe(time.perf_counter() - start)


def serve_metrics(host: str, port: int) -> Any:
    """Start the /metrics HTTP server in a daemon thread; returns (server, thread)."""
    return start_http_server(port, addr=host)
