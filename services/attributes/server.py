"""gRPC face of AttributeS: thin handlers around :class:`AttributeEngine`.

The compiled engine lives in one attribute; ``ReloadCache`` builds a new engine off the event
loop and then swaps that reference, so a request already running finishes on the engine it
started with and no request ever sees a half-built one.
"""

from __future__ import annotations

from typing import Any

import grpc

from cgrates.v1 import attributes_pb2, attributes_pb2_grpc, common_pb2
from cgrpy.attributes.engine import AttributeEngine, ProfileDataError
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent, dumps_exact
from cgrpy.filters import FilterS
from cgrpy.filters.deps import EventInputs, event_inputs
from cgrpy.runtime.server import BaseService
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.wire import event_from_pb, event_to_pb


def build_engine(rows: TariffPlanRows, settings: Any) -> AttributeEngine:
    """The engine for one tariff plan, honouring the index settings; bad rows -> SERVER_ERROR."""
    try:
        return AttributeEngine.from_rows(
            rows,
            string_fields=settings.attributes_string_indexed_fields,
            prefix_fields=settings.attributes_prefix_indexed_fields,  # null = every field (CGRateS)
        )
    except (ProfileDataError, ValueError) as exc:
        raise CGRError("SERVER_ERROR", f"attributes tariff plan: {exc}") from None


def engine_counts(engine: AttributeEngine) -> dict[str, int]:
    filters: FilterS = engine.filters
    return {"Attributes": len(engine.profiles()), "Filters": len(filters.stored())}


def response_event(ev: CGREvent, request_event: common_pb2.Event) -> common_pb2.Event:
    """The event for the reply; AttributeS never changes Time, so the request's nanoseconds are
    echoed exactly (the Python datetime only holds microseconds)."""
    pb = event_to_pb(ev)
    pb.time_unix_ns = request_event.time_unix_ns
    return pb


class AttributesServiceServicer(attributes_pb2_grpc.AttributesServiceServicer):
    def __init__(self, owner: AttributesServer) -> None:
        self.owner = owner

    def _event(self, request: attributes_pb2.AttributesProcessEventRequest) -> CGREvent:
        if not request.HasField("event"):
            raise CGRError("MANDATORY_IE_MISSING", "[CGREvent]")
        return event_from_pb(request.event, self.owner.settings.default_tenant)

    async def ProcessEvent(
        self, request: attributes_pb2.AttributesProcessEventRequest, context: grpc.aio.ServicerContext
    ) -> attributes_pb2.AttributesProcessEventResponse:
        reply = self.owner.attributes.process_event(
            self._event(request),
            context=request.context,
            attribute_ids=list(request.attribute_ids) or None,
            process_runs=request.process_runs or None,
        )
        version, inputs = self.owner.profile_version, self.owner.inputs
        return attributes_pb2.AttributesProcessEventResponse(
            matched_profiles=reply.matched_profiles,
            altered_fields=reply.altered_fields,
            event=response_event(reply.event, request.event),
            profile_version=version, input_fields=sorted(inputs.fields), reusable=inputs.reusable,
        )

    async def GetAttributeForEvent(
        self, request: attributes_pb2.AttributesProcessEventRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.JsonObject:
        profile = self.owner.attributes.get_attribute_for_event(
            self._event(request), context=request.context,
            attribute_ids=list(request.attribute_ids) or None)
        return common_pb2.JsonObject(json=dumps_exact(profile.to_dict()))

    async def GetAttributeProfile(
        self, request: common_pb2.TenantID, context: grpc.aio.ServicerContext
    ) -> common_pb2.JsonObject:
        if not request.id:
            raise CGRError("MANDATORY_IE_MISSING", "[ID]")
        tenant = request.tenant or self.owner.settings.default_tenant
        profile = self.owner.attributes.get_profile(tenant, request.id)
        return common_pb2.JsonObject(json=dumps_exact(profile.to_dict()))

    async def GetAttributeProfileIDs(
        self, request: common_pb2.TenantRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.IDsResponse:
        tenant = request.tenant or self.owner.settings.default_tenant
        ids = sorted(p.id for p in self.owner.attributes.profiles() if p.tenant == tenant)
        if not ids:
            raise CGRError("NOT_FOUND")  # as CGRateS: a tenant without profiles is NOT_FOUND
        return common_pb2.IDsResponse(ids=ids)

    async def ReloadCache(
        self, request: common_pb2.ReloadCacheRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.ReloadCacheResponse:
        return await self.owner.reload_cache(request)


class AttributesServer(BaseService):
    name = "attributes"
    cache_files = ("Attributes", "Filters")

    attributes: AttributeEngine
    inputs: EventInputs

    def register(self, server: grpc.aio.Server) -> list[str]:
        attributes_pb2_grpc.add_AttributesServiceServicer_to_server(AttributesServiceServicer(self), server)
        return [attributes_pb2.DESCRIPTOR.services_by_name["AttributesService"].full_name]

    async def load(self) -> None:
        await self.reload()

    def build(self, rows: TariffPlanRows) -> AttributeEngine:
        return build_engine(rows, self.settings)

    def swap(self, new: AttributeEngine, rows: TariffPlanRows) -> AttributeEngine | None:
        old = getattr(self, "attributes", None)
        inputs = event_inputs(rows, ["Attributes"])
        # one reference swap each, no await between them: a reply never mixes two reloads
        self.attributes, self.inputs = new, inputs
        return old

    def counts(self, new: AttributeEngine, rows: TariffPlanRows) -> dict[str, int]:
        return engine_counts(new)
