"""gRPC face of ChargerS: thin handlers around :class:`ChargerEngine`, AttributeS over gRPC.

The compiled engine lives in one attribute; ``ReloadCache`` builds a new engine off the event
loop and then swaps that reference, so in-flight requests finish on the engine they started with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from cgrates.v1 import chargers_pb2, chargers_pb2_grpc, common_pb2
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent, dumps_exact
from cgrpy.filters.deps import NOT_REUSABLE, EventInputs, event_inputs
from cgrpy.runtime.server import BaseService
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.wire import event_from_pb, event_to_pb
from services.chargers.clients import AttributeSClient, RemoteAttrReply
from services.chargers.logic import ChargerEngine, ChargerRun, ProfileDataError


def build_engine(rows: TariffPlanRows, settings: Any) -> ChargerEngine:
    """The engine for one tariff plan, honouring the index settings; bad rows -> SERVER_ERROR."""
    try:
        return ChargerEngine.from_rows(
            rows,
            string_fields=settings.chargers_string_indexed_fields,
            prefix_fields=settings.chargers_prefix_indexed_fields,  # null = every field (CGRateS)
        )
    except (ProfileDataError, ValueError) as exc:
        raise CGRError("SERVER_ERROR", f"chargers tariff plan: {exc}") from None


def run_to_pb(run: ChargerRun, time_unix_ns: int) -> chargers_pb2.ChargerRun:
    ev = event_to_pb(run.event)
    # Neither ChargerS nor AttributeS changes Time: echo the request's exact nanoseconds
    # (the Python datetime only holds microseconds).
    ev.time_unix_ns = time_unix_ns
    return chargers_pb2.ChargerRun(
        charger_profile=run.charger_profile,
        run_id=run.run_id,
        attribute_profiles=run.attribute_profiles or [],
        altered_fields=run.altered_fields,
        event=ev,
    )


def combined_version(
    version: str, inputs: EventInputs, used: Sequence[RemoteAttrReply | None]
) -> tuple[str, EventInputs]:
    """ChargerS's own profile set plus the AttributeS replies its runs used. An AttributeS error
    (NOT_FOUND carries no version) or replies from two AttributeS versions: not reusable."""
    versions = {r.profile_version for r in used if r is not None}
    if any(r is None for r in used) or len(versions) > 1:
        return f"{version}|?", NOT_REUSABLE
    for r in used:
        assert r is not None
        inputs = inputs | EventInputs(frozenset(r.input_fields), r.reusable)
    return f"{version}|{next(iter(versions), '-')}", inputs


class ChargersServiceServicer(chargers_pb2_grpc.ChargersServiceServicer):
    def __init__(self, owner: ChargersServer) -> None:
        self.owner = owner

    def _event(self, request: chargers_pb2.ChargersProcessEventRequest) -> CGREvent:
        if not request.HasField("event"):
            raise CGRError("MANDATORY_IE_MISSING", "[Event]")
        return event_from_pb(request.event, self.owner.settings.default_tenant)

    async def ProcessEvent(
        self, request: chargers_pb2.ChargersProcessEventRequest, context: grpc.aio.ServicerContext
    ) -> chargers_pb2.ChargersProcessEventResponse:
        # the engine and its version as one pair: a reload during the AttributeS calls below
        # must not label this answer with the new version
        owner = self.owner
        engine, version, inputs = owner.chargers, owner.profile_version, owner.inputs
        used: list[RemoteAttrReply | None] = []  # every AttributeS answer (None: an error)

        async def attributes(event: CGREvent, **kw: Any) -> RemoteAttrReply:
            try:
                reply = await owner.attributes(event, **kw)
            except Exception:
                used.append(None)
                raise
            used.append(reply)
            return reply

        runs = await engine.process_event_async(self._event(request), attributes)
        version, inputs = combined_version(version, inputs, used)
        return chargers_pb2.ChargersProcessEventResponse(
            runs=[run_to_pb(r, request.event.time_unix_ns) for r in runs],
            profile_version=version, input_fields=sorted(inputs.fields), reusable=inputs.reusable)

    async def GetChargersForEvent(
        self, request: chargers_pb2.ChargersProcessEventRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.JsonObject:
        profiles = self.owner.chargers.get_chargers_for_event(self._event(request))
        return common_pb2.JsonObject(json=dumps_exact([p.to_dict() for p in profiles]))

    async def GetChargerProfile(
        self, request: common_pb2.TenantID, context: grpc.aio.ServicerContext
    ) -> common_pb2.JsonObject:
        if not request.id:
            raise CGRError("MANDATORY_IE_MISSING", "[ID]")
        tenant = request.tenant or self.owner.settings.default_tenant
        entry = self.owner.chargers.index.get(tenant, request.id)
        if entry is None:
            raise CGRError("NOT_FOUND")
        return common_pb2.JsonObject(json=dumps_exact(entry.payload.to_dict()))

    async def GetChargerProfileIDs(
        self, request: common_pb2.TenantRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.IDsResponse:
        tenant = request.tenant or self.owner.settings.default_tenant
        ids = sorted(p.id for p in self.owner.chargers.profiles() if p.tenant == tenant)
        if not ids:
            raise CGRError("NOT_FOUND")  # as CGRateS: a tenant without profiles is NOT_FOUND
        return common_pb2.IDsResponse(ids=ids)

    async def ReloadCache(
        self, request: common_pb2.ReloadCacheRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.ReloadCacheResponse:
        return await self.owner.reload_cache(request)


class ChargersServer(BaseService):
    name = "chargers"
    cache_files = ("Chargers", "Filters")

    chargers: ChargerEngine
    attributes: AttributeSClient
    inputs: EventInputs

    def register(self, server: grpc.aio.Server) -> list[str]:
        chargers_pb2_grpc.add_ChargersServiceServicer_to_server(ChargersServiceServicer(self), server)
        return [chargers_pb2.DESCRIPTOR.services_by_name["ChargersService"].full_name]

    async def load(self) -> None:
        # The channel connects lazily: ChargerS serves even while AttributeS is still starting.
        self.attributes = AttributeSClient(self.settings)
        await self.reload()

    async def close(self) -> None:
        client = getattr(self, "attributes", None)
        if client is not None:
            await client.close()
        await super().close()

    def build(self, rows: TariffPlanRows) -> ChargerEngine:
        return build_engine(rows, self.settings)

    def swap(self, new: ChargerEngine, rows: TariffPlanRows) -> ChargerEngine | None:
        old = getattr(self, "chargers", None)
        # the engine reads Context itself (the runs' AttributeS context)
        inputs = event_inputs(rows, ["Chargers"], extra=["Context"])
        self.chargers, self.inputs = new, inputs
        return old

    def counts(self, new: ChargerEngine, rows: TariffPlanRows) -> dict[str, int]:
        return {"Chargers": len(new.profiles()), "Filters": len(new.filters.stored())}
