"""Prometheus metrics: the standard gRPC server metrics (as go-grpc-prometheus names them) around
every unary behaviour (:func:`metered`, applied by the runtime's guard on either transport), process metrics from prometheus_client, and the /metrics HTTP endpoint."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
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


def metered(grpc_type: str, full_method: str, inner: Callable[[Any, Any], Awaitable[Any]]
            ) -> Callable[[Any, Any], Awaitable[Any]]:
    """``inner`` counted and timed under ``grpc_type`` ("unary", or "mux" over the Mux stream);
    the label children are resolved here, once, not on every call."""
    service, method = _split(full_method)
    started = GRPC_STARTED.labels(grpc_type, service, method)
    seconds = GRPC_SECONDS.labels(grpc_type, service, method)
    handled: dict[str, Any] = {}

    async def wrapped(request: Any, context: Any) -> Any:
        started.inc()
        start = time.perf_counter()
        code: Any = grpc.StatusCode.OK
        try:
            response = await inner(request, context)
            code = context.code() or grpc.StatusCode.OK
            return response
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except Exception:
            code = grpc.StatusCode.UNKNOWN
            raise
        finally:
            name = _code_name(code)
            counter = handled.get(name)
            if counter is None:
                counter = handled[name] = GRPC_HANDLED.labels(grpc_type, service, method, name)
            counter.inc()
            seconds.observe(time.perf_counter() - start)

    return wrapped


def serve_metrics(host: str, port: int) -> Any:
    """Start the /metrics HTTP server in a daemon thread; returns (server, thread)."""
    return start_http_server(port, addr=host)
