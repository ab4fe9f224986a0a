"""StatS's outbound gRPC: ThresholdS, told of every StatUpdate (its answer is only logged)."""

from __future__ import annotations

from collections.abc import Sequence

from cgrates.v1 import thresholds_pb2, thresholds_pb2_grpc
from cgrpy.config import Settings
from cgrpy.event import CGREvent
from cgrpy.runtime.client import ServiceClient
from cgrpy.wire import event_to_pb


class ThresholdSClient:
    """StatUpdate events to ThresholdS; errors come back as CGRError with ThresholdS's word."""

    def __init__(self, settings: Settings) -> None:
        self.client = ServiceClient(settings, "thresholds", thresholds_pb2_grpc.ThresholdsServiceStub)

    async def process_events(self, events: Sequence[tuple[CGREvent, Sequence[str]]]) -> None:
        """A batch in one ``ProcessEvents`` (each event with the threshold IDs it names)."""
        req = thresholds_pb2.ThresholdsProcessEventsRequest(events=[
            thresholds_pb2.ThresholdsProcessEventRequest(event=event_to_pb(ev), threshold_ids=list(ids))
            for ev, ids in events])
        await self.client.call("ProcessEvents", req)

    async def process_event(self, event: CGREvent, threshold_ids: Sequence[str]) -> list[str]:
        """One ``ProcessEvent``; the IDs of the thresholds it hit (NOT_FOUND: none matched)."""
        req = thresholds_pb2.ThresholdsProcessEventRequest(event=event_to_pb(event),
                                                           threshold_ids=list(threshold_ids))
        reply = await self.client.call("ProcessEvent", req)
        return list(reply.ids)

    async def close(self) -> None:
        await self.client.close()
