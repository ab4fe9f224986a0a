"""SupplierS's outbound gRPC: RALs prices a supplier's rating plans (``*least_cost`` and friends),
StatS gives the queue metrics of ``*qos``. Both are asked from the engine's worker thread through
:meth:`cgrpy.runtime.engine_runner.EngineRunner.call_remote`, so each call is a coroutine here."""

from __future__ import annotations

from cgrates.v1 import common_pb2, rals_pb2, rals_pb2_grpc, stats_pb2_grpc
from cgrpy.config import Settings
from cgrpy.runtime.client import ServiceClient


class RalsClient:
    """RALs ``GetCost`` (read-only, so retried on a transient failure)."""

    def __init__(self, settings: Settings) -> None:
        self.client = ServiceClient(settings, "rals", rals_pb2_grpc.RalsServiceStub)

    @property
    def timeout(self) -> float:
        return self.client.timeout

    async def get_cost(self, cd: rals_pb2.CallDescriptor) -> rals_pb2.CostResponse:
        return await self.client.call("GetCost", cd, idempotent=True)

    async def close(self) -> None:
        await self.client.close()


class StatsClient:
    """StatS ``GetQueueFloatMetrics`` of one queue: metric ID -> value as decimal text."""

    def __init__(self, settings: Settings) -> None:
        self.client = ServiceClient(settings, "stats", stats_pb2_grpc.StatsServiceStub)

    @property
    def timeout(self) -> float:
        return self.client.timeout

    async def float_metrics(self, tenant: str, stat_id: str) -> dict[str, str]:
        reply = await self.client.call("GetQueueFloatMetrics", common_pb2.TenantID(tenant=tenant, id=stat_id),
                                       idempotent=True)
        return dict(reply.metrics)

    async def close(self) -> None:
        await self.client.close()
