"""gRPC face of ThresholdS: thin handlers around :class:`services.thresholds.engine.ThresholdEngine`.

Actions run through RALs ``ExecuteActions`` (one call per ActionID, in order) with the tenant,
the event's ``Account`` (empty = account-less), and the triggering event. The engine
is synchronous and calls ``execute_actions`` from its worker thread, which waits for the gRPC
call on the service loop (:class:`EngineRunner`); Async thresholds do the same from a background
worker. The engine's callable does not receive the event, so the event travels in a context
variable set for the request (and copied into the background worker).

Hit state is persisted on every hit (:class:`ThresholdStore`), so restarts and ReloadCache keep
Hits, Snooze and removals at MaxHits.
"""

from __future__ import annotations

import contextvars
from typing import Any

import grpc

from cgrates.v1 import common_pb2, thresholds_pb2, thresholds_pb2_grpc
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent, dumps_exact
from cgrpy.filters import FilterS
from cgrpy.filters.activation import activation_json
from cgrpy.filters.selection import candidate_index
from cgrpy.gotime import go_time
from cgrpy.runtime.batch import RecentIds, ids_or_none, process_each
from cgrpy.runtime.engine_runner import EngineRunner, NeedsWorker, on_loop
from cgrpy.runtime.server import BaseService
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.wire import event_from_pb
from services.thresholds.clients import RalsClient
from services.thresholds.engine import ThresholdEngine, ThresholdProcessResult
from services.thresholds.state import Threshold, ThresholdProfile
from services.thresholds.store import ThresholdStore

_EVENT: contextvars.ContextVar[CGREvent | None] = contextvars.ContextVar("threshold_event", default=None)


def threshold_json(t: Threshold) -> dict[str, Any]:
    """CGRateS v0.10 ``Threshold`` (the hit state)."""
    return {"Tenant": t.tenant, "ID": t.id, "Hits": t.hits, "Snooze": go_time(t.snooze)}


def profile_json(p: ThresholdProfile) -> dict[str, Any]:
    """CGRateS v0.10 ``ThresholdProfile`` (MinSleep in nanoseconds, as Go encodes a Duration)."""
    return {
        "Tenant": p.tenant,
        "ID": p.id,
        "FilterIDs": list(p.filter_ids),
        "ActivationInterval": activation_json(p.activation),
        "MaxHits": p.max_hits,
        "MinHits": p.min_hits,
        "MinSleep": p.min_sleep_ns,
        "Blocker": p.blocker,
        "Weight": p.weight,
        "ActionIDs": list(p.action_ids),
        "Async": p.async_,
    }


class ThresholdsServiceServicer(thresholds_pb2_grpc.ThresholdsServiceServicer):
    def __init__(self, owner: ThresholdsServer) -> None:
        self.owner = owner

    async def ProcessEvent(self, request: thresholds_pb2.ThresholdsProcessEventRequest, context: Any) -> common_pb2.IDsResponse:
        o = self.owner
        ev = event_from_pb(request.event, o.settings.default_tenant)
        result: ThresholdProcessResult = await o.runner.run_inline(
            o.process_or_defer, ev, ids_or_none(request.threshold_ids), lock=o.thresholds._lock)  # noqa: SLF001
        if result.partially_executed:
            for th, err in result.errors.items():
                o.log.warning("thresholds.actions_failed", threshold=th, error=err)
            raise CGRError("PARTIALLY_EXECUTED")
        return common_pb2.IDsResponse(ids=result.threshold_ids)

    async def ProcessEvents(self, request: thresholds_pb2.ThresholdsProcessEventsRequest, context: Any) -> common_pb2.ProcessEventsResponse:
        o = self.owner
        items = [(event_from_pb(r.event, o.settings.default_tenant), ids_or_none(r.threshold_ids))
                 for r in request.events]
        done = await o.runner.run(process_each, o.process, items, o.recent_ids)
        results = []
        for d in done:
            res = common_pb2.EventResult(event_id=d.event_id, error=d.error, duplicate=d.duplicate)
            if d.result is not None:
                res.ids.extend(d.result.threshold_ids)
                if d.result.partially_executed:
                    for th, err in d.result.errors.items():
                        o.log.warning("thresholds.actions_failed", threshold=th, error=err)
                    res.error = "PARTIALLY_EXECUTED"
            results.append(res)
        return common_pb2.ProcessEventsResponse(results=results)

    async def GetThresholdIDs(self, request: common_pb2.TenantRequest, context: Any) -> common_pb2.IDsResponse:
        o = self.owner
        ids = await o.runner.run(o.thresholds.get_threshold_ids, request.tenant or o.settings.default_tenant)
        return common_pb2.IDsResponse(ids=ids)

    async def GetThreshold(self, request: common_pb2.TenantID, context: Any) -> common_pb2.JsonObject:
        o = self.owner
        t = await o.runner.run(o.thresholds.get_threshold, request.tenant, request.id)
        return common_pb2.JsonObject(json=dumps_exact(threshold_json(t)))

    async def GetThresholdProfile(self, request: common_pb2.TenantID, context: Any) -> common_pb2.JsonObject:
        o = self.owner
        p = await o.runner.run(o.thresholds.get_profile, request.tenant, request.id)
        return common_pb2.JsonObject(json=dumps_exact(profile_json(p)))

    async def GetThresholdsForEvent(self, request: thresholds_pb2.ThresholdsProcessEventRequest, context: Any) -> common_pb2.JsonObject:
        o = self.owner
        ev = event_from_pb(request.event, o.settings.default_tenant)
        found = await o.runner.run(o.thresholds.thresholds_for_event, ev, ids_or_none(request.threshold_ids))
        return common_pb2.JsonObject(json=dumps_exact([threshold_json(t) for t in found]))

    async def ResetThreshold(self, request: common_pb2.TenantID, context: Any) -> common_pb2.Empty:
        o = self.owner
        if not request.tenant or not request.id:
            missing = " ".join(n for n, v in (("Tenant", request.tenant), ("ID", request.id)) if not v)
            raise CGRError("MANDATORY_IE_MISSING", f"[{missing}]")
        await o.runner.run(o.thresholds.reset, request.tenant, request.id)
        return common_pb2.Empty()

    async def ReloadCache(self, request: common_pb2.ReloadCacheRequest, context: Any) -> common_pb2.ReloadCacheResponse:
        return await self.owner.reload_cache(request)


