""":class:`~services.cdre.backends.CdrBackends` over gRPC: AttributeS, ChargerS, RALs, StatS and
ThresholdS reached with :class:`cgrpy.runtime.client.ServiceClient`.

Every remote error comes back as :class:`BackendError` carrying the CGRateS word, so the
pipeline decides what is fatal (the pipeline, not this adapter, knows that NOT_FOUND from
AttributeS/ChargerS means "nothing matched"). StatS/ThresholdS NOT_FOUND is swallowed here too:
a CDR matching no queue or threshold is the normal case, not a failure.

Retries: RALs calls are marked idempotent (GetCost prices only; Debit and Refund carry their
own idempotency keys, so a retried call never charges twice). AttributeS/ChargerS only compute,
so they are retried too. StatS/ThresholdS ``ProcessEvent`` change state (queue entries, hit
counters) and have no idempotency key, so they are tried once; their batch ``ProcessEvents``
(the outbox's) carry event ids the receivers deduplicate, so they are retried.

Routing: a RALs call goes to its account's owner; a StatS/ThresholdS event to the replica that
owns its tenant's queues/thresholds, a batch split by tenant (``cgrpy.runtime.owner_routes``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from cgrates.v1 import (
    attributes_pb2,
    attributes_pb2_grpc,
    chargers_pb2,
    chargers_pb2_grpc,
    common_pb2,
    rals_pb2,
    rals_pb2_grpc,
    stats_pb2,
    stats_pb2_grpc,
    thresholds_pb2,
    thresholds_pb2_grpc,
)
from cgrpy.config import Settings
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent, loads_exact
from cgrpy.runtime.balance import partition_owners
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.owner_routes import TenantRoutes, batch_route, per_tenant
from cgrpy.units import UnitError, parse_decimal
from cgrpy.wire import event_from_pb, event_to_pb
from services.cdre.backends import BackendError, CallDescriptor, RatingResult

T = TypeVar("T")

_STUBS: dict[str, type] = {
    "attributes": attributes_pb2_grpc.AttributesServiceStub,
    "chargers": chargers_pb2_grpc.ChargersServiceStub,
    "rals": rals_pb2_grpc.RalsServiceStub,
    "stats": stats_pb2_grpc.StatsServiceStub,
    "thresholds": thresholds_pb2_grpc.ThresholdsServiceStub,
}


def cd_to_pb(cd: CallDescriptor) -> rals_pb2.CallDescriptor:
    return rals_pb2.CallDescriptor(
        tenant=cd.tenant,
        category=cd.category,
        subject=cd.subject,
        account=cd.account,
        destination=cd.destination,
        tor=cd.tor,
        time_start_unix_ns=cd.time_start_unix_ns,
        usage_ns=cd.usage_ns,
        duration_index_ns=cd.duration_index_ns,
        loop_index=cd.loop_index,
        cgrid=cd.cgrid,
        run_id=cd.run_id,
    )


def _decimal(text: str, what: str) -> Decimal:
    try:
        return parse_decimal(text)
    except UnitError as exc:
        raise BackendError("SERVER_ERROR", f"rals returned a bad {what} {text!r}: {exc}") from None


def rating_from_pb(resp: rals_pb2.CostResponse) -> RatingResult:
    details = loads_exact(resp.cost_details_json) if resp.cost_details_json else None
    return RatingResult(
        cost=_decimal(resp.cost, "cost"),
        usage_ns=resp.usage_ns,
        cost_details=details,
        duplicate=resp.duplicate,
    )


class GrpcBackends:
    """The CDR pipeline's backends as gRPC clients (created lazily, closed by :meth:`close`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, ServiceClient] = {}
        self.stat_routes = TenantRoutes(lambda t: self._tenant_ids("stats", "GetQueueIDs", t))
        self.threshold_routes = TenantRoutes(
            lambda t: self._tenant_ids("thresholds", "GetThresholdIDs", t))
        # the protobufs of the last batch of events sent (see _event_pbs)
        self._last_pbs: dict[int, tuple[CGREvent, common_pb2.Event]] = {}

    def _client(self, service: str) -> ServiceClient:
        client = self._clients.get(service)
        if client is None:
            # RALs, StatS, ThresholdS: a call goes straight to the owner of its keys
            partitioned = service in ("rals", "stats", "thresholds")
            client = ServiceClient(self.settings, service, _STUBS[service],
                                   owners=partition_owners if partitioned else None)
            self._clients[service] = client
        return client

    async def _tenant_ids(self, service: str, method: str, tenant: str) -> list[str]:
        """A tenant's queue/threshold IDs ([] when it has none): where to route its events."""
        try:
            reply = await self._client(service).call(method, common_pb2.TenantRequest(tenant=tenant),
                                                     idempotent=True)
        except CGRError as exc:
            if exc.word == "NOT_FOUND":
                return []
            raise
        return list(reply.ids)

    async def _call(self, service: str, method: str, req: Any, *, idempotent: bool,
                    route: str | Sequence[str] | None = None) -> Any:
        try:
            return await self._client(service).call(method, req, idempotent=idempotent, route=route)
        except CGRError as exc:
            raise BackendError(exc.word, exc.detail, transient=exc.transient) from None

    async def close(self) -> None:
        await self.stat_routes.close()
        await self.threshold_routes.close()
        clients, self._clients = self._clients, {}
        for c in clients.values():
            await c.close()

    # --- CdrBackends ------------------------------------------------------------------------

    async def attributes_process_event(self, event: CGREvent, context: str) -> CGREvent:
        req = attributes_pb2.AttributesProcessEventRequest(
            event=event_to_pb(event), context=context
        )
        resp = await self._call("attributes", "ProcessEvent", req, idempotent=True)
        if not resp.HasField("event"):
            return event
        return _keep_identity(event_from_pb(resp.event, event.tenant), event)

    async def chargers_process_event(self, event: CGREvent) -> list[CGREvent]:
        req = chargers_pb2.ChargersProcessEventRequest(event=event_to_pb(event))
        resp = await self._call("chargers", "ProcessEvent", req, idempotent=True)
        runs = []
        for run in resp.runs:
            ev = (
                _keep_identity(event_from_pb(run.event, event.tenant), event)
                if run.HasField("event")
                else event.copy()
            )
            # The run's RunID is authoritative even if the charger's attributes left none.
            if run.run_id:
                ev.event["RunID"] = run.run_id
            runs.append(ev)
        return runs

    async def rals_get_cost(self, cd: CallDescriptor) -> RatingResult:
        resp = await self._call("rals", "GetCost", cd_to_pb(cd), idempotent=True)
        return rating_from_pb(resp)

    async def rals_debit(
        self, cd: CallDescriptor, request_id: str, request_type: str
    ) -> RatingResult:
        # the CDR keeps the debit's v0.10 EventCost as its CostDetails
        req = rals_pb2.DebitRequest(
            call=cd_to_pb(cd), request_id=request_id, request_type=request_type,
            want_event_cost=True,
        )
        resp = await self._call("rals", "Debit", req, idempotent=True, route=f"{cd.tenant}:{cd.account}")
        return rating_from_pb(resp)

    async def rals_refund(self, request_id: str, refund_id: str, keep_usage_ns: int = 0) -> Decimal:
        req = rals_pb2.RefundRequest(
            debit_request_ids=[request_id], keep_usage_ns=keep_usage_ns, refund_id=refund_id
        )
        resp = await self._call("rals", "Refund", req, idempotent=True)
        return _decimal(resp.refunded_cost or "0", "refunded_cost")

    async def stats_process_event(self, event: CGREvent) -> None:
        req = stats_pb2.StatsProcessEventRequest(event=event_to_pb(event))
        await _ignore_not_found(self._call("stats", "ProcessEvent", req, idempotent=False,
                                           route=self.stat_routes.route(event.tenant)))

    async def thresholds_process_event(self, event: CGREvent) -> None:
        req = thresholds_pb2.ThresholdsProcessEventRequest(event=event_to_pb(event))
        await _ignore_not_found(self._call("thresholds", "ProcessEvent", req, idempotent=False,
                                           route=self.threshold_routes.route(event.tenant)))

    # Batches carry event ids the receivers deduplicate, so a retried batch counts nothing
    # twice: these may be retried. Split by tenant, each part to its tenant's owner.
    async def stats_process_events(self, events: list[CGREvent]) -> None:
        pbs = self._event_pbs(events)

        async def send(part: list[CGREvent]) -> None:
            req = stats_pb2.StatsProcessEventsRequest(
                events=[stats_pb2.StatsProcessEventRequest(event=pbs[id(e)]) for e in part])
            route = batch_route(self.stat_routes, part[0].tenant, [()] * len(part))
            await self._call("stats", "ProcessEvents", req, idempotent=True, route=route)
        await per_tenant(events, _tenant, send)

    async def thresholds_process_events(self, events: list[CGREvent]) -> None:
        pbs = self._event_pbs(events)

        async def send(part: list[CGREvent]) -> None:
            req = thresholds_pb2.ThresholdsProcessEventsRequest(
                events=[thresholds_pb2.ThresholdsProcessEventRequest(event=pbs[id(e)])
                        for e in part])
            route = batch_route(self.threshold_routes, part[0].tenant, [()] * len(part))
            await self._call("thresholds", "ProcessEvents", req, idempotent=True, route=route)
        await per_tenant(events, _tenant, send)


    def _event_pbs(self, events: list[CGREvent]) -> dict[int, common_pb2.Event]:
        """The protobufs of a batch's events by ``id()``. cdre's outbox sends a batch to
        ThresholdS and then the same event objects to StatS (it decodes them from its rows and
        never changes them): those of the previous batch are reused rather than converted again
        (a CDR event carries its EventCost, the costliest part to convert). Only the last
        batch's are kept, with their events, so an ``id()`` is never another object's."""
        last, cur = self._last_pbs, {}
        for e in events:
            hit = last.get(id(e))
            cur[id(e)] = (e, hit[1] if hit is not None and hit[0] is e else event_to_pb(e))
        self._last_pbs = cur
        return {k: pb for k, (_e, pb) in cur.items()}


def _tenant(event: CGREvent) -> str:
    return event.tenant


def _keep_identity(ev: CGREvent, original: CGREvent) -> CGREvent:
    """A remote answer may leave tenant/id/time empty: keep the caller's."""
    if not ev.id:
        ev.id = original.id
    if ev.time is None:
        ev.time = original.time
    return ev


async def _ignore_not_found(call: Awaitable[T]) -> T | None:
    try:
        return await call
    except BackendError as exc:
        if exc.word == "NOT_FOUND":
            return None
        raise


__all__ = ["GrpcBackends", "cd_to_pb", "rating_from_pb"]
