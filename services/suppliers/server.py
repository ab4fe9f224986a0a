"""gRPC face of SupplierS: thin handlers around :class:`services.suppliers.engine.SupplierEngine`.

The engine is synchronous and asks for sorting data while it sorts; it runs in a worker thread
and its callables wait for gRPC calls on the service loop (:class:`EngineRunner`):

* ``cost_of`` (``*lc``/``*hc`` and any supplier with RatingPlanIDs): RALs
  ``GetCost`` with the event's descriptor (Subject = Account as v0.10 does, start = SetupTime,
  Usage defaulted to 1m by the engine) and ``rating_plan_id`` set to each of the supplier's
  RatingPlanIDs in order; the first plan that yields a cost wins (CGRateS
  GetCostOnRatingPlans), priced at its CallCost.Cost (DestinationRate-rounded). A plan that cannot rate the call (RATING_PLAN_NOT_FOUND,
  UNAUTHORIZED_DESTINATION) is skipped; none left = no cost data (supplier dropped). The reply's
  EventCost must name that plan, so a RALs that ignored ``rating_plan_id`` is an error, not a
  silently wrong price.
* ``metrics_of``: StatS ``GetQueueFloatMetrics`` per StatID.
* ``event_cost_of`` (``MaxCost *event_cost``): RALs ``GetCost`` of the event itself.

SupplierAccountIDs do not influence the cost (v0.10 behaviour).
"""

from __future__ import annotations

from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

import grpc

from cgrates.v1 import (
    common_pb2,
    rals_pb2,
    suppliers_pb2,
    suppliers_pb2_grpc,
)
from cgrpy.calldesc import descriptor_from_event, event_usage
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.filters import FilterS
from cgrpy.filters.activation import activation_json
from cgrpy.filters.selection import candidate_index
from cgrpy.runtime.engine_runner import EngineRunner
from cgrpy.runtime.server import BaseService
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.units import UnitError, parse_time, to_unix_nano
from cgrpy.wire import event_from_pb
from services.suppliers.clients import RalsClient, StatsClient
from services.suppliers.engine import (
    SortedSuppliers,
    Supplier,
    SupplierEngine,
    SupplierProfile,
    sorted_suppliers_to_dict,
)

# RALs answers for a plan that cannot rate this call: try the supplier's next plan.
_PLAN_CANNOT_RATE = {"RATING_PLAN_NOT_FOUND", "UNAUTHORIZED_DESTINATION", "NOT_FOUND"}


def profile_json(p: SupplierProfile) -> dict[str, Any]:
    """CGRateS v0.10 ``SupplierProfile`` JSON."""
    return {
        "Tenant": p.tenant,
        "ID": p.id,
        "FilterIDs": list(p.filter_ids),
        "ActivationInterval": activation_json(p.activation),
        "Sorting": p.sorting,
        "SortingParameters": list(p.sorting_parameters),
        "Suppliers": [
            {"ID": s.id, "FilterIDs": list(s.filter_ids), "AccountIDs": list(s.account_ids),
             "RatingPlanIDs": list(s.rating_plan_ids), "ResourceIDs": list(s.resource_ids),
             "StatIDs": list(s.stat_ids), "Weight": s.weight, "Blocker": s.blocker,
             "SupplierParameters": s.parameters}
            for s in p.suppliers
        ],
        "Weight": p.weight,
    }


def value_text(v: Any) -> str:
    """A sorting-data value as exact text (``20``, ``0.3``, ``-1``, ``RP_1002``)."""
    if isinstance(v, Decimal):
        return dumps_exact(v)
    return str(v)


