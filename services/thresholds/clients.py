"""ThresholdS's outbound gRPC: RALs, which runs a threshold's action sets."""

from __future__ import annotations

from cgrates.v1 import rals_pb2, rals_pb2_grpc
from cgrpy.config import Settings
from cgrpy.event import CGREvent
from cgrpy.runtime.client import ServiceClient
from cgrpy.wire import event_to_pb


class RalsClient:
    """RALs ``ExecuteActions``; errors come back as CGRError with RALs's word."""

    def __init__(self, settings: Settings) -> None:
        self.client = ServiceClient(settings, "rals", rals_pb2_grpc.RalsServiceStub)

    @property
    def timeout(self) -> float:
        return self.client.timeout

    async def execute_actions(self, tenant: str, account: str, actions_id: str,
                              event: CGREvent | None) -> None:
        """One action set on ``account`` (empty: none), with the event that fired it. Never
        retried here: a retried ``*topup`` would top up twice."""
        req = rals_pb2.ExecuteActionsRequest(tenant=tenant, account=account, actions_id=actions_id,
                                             event=event_to_pb(event) if event is not None else None)
        await self.client.call("ExecuteActions", req)

    async def close(self) -> None:
        await self.client.close()
