"""The gRPC services behind the API: one lazily opened channel each, a deadline on every call,
and the errors turned into CGRateS words (UNIMPLEMENTED -> ``NOT_IMPLEMENTED``, never a fake
result)."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cgrates.v1 import (
    attributes_pb2_grpc,
    cdre_pb2_grpc,
    chargers_pb2_grpc,
    rals_pb2_grpc,
    resources_pb2_grpc,
    stats_pb2_grpc,
    suppliers_pb2_grpc,
    thresholds_pb2_grpc,
)
from cgrpy.config import Settings
from cgrpy.errors import CGRError
from cgrpy.runtime import auth
from cgrpy.runtime.client import to_cgr_error

STUBS: dict[str, type] = {
    "rals": rals_pb2_grpc.RalsServiceStub,
    "attributes": attributes_pb2_grpc.AttributesServiceStub,
    "chargers": chargers_pb2_grpc.ChargersServiceStub,
    "cdre": cdre_pb2_grpc.CdrServiceStub,
    "stats": stats_pb2_grpc.StatsServiceStub,
    "thresholds": thresholds_pb2_grpc.ThresholdsServiceStub,
    "suppliers": suppliers_pb2_grpc.SuppliersServiceStub,
    "resources": resources_pb2_grpc.ResourcesServiceStub,
}


class Backends:
    """``await backends.call("rals", "GetCost", req)``; channels opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.rpc_timeout / 1e9
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, Any] = {}

    def _channel(self, service: str) -> grpc.aio.Channel:
        ch = self._channels.get(service)
        if ch is None:
            ch = self._channels[service] = auth.aio_channel(self.settings, self.settings.addr(service))
        return ch

    def _stub(self, service: str) -> Any:
        stub = self._stubs.get(service)
        if stub is None:
            stub = self._stubs[service] = STUBS[service](self._channel(service))
        return stub

    async def call(self, service: str, method: str, request: Any, *, timeout: float | None = None) -> Any:
        fn = getattr(self._stub(service), method)
        try:
            return await fn(request, timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                # CGRateS answers NOT_IMPLEMENTED for APIs it does not support: same here, so a
                # script sees an honest error instead of a made-up result.
                raise CGRError("NOT_IMPLEMENTED") from None
            raise to_cgr_error(service, method, exc) from None

    async def health(self, service: str, timeout: float = 1.0) -> str:
        """SERVING, NOT_SERVING, ... or UNREACHABLE."""
        stub = health_pb2_grpc.HealthStub(self._channel(service))
        try:
            resp = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.aio.AioRpcError:
            return "UNREACHABLE"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
        self._stubs.clear()