def reply_pb(result: SortedSuppliers) -> suppliers_pb2.GetSuppliersResponse:
    return suppliers_pb2.GetSuppliersResponse(
        profile_id=result.profile_id,
        sorting=result.sorting,
        suppliers=[
            suppliers_pb2.SortedSupplier(
                supplier_id=s.supplier_id,
                supplier_parameters=s.supplier_parameters,
                sorting_data={k: value_text(v) for k, v in s.sorting_data.items()},
            )
            for s in result.sorted_suppliers
        ],
        digest=result.digest(),
        json=dumps_exact(sorted_suppliers_to_dict(result)),
    )


def call_cost_amount(reply: rals_pb2.CostResponse) -> Decimal:
    """The supplier's price as v0.10's Responder.GetCostOnRatingPlans gives it: CallCost.Cost,
    i.e. rounded the way the plan's DestinationRate says (``*up`` to 4 decimals in the tutorial:
    85 s of RT_20CNT is 0.6418, where the EventCost amount is 0.64175)."""
    if reply.call_cost_json:
        cost = loads_exact(reply.call_cost_json).get("Cost")
        if cost is not None:
            return Decimal(cost)
    return Decimal(reply.cost)


def plans_in_event_cost(cost_details_json: str) -> set[str]:
    if not cost_details_json:
        return set()
    ec = loads_exact(cost_details_json)
    filters = (ec.get("RatingFilters") or {}) if isinstance(ec, dict) else {}
    return {f.get("RatingPlanID", "") for f in filters.values() if isinstance(f, dict)} - {""}


class SuppliersServiceServicer(suppliers_pb2_grpc.SuppliersServiceServicer):
    def __init__(self, owner: SuppliersServer) -> None:
        self.owner = owner

    async def GetSuppliers(self, request: suppliers_pb2.GetSuppliersRequest, context: Any) -> suppliers_pb2.GetSuppliersResponse:
        o = self.owner
        ev = event_from_pb(request.event, o.settings.default_tenant)
        # inline: sorting by weight needs no remote data; a sorting that does reruns in a worker
        result: SortedSuppliers = await o.runner.run_inline(
            o.suppliers.get_suppliers,
            ev,
            max_cost=request.max_cost or None,
            limit=request.limit or None,
            offset=request.offset or None,
            ignore_errors=request.ignore_errors,
        )
        return reply_pb(result)

    async def GetSupplierProfilesForEvent(self, request: suppliers_pb2.GetSuppliersRequest, context: Any) -> common_pb2.JsonObject:
        o = self.owner
        ev = event_from_pb(request.event, o.settings.default_tenant)
        found = await o.runner.run(o.suppliers.profiles_for_event, ev)
        return common_pb2.JsonObject(json=dumps_exact([profile_json(p) for p in found]))

    async def GetSupplierProfile(self, request: common_pb2.TenantID, context: Any) -> common_pb2.JsonObject:
        missing = " ".join(n for n, v in (("Tenant", request.tenant), ("ID", request.id)) if not v)
        if missing:
            raise CGRError("MANDATORY_IE_MISSING", f"[{missing}]")
        p = self.owner.suppliers.profiles.get((request.tenant, request.id))
        if p is None:
            raise CGRError("NOT_FOUND")
        return common_pb2.JsonObject(json=dumps_exact(profile_json(p)))

    async def GetSupplierProfileIDs(self, request: common_pb2.TenantRequest, context: Any) -> common_pb2.IDsResponse:
        o = self.owner
        tenant = request.tenant or o.settings.default_tenant
        ids = sorted(pid for (t, pid) in o.suppliers.profiles if t == tenant)
        if not ids:
            raise CGRError("NOT_FOUND")
        return common_pb2.IDsResponse(ids=ids)

    async def ReloadCache(self, request: common_pb2.ReloadCacheRequest, context: Any) -> common_pb2.ReloadCacheResponse:
        return await self.owner.reload_cache(request)


