"""ChargerS's road to AttributeS: the async callable :class:`ChargerEngine` expects, over gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cgrates.v1 import attributes_pb2, attributes_pb2_grpc
from cgrpy.config import Settings
from cgrpy.event import CGREvent
from cgrpy.runtime.client import ServiceClient
from cgrpy.wire import event_from_pb, event_to_pb


@dataclass
class RemoteAttrReply:
    """AttributeS's ProcessEvent reply in the shape ChargerEngine merges."""

    matched_profiles: list[str]
    altered_fields: list[str]
    event: CGREvent
    profile_version: str = ""  # AttributeS's profile set that answered (see attributes.proto)
    input_fields: tuple[str, ...] = ()
    reusable: bool = False


class AttributeSClient:
    """``await client(event, context=..., attribute_ids=...)`` -> :class:`RemoteAttrReply`.

    Errors come back as CGRError with AttributeS's word (NOT_FOUND, SERVER_ERROR, ...);
    ChargerEngine decides what they mean for the run.
    """

    def __init__(self, settings: Settings, *, addr: str | None = None) -> None:
        self.default_tenant = settings.default_tenant
        self.client = ServiceClient(settings, "attributes", attributes_pb2_grpc.AttributesServiceStub,
                                    addr=addr)

    async def __call__(self, event: CGREvent, *, context: str = "",
                       attribute_ids: Sequence[str] | None = None) -> RemoteAttrReply:
        req = attributes_pb2.AttributesProcessEventRequest(
            event=event_to_pb(event), context=context, attribute_ids=list(attribute_ids or ()))
        # AttributeS keeps no state: retrying a lost call is safe.
        resp = await self.client.call("ProcessEvent", req, idempotent=True)
        return RemoteAttrReply(list(resp.matched_profiles), list(resp.altered_fields),
                               event_from_pb(resp.event, self.default_tenant),
                               resp.profile_version, tuple(resp.input_fields), resp.reusable)

    async def close(self) -> None:
        await self.client.close()
