"""StatS's outbound gRPC: ThresholdS, told of every StatUpdate (its answer is only logged).

A StatUpdate names the queue's ThresholdIDs, so it goes straight to the replica owning them (the
tenant's thresholds' owner when it names none; ``cgrpy.runtime.owner_routes``); a batch is split
by tenant.
"""

from __future__ import annotations

from collections.abc import Sequence

from cgrates.v1 import common_pb2, thresholds_pb2, thresholds_pb2_grpc
from cgrpy.config import Settings
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.runtime.balance import partition_owners
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.owner_routes import TenantRoutes, batch_route, per_tenant
from cgrpy.wire import event_to_pb


class ThresholdSClient:
    """StatUpdate events to ThresholdS; errors come back as CGRError with ThresholdS's word."""

    def __init__(self, settings: Settings) -> None:
        self.client = ServiceClient(settings, "thresholds", thresholds_pb2_grpc.ThresholdsServiceStub,
                                    owners=partition_owners)
        self.routes = TenantRoutes(self._threshold_ids)

    async def _threshold_ids(self, tenant: str) -> list[str]:
        try:
            reply = await self.client.call("GetThresholdIDs", common_pb2.TenantRequest(tenant=tenant),
                                           idempotent=True)
        except CGRError as exc:
            if exc.word == "NOT_FOUND":
                return []
            raise
        return list(reply.ids)

    async def process_events(self, events: Sequence[tuple[CGREvent, Sequence[str]]]) -> None:
        """A batch in ``ProcessEvents`` (each event with the threshold IDs it names), one per
        tenant, concurrently."""
        async def send(part: list[tuple[CGREvent, Sequence[str]]]) -> None:
            req = thresholds_pb2.ThresholdsProcessEventsRequest(events=[
                thresholds_pb2.ThresholdsProcessEventRequest(event=event_to_pb(ev), threshold_ids=list(ids))
                for ev, ids in part])
            route = batch_route(self.routes, part[0][0].tenant, [ids for _, ids in part])
            await self.client.call("ProcessEvents", req, route=route)

        await per_tenant(events, lambda item: item[0].tenant, send)

    async def process_event(self, event: CGREvent, threshold_ids: Sequence[str]) -> list[str]:
        """One ``ProcessEvent``; the IDs of the thresholds it hit (NOT_FOUND: none matched)."""
        req = thresholds_pb2.ThresholdsProcessEventRequest(event=event_to_pb(event),
                                                           threshold_ids=list(threshold_ids))
        reply = await self.client.call("ProcessEvent", req,
                                       route=self.routes.route(event.tenant, threshold_ids))
        return list(reply.ids)

    async def close(self) -> None:
        await self.routes.close()
        await self.client.close()
