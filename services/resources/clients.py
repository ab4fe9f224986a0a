"""ResourceS's outbound gRPC: ThresholdS, told of every ResourceUpdate (its answer is only logged)."""

from __future__ import annotations

from collections.abc import Sequence

from cgrates.v1 import thresholds_pb2, thresholds_pb2_grpc
from cgrpy.config import Settings
from cgrpy.event import CGREvent
from cgrpy.runtime.client import ServiceClient
from cgrpy.wire import event_to_pb


class ThresholdSClient:
    """ResourceUpdate events to ThresholdS; errors come back as CGRError with ThresholdS's word."""

    def __init__(self, settings: Settings) -> None:
        self.client = ServiceClient(settings, "thresholds", thresholds_pb2_grpc.ThresholdsServiceStub)

    async def process_event(self, event: CGREvent, threshold_ids: Sequence[str]) -> None:
        """One ``ProcessEvent`` (NOT_FOUND: no threshold matched)."""
        req = thresholds_pb2.ThresholdsProcessEventRequest(event=event_to_pb(event),
                                                           threshold_ids=list(threshold_ids))
        await self.client.call("ProcessEvent", req)

    async def close(self) -> None:
        await self.client.close()
