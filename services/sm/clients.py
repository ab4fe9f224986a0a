"""SM's ``Backends`` over gRPC: each call goes to the owning service through ``protos/``."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cgrates.v1 import (
    attributes_pb2,
    attributes_pb2_grpc,
    cdre_pb2,
    cdre_pb2_grpc,
    chargers_pb2,
    chargers_pb2_grpc,
    common_pb2,
    rals_pb2,
    rals_pb2_grpc,
    resources_pb2,
    resources_pb2_grpc,
    stats_pb2,
    stats_pb2_grpc,
    suppliers_pb2,
    suppliers_pb2_grpc,
    thresholds_pb2,
    thresholds_pb2_grpc,
)
from cgrpy.calldesc import descriptor_from_event, event_usage
from cgrpy.cgrid import cgrid_of
from cgrpy.config import Settings
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.runtime.balance import partition_owners, rals_owners
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.owner_routes import TenantRoutes
from cgrpy.units import money_str
from cgrpy.wire import event_from_pb, event_to_pb
from services.sm.cdrsend import CdrSender
from services.sm.sessions.backends import BackendError
from services.sm.sessions.types import (
    AttributesReply,
    CdrResult,
    ChargerRun,
    DebitResult,
    ProfileSet,
    RefundResult,
    SortedSupplier,
    SuppliersReply,
)
from services.sm.spool import CdrSpool

if TYPE_CHECKING:
    from services.sm.sqlspool import SqlCdrSpool

# Errors that are a business answer (refuse the call), not a failed backend.
_BUSINESS_WORDS = {
    "NOT_FOUND", "RATING_PLAN_NOT_FOUND", "ACCOUNT_NOT_FOUND", "UNAUTHORIZED_DESTINATION",
    "INSUFFICIENT_CREDIT", "ACCOUNT_DISABLED", "MAX_USAGE_EXCEEDED", "MANDATORY_IE_MISSING",
    "INVALID_ARGUMENT",
}


def _business(exc: CGRError) -> Exception:
    return BackendError(exc.message) if exc.word in _BUSINESS_WORDS else exc


def _cdr_request(event: CGREvent, flags: dict[str, bool]) -> cdre_pb2.ProcessCDRRequest:
    words = [f"*{k}:{str(flags[k]).lower()}" for k in ("chargers", "attributes", "rals")]
    req = cdre_pb2.ProcessCDRRequest(event=event_to_pb(event), flags=words)
    if event.get("CostSource") == "*sessions" and event.get("Cost") is not None:
        # A *prepaid run was charged by the session: its cost travels with the CDR (stored in
        # the CDR's transaction), so the CDR takes it instead of being rated and charged again.
        req.session_cost.CopyFrom(cdre_pb2.SessionCost(
            cgrid=str(event.get("CGRID") or cgrid_of(event)),
            run_id=str(event.get("RunID") or "*default"),
            origin_host=str(event.get("OriginHost") or ""),
            origin_id=str(event.get("OriginID") or ""),
            cost_source="*sessions",
            usage_ns=event_usage(event),
            cost=money_str(Decimal(event.get("Cost"))),
            cost_details_json=details if isinstance(details := event.get("CostDetails"), str) else "",
        ))
    return req


_PROFILE_SETS: dict[str, ProfileSet] = {}  # version -> its ProfileSet, built once


def _profile_set(resp: Any) -> ProfileSet | None:
    """A version's fields are fixed when the server builds it (at reload), so one object per
    version serves every reply (reading the repeated field per reply costs more than the call)."""
    version = resp.profile_version
    if not version:
        return None  # a server that does not say which profiles answered: never reused
    ps = _PROFILE_SETS.get(version)
    if ps is None:
        if len(_PROFILE_SETS) > 256:  # reloads are rare; never let it grow
            _PROFILE_SETS.clear()
        ps = _PROFILE_SETS[version] = ProfileSet(version, frozenset(resp.input_fields), resp.reusable)
    return ps


class GrpcBackends:
    def __init__(self, settings: Settings, spool: CdrSpool | SqlCdrSpool | None = None) -> None:
        self.settings = settings
        self.spool = spool
        # CDRs straight to cdre, the spool as the fallback (services/sm/cdrsend.py); None: spool only
        self.sender: CdrSender | None = None
        direct_s = min(settings.sm_cdr_direct_timeout, settings.sm_reply_timeout // 2) / 1e9
        if spool is not None and direct_s > 0:
            self.sender = CdrSender(self.deliver_cdrs, spool, timeout_s=direct_s)
        self.attributes = ServiceClient(settings, "attributes", attributes_pb2_grpc.AttributesServiceStub)
        self.chargers = ServiceClient(settings, "chargers", chargers_pb2_grpc.ChargersServiceStub)
        # a RALs call goes straight to its account's owner among RALs replicas (no forwarding hop)
        self.rals = ServiceClient(settings, "rals", rals_pb2_grpc.RalsServiceStub, owners=rals_owners)
        self.cdrs = ServiceClient(settings, "cdre", cdre_pb2_grpc.CdrServiceStub)
        self.suppliers = ServiceClient(settings, "suppliers", suppliers_pb2_grpc.SuppliersServiceStub)
        # an event goes to the replica owning its tenant's queues/thresholds (no forwarding
        # hop when one owns them all: cgrpy.runtime.owner_routes)
        self.stats = ServiceClient(settings, "stats", stats_pb2_grpc.StatsServiceStub,
                                   owners=partition_owners)
        self.thresholds = ServiceClient(settings, "thresholds", thresholds_pb2_grpc.ThresholdsServiceStub,
                                        owners=partition_owners)
        self.stat_routes = TenantRoutes(self.stats_queue_ids)
        self.threshold_routes = TenantRoutes(self.thresholds_ids)
        self.resources = ServiceClient(settings, "resources", resources_pb2_grpc.ResourcesServiceStub)

    async def close(self) -> None:
        await self.stat_routes.close()
        await self.threshold_routes.close()
        for c in (self.attributes, self.chargers, self.rals, self.cdrs, self.suppliers, self.stats, self.thresholds,
                  self.resources):
            await c.close()

    async def attributes_process_event(self, event: CGREvent, context: str) -> AttributesReply:
        req = attributes_pb2.AttributesProcessEventRequest(event=event_to_pb(event), context=context)
        try:
            resp = await self.attributes.call("ProcessEvent", req, idempotent=True)
        except CGRError as exc:
            raise _business(exc) from None
        return AttributesReply(
            event=event_from_pb(resp.event),
            matched_profiles=list(resp.matched_profiles),
            altered_fields=[f.removeprefix("*req.") for f in resp.altered_fields],
            profile_set=_profile_set(resp),
        )

    async def chargers_process_event(self, event: CGREvent) -> list[ChargerRun]:
        req = chargers_pb2.ChargersProcessEventRequest(event=event_to_pb(event))
        try:
            resp = await self.chargers.call("ProcessEvent", req, idempotent=True)
        except CGRError as exc:
            if exc.word == "NOT_FOUND":
                return []
            raise _business(exc) from None
        ps = _profile_set(resp)
        return [ChargerRun(run_id=r.run_id, event=event_from_pb(r.event),
                           altered_fields=tuple(r.altered_fields), profile_set=ps) for r in resp.runs]

    async def rals_get_max_usage(self, run_event: CGREvent, usage_ns: int) -> int:
        try:
            cd = descriptor_from_event(run_event, usage_ns=usage_ns)
            resp = await self.rals.call("GetMaxUsage", cd, idempotent=True, route=f"{cd.tenant}:{cd.account}")
        except CGRError as exc:
            raise _business(exc) from None
        return resp.max_usage_ns

    async def rals_debit(
        self,
        run_event: CGREvent,
        usage_ns: int,
        request_id: str,
        *,
        offset_ns: int = 0,
        loop_index: int = 0,
        go_negative: bool = False,
        max_cost_so_far: Decimal = Decimal(0),
    ) -> DebitResult:
        try:
            cd = descriptor_from_event(run_event, usage_ns=usage_ns, offset_ns=offset_ns, loop_index=loop_index)
            cd.max_cost_so_far = money_str(max_cost_so_far)  # MaxCost *disconnect across pieces
            cd.cgrid = cd.cgrid or cgrid_of(run_event)  # the CGRID of the EventCost RALs keeps
            req = rals_pb2.DebitRequest(
                call=cd,
                request_id=request_id,
                request_type=str(run_event.get("RequestType") or "*prepaid"),
                allow_partial=not go_negative,
                # RALs keeps each debit's EventCost in its journal (not answered: the reply
                # stays small); the Refund at the end answers them merged, once
                keep_event_cost=True,
            )
            # idempotent: RALs applies a request_id once, so a retry after a timeout is safe
            resp = await self.rals.call("Debit", req, idempotent=True, route=f"{cd.tenant}:{cd.account}")
        except CGRError as exc:
            raise _business(exc) from None
        return DebitResult(usage_ns=resp.usage_ns, cost=Decimal(resp.cost),
                           max_rate=Decimal(resp.max_rate or 0), max_rate_unit_ns=resp.max_rate_unit_ns)

    async def rals_refund(
        self, run_event: CGREvent, debit_ids: list[str], keep_usage_ns: int, request_id: str
    ) -> RefundResult:
        req = rals_pb2.RefundRequest(
            debit_request_ids=debit_ids, keep_usage_ns=keep_usage_ns, refund_id=request_id, round_kept=True,
            want_event_cost=True,
        )
        try:
            cd = descriptor_from_event(run_event, usage_ns=0)
            resp = await self.rals.call("Refund", req, idempotent=True, route=f"{cd.tenant}:{cd.account}")
        except CGRError as exc:
            raise _business(exc) from None
        return RefundResult(refunded_usage_ns=resp.refunded_usage_ns, refunded_cost=Decimal(resp.refunded_cost or "0"),
                            event_cost_json=resp.event_cost_json)

    async def cdrs_process_cdr(self, event: CGREvent, *, chargers: bool, attributes: bool, rals: bool) -> CdrResult:
        flags = {"chargers": chargers, "attributes": attributes, "rals": rals}
        if self.sender is not None:
            # committed by cdre (or, failing that, by the spool) before OK to OpenSIPS
            await self.sender.put(event, flags)
            return CdrResult(stored=0)
        if self.spool is not None:
            # durable first (group-committed), OK to OpenSIPS after: the forwarder delivers it
            await self.spool.aput(event, flags)
            return CdrResult(stored=0)
        return await self.deliver_cdr(event, flags)

    async def deliver_cdr(self, event: CGREvent, flags: dict[str, bool]) -> CdrResult:
        try:
            # idempotent on (CGRID, RunID) in cdre, so retrying is safe
            resp = await self.cdrs.call("ProcessCDR", _cdr_request(event, flags), idempotent=True)
        except CGRError as exc:
            raise _business(exc) from None
        return CdrResult(stored=len(resp.cdrs), duplicate=resp.duplicate)

    async def deliver_cdrs(self, items: list[tuple[CGREvent, dict[str, bool]]], timeout_s: float | None = None,
                           ) -> list[Exception | None]:
        """Many CDRs in one ProcessCDRs; per CDR None (stored: cdre answers after its commit) or
        why not. The spool's delivery retries; the direct hand-off (``timeout_s``) tries once."""
        req = cdre_pb2.ProcessCDRsRequest(cdrs=[_cdr_request(ev, fl) for ev, fl in items])
        # idempotent per (CGRID, RunID) in cdre, so retrying the whole batch is safe
        resp = await self.cdrs.call("ProcessCDRs", req, idempotent=True, timeout=timeout_s,
                                    attempts=1 if timeout_s else 3)
        return [None if r.code == 0 else _business(CGRError.from_message(r.message)) for r in resp.results]

    async def suppliers_get_suppliers(self, event: CGREvent) -> SuppliersReply:
        req = suppliers_pb2.GetSuppliersRequest(event=event_to_pb(event))
        try:
            resp = await self.suppliers.call("GetSuppliers", req, idempotent=True)
        except CGRError as exc:
            raise _business(exc) from None
        return SuppliersReply(
            profile_id=resp.profile_id,
            suppliers=[SortedSupplier(s.supplier_id, s.supplier_parameters) for s in resp.suppliers],
        )

    async def stats_process_event(self, event: CGREvent) -> list[str]:
        req = stats_pb2.StatsProcessEventRequest(event=event_to_pb(event))
        try:
            resp = await self.stats.call("ProcessEvent", req, route=self.stat_routes.route(event.tenant))
        except CGRError as exc:
            # NOT_FOUND: no queue matched; PARTIALLY_EXECUTED: a queue's metric could not read
            # a field this event lacks (e.g. *tcc needs Cost, absent at authorize) - both are
            # answers, not a failed backend
            if exc.word in ("NOT_FOUND", "PARTIALLY_EXECUTED"):
                return []
            raise _business(exc) from None
        return list(resp.ids)

    async def thresholds_process_event(self, event: CGREvent) -> list[str]:
        req = thresholds_pb2.ThresholdsProcessEventRequest(event=event_to_pb(event))
        try:
            resp = await self.thresholds.call("ProcessEvent", req,
                                              route=self.threshold_routes.route(event.tenant))
        except CGRError as exc:
            if exc.word in ("NOT_FOUND", "PARTIALLY_EXECUTED"):
                return []
            raise _business(exc) from None
        return list(resp.ids)

    async def stats_queue_ids(self, tenant: str) -> list[str]:
        try:
            resp = await self.stats.call("GetQueueIDs", common_pb2.TenantRequest(tenant=tenant), idempotent=True)
        except CGRError as exc:
            if exc.word == "NOT_FOUND":
                self.stat_routes.know(tenant, [])
                return []
            raise
        self.stat_routes.know(tenant, resp.ids)  # also where its events go (the check asks this)
        return list(resp.ids)

    async def thresholds_ids(self, tenant: str) -> list[str]:
        try:
            resp = await self.thresholds.call("GetThresholdIDs", common_pb2.TenantRequest(tenant=tenant),
                                              idempotent=True)
        except CGRError as exc:
            if exc.word == "NOT_FOUND":
                self.threshold_routes.know(tenant, [])
                return []
            raise
        self.threshold_routes.know(tenant, resp.ids)
        return list(resp.ids)

    # ResourceS: UsageID = the call's OriginID, 1 unit (v0.10 SessionS). An allocation is
    # idempotent per UsageID and a release of a gone usage is no change, so retries are safe.

    async def _resources(self, method: str, event: CGREvent, usage_id: str) -> str | None:
        req = resources_pb2.ResourceUsageRequest(event=event_to_pb(event), usage_id=usage_id, units=1.0)
        try:
            resp = await self.resources.call(method, req, idempotent=True)
        except CGRError as exc:
            if exc.word == "NOT_FOUND":
                return None  # no resource matches: no limit applies to this call
            if exc.word in ("RESOURCE_UNAUTHORIZED", "RESOURCE_UNAVAILABLE"):
                raise BackendError(exc.message) from None
            raise _business(exc) from None
        return getattr(resp, "message", "")

    async def resources_authorize(self, event: CGREvent, usage_id: str) -> str | None:
        return await self._resources("AuthorizeResources", event, usage_id)

    async def resources_allocate(self, event: CGREvent, usage_id: str) -> str | None:
        return await self._resources("AllocateResources", event, usage_id)

    async def resources_release(self, event: CGREvent, usage_id: str) -> None:
        await self._resources("ReleaseResources", event, usage_id)

    async def resources_release_usage(self, tenant: str, usage_id: str) -> list[str]:
        req = resources_pb2.ReleaseUsageRequest(tenant=tenant, usage_id=usage_id)
        try:
            resp = await self.resources.call("ReleaseUsage", req, idempotent=True)
        except CGRError as exc:
            raise _business(exc) from None
        return list(resp.resource_ids)