class SuppliersServer(BaseService):
    name = "suppliers"
    cache_files = ("Suppliers", "Filters")
    suppliers: SupplierEngine

    def register(self, server: grpc.aio.Server) -> list[str]:
        suppliers_pb2_grpc.add_SuppliersServiceServicer_to_server(SuppliersServiceServicer(self), server)
        return [suppliers_pb2.DESCRIPTOR.services_by_name["SuppliersService"].full_name]

    async def load(self) -> None:
        self.runner = EngineRunner(self.name)
        self.rals = RalsClient(self.settings)
        self.stats = StatsClient(self.settings)
        await self.reload()

    async def close(self) -> None:
        for client in (getattr(self, "rals", None), getattr(self, "stats", None)):
            if client is not None:
                await client.close()
        if getattr(self, "runner", None) is not None:
            self.runner.close()
        await super().close()

    async def run_build(self, build: Any, rows: TariffPlanRows) -> SupplierEngine:
        return await self.runner.run(build, rows)

    def build(self, rows: TariffPlanRows) -> SupplierEngine:
        filters = FilterS.from_tariffplan(rows)
        new = SupplierEngine.from_rows(
            rows,
            filters.passes,
            self.cost_of,
            self.metrics_of,
            event_cost_of=self.event_cost_of,
        )
        new.candidate_ids = candidate_index(filters, new.profiles.values(), self.settings, "suppliers")
        return new

    def swap(self, new: SupplierEngine, rows: TariffPlanRows) -> SupplierEngine | None:
        old: SupplierEngine | None = getattr(self, "suppliers", None)
        self.suppliers = new
        return old

    def counts(self, new: SupplierEngine, rows: TariffPlanRows) -> dict[str, int]:
        return {"Suppliers": len(new.profiles), "Filters": len(rows.get("Filters", []))}

    # --- the engine's data sources (called from its worker thread) -----------------------------

    def _remote(self, call: Coroutine[Any, Any, Any], timeout: float) -> Any:
        try:
            return self.runner.call_remote(call, timeout * 4)
        except CGRError as exc:
            if exc.word == "SERVER_ERROR":  # the engine answers SERVER_ERROR:<text> itself
                raise RuntimeError(exc.detail or exc.word) from None
            raise

    def _descriptor(self, ev: CGREvent) -> rals_pb2.CallDescriptor:
        return descriptor_from_event(ev, usage_ns=event_usage(ev),
                                     default_tenant=self.settings.default_tenant,
                                     default_category=self.settings.default_category)

    def cost_of(self, s: Supplier, ev: CGREvent) -> tuple[Decimal, str] | None:
        if not s.rating_plan_ids:
            return None  # AccountIDs alone give no cost in v0.10
        cd = self._descriptor(ev)
        account = cd.account
        cd.subject = account  # v0.10 rates suppliers with Subject = Account
        try:
            setup = parse_time(ev.event["SetupTime"])
        except UnitError as exc:
            raise CGRError("INVALID_ARGUMENT", f"SetupTime: {exc}") from None
        if setup is not None:
            cd.time_start_unix_ns = to_unix_nano(setup)
        for plan in s.rating_plan_ids:
            cd.rating_plan_id = plan
            try:
                reply = self._remote(self.rals.get_cost(cd), self.rals.timeout)
            except CGRError as exc:
                if exc.word in _PLAN_CANNOT_RATE:
                    continue
                raise
            used = plans_in_event_cost(reply.cost_details_json)
            if used and used != {plan}:
                raise RuntimeError(f"RALs GetCost ignored rating_plan_id {plan} "
                                   f"(rated with {', '.join(sorted(used))})")
            return call_cost_amount(reply), plan
        return None

    def metrics_of(self, tenant: str, stat_ids: list[str]) -> dict[str, Decimal]:
        metrics = self._remote(self.stats.float_metrics(tenant, stat_ids[0]), self.stats.timeout)
        return {k: Decimal(v) for k, v in metrics.items()}

    def event_cost_of(self, ev: CGREvent) -> Decimal:
        return Decimal(self._remote(self.rals.get_cost(self._descriptor(ev)), self.rals.timeout).cost)
