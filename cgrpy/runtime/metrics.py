"""Prometheus metrics: the standard gRPC server metrics (as go-grpc-prometheus names them) via a
server interceptor, process metrics from prometheus_client, and the /metrics HTTP endpoint."""

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


def _split(full_method: str) -> tuple[str, str]:
    # "/cgrates.v1.RalsService/GetCost" -> ("cgrates.v1.RalsService", "GetCost")
    _, service, method = full_method.split("/", 2)
    return service, method


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every unary RPC, labelled with its final status code."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        service, method = _split(handler_call_details.method)
        inner = handler.unary_unary

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            GRPC_STARTED.labels("unary", service, method).inc()
            start = time.perf_counter()
            code = grpc.StatusCode.OK
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
                if isinstance(code, int):  # context.code() may return the raw enum value
                    code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
                GRPC_HANDLED.labels("unary", service, method, code.name).inc()
                GRPC_SECONDS.labels("unary", service, method).observe(time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def serve_metrics(host: str, port: int) -> Any:
    """Start the /metrics HTTP server in a daemon thread; returns (server, thread)."""
    return start_http_server(port, addr=host)