class ThresholdsServer(BaseService):
    name = "thresholds"
    single_active = True  # state in memory: one serving process per StorDB (lease)
    cache_files = ("Thresholds", "Filters")
    thresholds: ThresholdEngine

    def register(self, server: grpc.aio.Server) -> list[str]:
        thresholds_pb2_grpc.add_ThresholdsServiceServicer_to_server(ThresholdsServiceServicer(self), server)
        return [thresholds_pb2.DESCRIPTOR.services_by_name["ThresholdsService"].full_name]

    async def load(self) -> None:
        self.runner = EngineRunner(self.name)
        self.recent_ids = RecentIds()
        self.rals = RalsClient(self.settings)
        await self.reload()

    async def close(self) -> None:
        if getattr(self, "rals", None) is not None:
            await self.rals.close()
        if getattr(self, "runner", None) is not None:
            self.runner.close()
        await super().close()

    async def run_build(self, build: Any, rows: TariffPlanRows) -> ThresholdEngine:
        return await self.runner.run(build, rows)

    def build(self, rows: TariffPlanRows) -> ThresholdEngine:
        """The engine for ``rows``, hit state from the StorDB."""
        filters = FilterS.from_tariffplan(rows)
        new = ThresholdEngine.from_rows(
            rows,
            filters.passes,
            self.execute_actions,
            store=ThresholdStore(self.engine),
            spawn=self.runner.submit_background,
        )
        new.candidate_ids = candidate_index(filters, new.profiles.values(), self.settings, "thresholds")
        return new

    def swap(self, new: ThresholdEngine, rows: TariffPlanRows) -> ThresholdEngine | None:
        old: ThresholdEngine | None = getattr(self, "thresholds", None)
        self.thresholds = new
        return old

    def counts(self, new: ThresholdEngine, rows: TariffPlanRows) -> dict[str, int]:
        return {"Thresholds": len(new.profiles), "Filters": len(rows.get("Filters", []))}

    # --- engine thread ----------------------------------------------------------------------------

    def process_or_defer(self, ev: CGREvent, threshold_ids: list[str] | None) -> ThresholdProcessResult:
        """On the loop: answer NOT_FOUND when nothing matches (the common case, microseconds);
        a match may run actions and write state, so it is processed in a worker."""
        if on_loop():
            self.thresholds.thresholds_for_event(ev, threshold_ids)  # raises NOT_FOUND
            raise NeedsWorker()
        return self.process(ev, threshold_ids)

    def process(self, ev: CGREvent, threshold_ids: list[str] | None) -> ThresholdProcessResult:
        token = _EVENT.set(ev)
        try:
            return self.thresholds.process_event(ev, threshold_ids)
        finally:
            _EVENT.reset(token)

    def execute_actions(self, tenant: str, account: str | None, action_ids: list[str]) -> None:
        """The engine's ``execute_actions``: RALs ExecuteActions per action set; raises on failure."""
        ev = _EVENT.get()
        for aid in action_ids:
            self.runner.call_remote(self.rals.execute_actions(tenant, account or "", aid, ev),
                                    self.rals.timeout + 1)
            self.log.info("thresholds.actions_executed", tenant=tenant, account=account or "",
                          actions_id=aid)
