"""gRPC face of ThresholdS: thin handlers around :class:`services.thresholds.engine.ThresholdEngine`.

Actions run through RALs ``ExecuteActions`` (one call per ActionID, in order) with the tenant,
the event's ``Account`` (empty = account-less), and the triggering event. The engine
is synchronous and calls ``execute_actions`` from its worker thread, which waits for the gRPC
call on the service loop (:class:`EngineRunner`); Async thresholds do the same from a background
worker. The engine's callable does not receive the event, so the event travels in a context
variable set for the request (and copied into the background worker).

Hit state is persisted on every hit (:class:`ThresholdStore`), so restarts and ReloadCache keep
Hits, Snooze and removals at MaxHits.

``ProcessEvents`` (cdre's outbox, at least once) counts an event at most once per threshold,
whichever replica gets it and however often: each threshold keeps the ids of the events it
counted (saved with its hits, loaded by a new owner; :mod:`cgrpy.storage.applied`), every event
of a batch is processed as a possible repeat, and its forwards to other owners are marked so.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any

import grpc

from cgrates.v1 import common_pb2, thresholds_pb2, thresholds_pb2_grpc
from cgrpy.errors import CGRError, NotFoundError
from cgrpy.event import CGREvent, dumps_exact
from cgrpy.filters import FilterS
from cgrpy.filters.activation import activation_json
from cgrpy.filters.selection import candidate_index
from cgrpy.gotime import go_time
from cgrpy.runtime.batch import RecentIds, ids_or_none, process_each, remember
from cgrpy.runtime.engine_runner import EngineRunner, NeedsWorker, on_loop
from cgrpy.runtime.partitions import (
    Partitioned,
    at_owner,
    budget,
    partition_of,
    request_flags,
    spread,
    start_partitioned,
)
from cgrpy.runtime.server import BaseService
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.wire import event_from_pb
from services.thresholds.clients import RalsClient
from services.thresholds.engine import ThresholdEngine, ThresholdProcessResult
from services.thresholds.state import Threshold, ThresholdProfile
from services.thresholds.store import FencedThresholdStore, ThresholdStore, threshold_key

LOCK_CLASS = 0x43475448  # first key of pg_advisory_lock(int, int) for threshold partitions: "CGTH"

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
        ids = ids_or_none(request.threshold_ids)
        retried = False
        if not o.part.single:
            forwarded, retried = request_flags(context)
            if forwarded:  # from a replica: this process owns these thresholds (or says not)
                await o.part.take([threshold_key(ev.tenant, i) for i in ids or ()])
        result: ThresholdProcessResult = await o.runner.run_inline(
            o.process_or_defer, ev, ids, retried, lock=o.thresholds._lock)  # noqa: SLF001
        if result.remote:
            await o.process_remote(request.event, ev, result, context, retried)
        if result.partially_executed:
            for th, err in result.errors.items():
                o.log.warning("thresholds.actions_failed", threshold=th, error=err)
            raise CGRError("PARTIALLY_EXECUTED")
        return common_pb2.IDsResponse(ids=result.threshold_ids)

    async def ProcessEvents(self, request: thresholds_pb2.ThresholdsProcessEventsRequest, context: Any) -> common_pb2.ProcessEventsResponse:
        o = self.owner
        items = [(event_from_pb(r.event, o.settings.default_tenant), ids_or_none(r.threshold_ids))
                 for r in request.events]
        done = await o.runner.run(process_each, o.process_repeat, items, o.recent_ids)
        for d, r, (ev, _ids) in zip(done, request.events, items, strict=True):
            if d.result is not None and d.result.remote:  # in order: a threshold sees them as sent
                # a possible repeat at the owner too (it skips what it counted already)
                await o.process_remote(r.event, ev, d.result, context, retried=True)
        remember(done, o.recent_ids)  # only now: every threshold of these events has them
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
        ids = await o.runner.run(o.threshold_ids, request.tenant or o.settings.default_tenant)
        return common_pb2.IDsResponse(ids=ids)

    async def GetThreshold(self, request: common_pb2.TenantID, context: Any) -> common_pb2.JsonObject:
        o = self.owner
        there = await o.at_owner("GetThreshold", request, context)
        if there is not None:
            return there
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
        return common_pb2.JsonObject(json=dumps_exact(await o.states_json(found, context)))

    async def ResetThreshold(self, request: common_pb2.TenantID, context: Any) -> common_pb2.Empty:
        o = self.owner
        if not request.tenant or not request.id:
            missing = " ".join(n for n, v in (("Tenant", request.tenant), ("ID", request.id)) if not v)
            raise CGRError("MANDATORY_IE_MISSING", f"[{missing}]")
        there = await o.at_owner("ResetThreshold", request, context)
        if there is not None:
            return there
        await o.runner.run(o.thresholds.reset, request.tenant, request.id)
        return common_pb2.Empty()

    async def ReloadCache(self, request: common_pb2.ReloadCacheRequest, context: Any) -> common_pb2.ReloadCacheResponse:
        return await self.owner.reload_cache(request)

    async def GetOwnership(self, request: common_pb2.Empty, context: Any) -> common_pb2.PartitionOwnership:
        return common_pb2.PartitionOwnership(**self.owner.part.ownership())


class ThresholdsServer(BaseService):
    name = "thresholds"
    cache_files = ("Thresholds", "Filters")
    thresholds: ThresholdEngine
    part: Partitioned

    def register(self, server: grpc.aio.Server) -> list[str]:
        thresholds_pb2_grpc.add_ThresholdsServiceServicer_to_server(ThresholdsServiceServicer(self), server)
        return [thresholds_pb2.DESCRIPTOR.services_by_name["ThresholdsService"].full_name]

    async def load(self) -> None:
        self.runner = EngineRunner(self.name)
        self.recent_ids = RecentIds()
        self.rals = RalsClient(self.settings)
        self.part = start_partitioned(self, lock_class=LOCK_CLASS, on_gained=self._gained,
                                      on_lost=lambda: None)
        # one process owns every threshold: the hot path asks nothing
        self.owned = None if self.part.single else self._owned
        self._gains = 0
        await self.reload()

    async def close(self) -> None:
        if getattr(self, "part", None) is not None:
            await self.part.close()  # first: the partitions go to the other replicas at once
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
        store = (ThresholdStore(self.engine) if self.part.single
                 else FencedThresholdStore(self.engine, self.part.leases))  # type: ignore[arg-type]
        gains = self._gains
        new = ThresholdEngine.from_rows(
            rows,
            filters.passes,
            self.execute_actions,
            store=store,
            spawn=self.runner.submit_background,
        )
        new.candidate_ids = candidate_index(filters, new.profiles.values(), self.settings, "thresholds")
        old: ThresholdEngine | None = getattr(self, "thresholds", None)
        if not self.part.single and old is not None:
            with old._lock:  # noqa: SLF001 - the owned thresholds' live state, as saved
                new.states = {k: st for k, st in old.states.items() if k in new.profiles} | {
                    k: Threshold(*k) for k in new.profiles if k not in old.profiles}
        new.gains_seen = gains  # type: ignore[attr-defined]
        return new

    def swap(self, new: ThresholdEngine, rows: TariffPlanRows) -> ThresholdEngine | None:
        old: ThresholdEngine | None = getattr(self, "thresholds", None)
        self.thresholds = new
        if getattr(new, "gains_seen", self._gains) != self._gains:
            # a partition was taken while this engine was built: its thresholds as saved
            # (rare: a reload during a takeover; reads on the loop)
            for p in self.part.leases.held():
                self._gained(p)
        return old

    def counts(self, new: ThresholdEngine, rows: TariffPlanRows) -> dict[str, int]:
        return {"Thresholds": len(new.profiles), "Filters": len(rows.get("Filters", []))}

    # --- engine thread ----------------------------------------------------------------------------

    def process_or_defer(self, ev: CGREvent, threshold_ids: list[str] | None,
                         retried: bool = False) -> ThresholdProcessResult:
        """On the loop: answer NOT_FOUND when nothing matches (the common case, microseconds);
        a match may run actions and write state, so it is processed in a worker."""
        if on_loop():
            self.thresholds.thresholds_for_event(ev, threshold_ids)  # raises NOT_FOUND
            raise NeedsWorker()
        return self.process(ev, threshold_ids, retried)

    def process(self, ev: CGREvent, threshold_ids: list[str] | None,
                retried: bool = False) -> ThresholdProcessResult:
        token = _EVENT.set(ev)
        try:
            return self.thresholds.process_event(ev, threshold_ids, owned=self.owned, retried=retried)
        finally:
            _EVENT.reset(token)

    def process_repeat(self, ev: CGREvent, threshold_ids: list[str] | None) -> ThresholdProcessResult:
        """A batch's event (at-least-once sender): a threshold that counted it skips it."""
        return self.process(ev, threshold_ids, True)

    def _owned(self, tenant: str, threshold_id: str) -> bool:
        return self.part.owns(threshold_key(tenant, threshold_id))

    def _gained(self, partition: int) -> None:
        """This replica takes ``partition`` (on the lease's thread, before serving it): its
        thresholds as their last owner saved them, before the reply to its last hit."""
        engine = self.thresholds
        keys = [k for k in engine.profiles if partition_of(threshold_key(*k)) == partition]
        store = engine.store
        fenced = isinstance(store, FencedThresholdStore)
        saved = store.load_keys(keys) if fenced else {}
        applied = store.load_applied_keys(keys) if fenced else {}
        engine.load_partition(keys, saved, applied)
        self._gains += 1

    def threshold_ids(self, tenant: str) -> list[str]:
        """GetThresholdIDs: partitioned, the thresholds removed at MaxHits by other owners are
        read from the StorDB (this process's memory of them is not kept up to date)."""
        engine = self.thresholds
        if self.part.single:
            return engine.get_threshold_ids(tenant)
        saved = ThresholdStore(self.engine).load_all()
        ids = sorted(tid for (t, tid) in engine.profiles if t == tenant and (
            (t, tid) in engine.states if self._owned(t, tid) else saved.get((t, tid), 1) is not None))
        if not ids:
            raise NotFoundError()
        return ids

    # --- partitions: hits and reads at each threshold's owner ---------------------------------

    async def process_remote(self, pb_event: Any, ev: CGREvent, result: ThresholdProcessResult,
                             context: Any, retried: bool = False) -> None:
        """The thresholds of ``result.remote`` counted at their owners: one ProcessEvent per
        owner (concurrently), or here for partitions taken meanwhile; merged into ``result`` in
        match order, as one process answers."""
        id_of = {threshold_key(ev.tenant, i): i for i in result.remote}

        def send(ch: Any, keys: list[str], md: Any, t: float) -> Any:
            req = thresholds_pb2.ThresholdsProcessEventRequest(
                event=pb_event, threshold_ids=[id_of[k] for k in keys])
            return thresholds_pb2_grpc.ThresholdsServiceStub(ch).ProcessEvent(req, metadata=md, timeout=t)

        async def here(keys: list[str], again: bool) -> ThresholdProcessResult | None:
            try:
                return await self.runner.run(self.process, ev, [id_of[k] for k in keys], again)
            except CGRError as exc:
                if exc.word == "NOT_FOUND":
                    return None
                raise

        answers = await spread(self.part, list(id_of), send, here,
                               timeout=budget(context, self.settings), retried=retried)
        done: set[str] = set(result.threshold_ids)
        for keys, got, local in answers:
            if isinstance(got, CGRError):
                if got.word == "PARTIALLY_EXECUTED":  # counted there, an action failed
                    done.update(id_of[k] for k in keys)
                    result.errors.update({id_of[k]: got.message for k in keys})
                elif got.word != "NOT_FOUND":  # NOT_FOUND: removed at MaxHits meanwhile
                    raise got
            elif local and got is not None:
                done.update(got.threshold_ids)
                result.errors.update(got.errors)
            elif not local:
                done.update(got.ids)
        result.threshold_ids = [i for i in result.matched if i in done]
        result.remote = []

    async def at_owner(self, method: str, request: Any, context: Any) -> Any | None:
        """A read or reset of one threshold: the owner's answer, or None to serve it here."""
        if (request.tenant, request.id) not in self.thresholds.profiles:
            return None

        def call(ch: Any, md: Any, t: float) -> Any:
            stub = thresholds_pb2_grpc.ThresholdsServiceStub(ch)
            return getattr(stub, method)(request, metadata=md, timeout=t)
        return await at_owner(self.part, threshold_key(request.tenant, request.id), context, call,
                              self.settings)

    async def states_json(self, found: list[Threshold], context: Any) -> list[dict[str, Any]]:
        """GetThresholdsForEvent's states: another owner's threshold as that owner has it."""
        out: list[dict[str, Any]] = []
        for t in found:
            req = common_pb2.TenantID(tenant=t.tenant, id=t.id)
            try:
                there = await self.at_owner("GetThreshold", req, context)
            except CGRError as exc:
                if exc.word == "NOT_FOUND":  # removed at MaxHits by its owner
                    continue
                raise
            out.append(json.loads(there.json) if there is not None else threshold_json(t))
        return out

    def execute_actions(self, tenant: str, account: str | None, action_ids: list[str]) -> None:
        """The engine's ``execute_actions``: RALs ExecuteActions per action set; raises on failure."""
        ev = _EVENT.get()
        for aid in action_ids:
            self.runner.call_remote(self.rals.execute_actions(tenant, account or "", aid, ev),
                                    self.rals.timeout + 1)
            self.log.info("thresholds.actions_executed", tenant=tenant, account=account or "",
                          actions_id=aid)
