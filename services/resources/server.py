"""gRPC face of ResourceS: thin handlers around :class:`services.resources.logic.ResourceEngine`.

Every operation that changes usages runs under one lock: the decision, the write of the changed
usage rows of Stored resources (before the reply; a failed write undoes the change in memory and
answers SERVER_ERROR), then the ThresholdS events (``ResourceUpdate`` with the resource's total
usage, one per changed resource whose ThresholdIDs are not ``*none``; a ThresholdS error is
logged, never the caller's problem, as in v0.10). The engine is plain Python on the event loop:
a decision is microseconds, the write goes to a thread.

Replicas (Postgres StorDB): every resource lives in ONE partition of
:mod:`cgrpy.runtime.partitions` (an advisory lock), because one allocation can name several
resources and must stay atomic. The replica holding it counts every usage; the others pass each
request to it (one hop, marked forwarded) and take the partition over when the owner is gone,
loading what it committed: every usage row is written on the lease connection before the reply
(:class:`FencedResourceStore`), so a takeover keeps each live allocation and frees each release
once. On SQLite one process owns everything and only Stored resources are saved.

``ReloadCache`` builds a new engine for the new profiles and carries over the usages of every
resource that still exists (from memory, so the usages of resources that are not Stored survive
a reload too).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc

from cgrates.v1 import common_pb2, resources_pb2, resources_pb2_grpc
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent, dumps_exact
from cgrpy.filters import FilterS
from cgrpy.filters.errors import FilterError
from cgrpy.gotime import go_time_ns
from cgrpy.runtime.cache import cache_counts
from cgrpy.runtime.partitions import (
    Partitioned,
    budget,
    call_owner,
    partition_of,
    request_flags,
    start_partitioned,
)
from cgrpy.runtime.server import BaseService
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.wire import event_from_pb
from services.resources import metrics
from services.resources.clients import ThresholdSClient
from services.resources.logic import (
    Change,
    Resource,
    ResourceEngine,
    UsageRequest,
    build_index,
    profile_json,
    resource_json,
)
from services.resources.rows import profiles_from_rows
from services.resources.store import FencedResourceStore, ResourceStore

LOCK_CLASS = 0x43475252  # first key of pg_advisory_lock(int, int) for the resources: "CGRR"
# The one partition key of every resource (an allocation touching several stays atomic).
KEY = "resources"


def usage_request(request: resources_pb2.ResourceUsageRequest, default_tenant: str) -> UsageRequest:
    if not request.HasField("event"):
        raise CGRError("MANDATORY_IE_MISSING", "[CGREvent]")
    ev = event_from_pb(request.event, default_tenant)
    units = request.units if request.HasField("units") else 1.0
    ttl = request.usage_ttl_ns if request.HasField("usage_ttl_ns") else None
    return UsageRequest(ev, request.usage_id, units, ttl)


class ResourcesServiceServicer(resources_pb2_grpc.ResourcesServiceServicer):
    def __init__(self, owner: ResourcesServer) -> None:
        self.owner = owner

    def _req(self, request: resources_pb2.ResourceUsageRequest) -> UsageRequest:
        return usage_request(request, self.owner.settings.default_tenant)

    async def AuthorizeResources(self, request: Any, context: Any) -> resources_pb2.ResourceAllocationResponse:
        o = self.owner
        there, _ = await o.at_owner("AuthorizeResources", request, context)
        if there is not None:
            return there
        msg = await o.change(lambda e, c: e.authorize(self._req(request), time.time_ns(), c), "authorize")
        return resources_pb2.ResourceAllocationResponse(message=msg)

    async def AllocateResources(self, request: Any, context: Any) -> resources_pb2.ResourceAllocationResponse:
        o = self.owner
        there, _ = await o.at_owner("AllocateResources", request, context)
        if there is not None:
            return there
        msg = await o.change(lambda e, c: e.allocate(self._req(request), time.time_ns(), c), "allocate")
        return resources_pb2.ResourceAllocationResponse(message=msg)

    async def ReleaseResources(self, request: Any, context: Any) -> common_pb2.Empty:
        o = self.owner
        there, retried = await o.at_owner("ReleaseResources", request, context)
        if there is not None:
            return there
        try:
            await o.change(lambda e, c: e.release(self._req(request), c), "release")
        except CGRError as exc:
            # sent again after the owner died mid-call: the first attempt may have freed it
            if not (retried and exc.message.startswith("cannot find usage record")):
                raise
        return common_pb2.Empty()

    async def ReleaseUsage(self, request: Any, context: Any) -> resources_pb2.ReleaseUsageResponse:
        o = self.owner
        there, _ = await o.at_owner("ReleaseUsage", request, context)
        if there is not None:
            return there
        tenant = request.tenant or o.settings.default_tenant
        ids = await o.change(lambda e, c: e.release_anywhere(tenant, request.usage_id, c), "release")
        return resources_pb2.ReleaseUsageResponse(resource_ids=ids)

    async def GetResourcesForEvent(self, request: Any, context: Any) -> common_pb2.JsonObject:
        o = self.owner
        there, _ = await o.at_owner("GetResourcesForEvent", request, context)
        if there is not None:
            return there
        req = self._req(request)
        if not req.event.id:
            raise CGRError("MANDATORY_IE_MISSING", "[ID]")
        o.adopt()
        matched = o.resources.matching(req) if req.usage_id else self._match_uncached(req)
        return common_pb2.JsonObject(json=dumps_exact([resource_json(r, go_time_ns) for _p, r in matched]))

    def _match_uncached(self, req: UsageRequest) -> list[Any]:
        eng = self.owner.resources
        return eng.matching(UsageRequest(req.event, f"\x00{req.event.id}", req.units, req.usage_ttl_ns))

    async def GetResource(self, request: common_pb2.TenantID, context: Any) -> common_pb2.JsonObject:
        o = self.owner
        there, _ = await o.at_owner("GetResource", request, context)
        if there is not None:
            return there
        o.adopt()
        r = o.resources.resource(request.tenant or o.settings.default_tenant, request.id)
        return common_pb2.JsonObject(json=dumps_exact(resource_json(r, go_time_ns)))

    async def GetResourceProfile(self, request: common_pb2.TenantID, context: Any) -> common_pb2.JsonObject:
        tenant = request.tenant or self.owner.settings.default_tenant
        return common_pb2.JsonObject(json=dumps_exact(profile_json(self.owner.resources.profile(tenant, request.id))))

    async def GetResourceIDs(self, request: common_pb2.TenantRequest, context: Any) -> common_pb2.IDsResponse:
        return common_pb2.IDsResponse(ids=self.owner.resources.ids(request.tenant or self.owner.settings.default_tenant))

    async def GetOwnership(self, request: common_pb2.Empty, context: Any) -> common_pb2.PartitionOwnership:
        return common_pb2.PartitionOwnership(**self.owner.part.ownership())

    async def ReloadCache(self, request: common_pb2.ReloadCacheRequest, context: Any) -> common_pb2.ReloadCacheResponse:
        tpid, loaded = await self.owner.reload(request.tpid or None)
        return common_pb2.ReloadCacheResponse(tpid=tpid, loaded=loaded)


class ResourcesServer(BaseService):
    name = "resources"
    resources: ResourceEngine
    part: Partitioned

    def register(self, server: grpc.aio.Server) -> list[str]:
        resources_pb2_grpc.add_ResourcesServiceServicer_to_server(ResourcesServiceServicer(self), server)
        return [resources_pb2.DESCRIPTOR.services_by_name["ResourcesService"].full_name]

    async def load(self) -> None:
        self._lock = asyncio.Lock()
        self._taken: dict[tuple[str, str], Any] | None = None  # usages read at a takeover
        self.part = start_partitioned(self, lock_class=LOCK_CLASS, on_gained=self._gained,
                                      on_lost=lambda: None)
        self.store = (ResourceStore(self.engine) if self.part.single else
                      FencedResourceStore(self.engine, self.part.leases, partition_of(KEY)))  # type: ignore[arg-type]
        self.thresholds = ThresholdSClient(self.settings)
        self._pending: set[asyncio.Task[None]] = set()
        await self.reload()
        metrics.COLLECTOR.engines[id(self)] = self._gauged

    def _gauged(self) -> ResourceEngine | None:
        """The engine whose usages are the truth: only the owner's (another replica's memory of
        them is stale)."""
        if not self.part.single and not self.part.owns(KEY):
            return None
        self.adopt()
        return getattr(self, "resources", None)

    async def close(self) -> None:
        metrics.COLLECTOR.engines.pop(id(self), None)
        if getattr(self, "part", None) is not None:
            await self.part.close()  # first: the resources go to the other replicas at once
        if getattr(self, "thresholds", None) is not None:
            await self.thresholds.close()
        await super().close()

    def _build(self, rows: TariffPlanRows, saved: dict[tuple[str, str], Any]) -> ResourceEngine:
        try:
            profiles = profiles_from_rows(rows.get("Resources", []), self.settings.default_tenant)
            index = build_index(FilterS.from_tariffplan(rows), profiles,
                                self.settings.resources_string_indexed_fields,
                                self.settings.resources_prefix_indexed_fields)
        except (FilterError, ValueError) as exc:
            raise CGRError("SERVER_ERROR", f"resources tariff plan: {exc}") from None
        return ResourceEngine(profiles, index, saved)

    async def reload(self, tpid: str | None = None) -> tuple[str, dict[str, int]]:
        """Build the engine for ``tpid`` (default: the configured one) and swap it in, usages
        carried over; the old one is kept on error. Same contract as ``BaseService.reload``, but
        not its build-in-a-worker-then-swap: the usages are live state, so the snapshot, the
        build and the swap happen under the lock every allocate/release takes, and no usage
        taken meanwhile can be lost between the snapshot and the swap."""
        tpid = tpid or self.settings.tpid
        rows = await self.fetch_tariffplan(tpid)
        async with self._lock:
            current = getattr(self, "resources", None)
            if current is None:
                saved = await asyncio.to_thread(self.store.load_all)
            else:
                saved = current.snapshot()
            self.resources = self._build(rows, saved)
        self.log.info("resources.loaded", tpid=tpid, profiles=len(self.resources.profiles))
        self.cache_tpid, self.cache_counts = tpid, cache_counts(rows, ("Resources", "Filters"))
        return tpid, {"Resources": len(self.resources.profiles), "Filters": len(rows.get("Filters", []))}

    async def change(self, op: Any, name: str) -> Any:
        """Run ``op(engine, change)`` under the lock, commit what it changed, then notify ThresholdS."""
        try:
            result = await self._change(op)
        except CGRError as exc:
            outcome = {"RESOURCE_UNAUTHORIZED": "refused", "RESOURCE_UNAVAILABLE": "refused",
                       "NOT_FOUND": "not_found"}.get(exc.word, "error")
            metrics.DECISIONS.labels(name, outcome).inc()
            raise
        metrics.DECISIONS.labels(name, "ok").inc()
        return result

    async def _change(self, op: Any) -> Any:
        async with self._lock:
            self.adopt()
            eng = self.resources
            change = Change()
            try:
                result = op(eng, change)
            except FilterError as exc:
                raise CGRError("SERVER_ERROR", str(exc)) from None
            finally:
                if change.keys:
                    await self._commit(eng, change)
        if change.notify:
            for r in change.resources:
                self._notify(eng, r)
        return result

    async def _commit(self, eng: ResourceEngine, change: Change) -> None:
        rows = eng.usages_of(change.keys, every=not self.part.single)
        if not rows:
            return  # no Stored resource changed
        try:
            await asyncio.to_thread(self.store.write, rows)
        except Exception as exc:
            eng.undo(change)
            self.log.error("resources.store_failed", error=str(exc))
            raise CGRError("SERVER_ERROR", f"resource usages not stored: {exc}") from None

    def _notify(self, eng: ResourceEngine, r: Resource) -> None:
        p = eng.profiles.get((r.tenant, r.id))
        if p is None or not p.notifies_thresholds:
            return
        task = asyncio.create_task(self._process_thresholds(p.threshold_ids, r.tenant, r.id, r.total_usage()))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _process_thresholds(self, ids: tuple[str, ...], tenant: str, rid: str, total: float) -> None:
        """v0.10's ResourceUpdate event to ThresholdS (its answer only logged)."""
        exact = int(total) if total == int(total) else Decimal(repr(total))  # events carry no floats
        ev = CGREvent(tenant=tenant, id=f"{rid}-{time.time_ns()}", time=datetime.now(UTC),
                      event={"EventType": "ResourceUpdate", "ResourceID": rid, "Usage": exact})
        try:
            await self.thresholds.process_event(ev, ids)
        except CGRError as exc:  # also ThresholdS not running (UNAVAILABLE)
            if exc.word != "NOT_FOUND":
                self.log.warning("resources.thresholds_failed", resource=rid, error=exc.message)

    # --- replicas: one owner of every resource ------------------------------------------------

    def _gained(self, partition: int) -> None:
        """This replica takes the resources (on the lease's thread, before serving them): the
        usages as their last owner committed them, swapped in on the loop by :meth:`adopt`
        before the first request that sees this replica as the owner."""
        assert isinstance(self.store, FencedResourceStore)
        self._taken = self.store.load_taken()
        self.log.info("resources.taken", usages=sum(len(u) for u in self._taken.values()))

    def adopt(self) -> None:
        """Swap in the usages read at a takeover, once (no await: atomic on the loop)."""
        taken, self._taken = self._taken, None
        if taken is not None:
            self.resources.adopt(taken)

    async def at_owner(self, method: str, request: Any, context: Any) -> tuple[Any | None, bool]:
        """(the owner's answer, or None to serve here; whether the request may already have
        been applied by an owner that died mid-call). A forwarded request is served here only
        if this replica owns the resources (taking them when free), else NotOwner."""
        part = self.part
        if part.single or part.owns(KEY):
            return None, False
        forwarded, retried = request_flags(context)
        if forwarded:
            await part.take([KEY])
            return None, retried
        local, remote = await part.route([KEY])
        if local:
            return None, False

        def call(ch: Any, md: Any, t: float) -> Any:
            stub = resources_pb2_grpc.ResourcesServiceStub(ch)
            return getattr(stub, method)(request, metadata=md, timeout=t)
        got = await call_owner(part, next(iter(remote)), [KEY], call,
                               timeout=budget(context, self.settings))
        return got, got is None
