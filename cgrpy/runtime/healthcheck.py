"""Real gRPC health checks (used by `cgr up`, `cgr status`, `cgr health` and Docker)."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(addr: str, service: str = "", timeout: float = 1.0, settings: Any = None) -> str:
    """Status name for ``addr`` (SERVING, NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN) or UNREACHABLE.
    ``settings`` give the suite's TLS settings (health itself needs no token)."""
    if settings is not None and settings.get("grpc_tls_ca"):
        from cgrpy.runtime.auth import channel as tls_channel

        ctx: Any = tls_channel(settings, addr)
    else:
        ctx = grpc.insecure_channel(addr)
    with ctx as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return "SERVICE_UNKNOWN"
            return "UNREACHABLE"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
