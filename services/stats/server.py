"""gRPC face of StatS: thin handlers around :class:`services.stats.engine.StatEngine`.

* Stored queues persist in StorDB (:class:`StatQueueStore`), so a restart keeps them; on
  ReloadCache the live state of every queue that still exists is carried over (also of queues
  that are not Stored), metrics no longer in the profile are dropped.
* After a queue changes, its StatUpdate event goes to ThresholdS ``ProcessEvent``.
  NOT_FOUND (no threshold matched) is normal; other failures are logged and do not fail the
  request. [deviation] v0.10 turns a failed threshold call into PARTIALLY_EXECUTED; here only a
  queue that could not count the event does (the thresholds are a notification, not part of
  the stat update, which already happened).
* ``ProcessEvents`` (cdre's outbox, at least once) counts an event at most once per queue,
  whichever replica gets it and however often: each queue keeps the ids of the events it counted
  (saved with its state, loaded by a new owner; :mod:`cgrpy.storage.applied`), every event of a
  batch is processed as a possible repeat, and its forwards to other owners are marked so.
* ``cgrpy_stats_metric_value{tenant,queue,metric}`` follows every change; a metric that has not
  enough items is removed from the export instead of exporting CGRateS's -1.
"""

from __future__ import annotations

from typing import Any

import grpc

from cgrates.v1 import common_pb2, stats_pb2, stats_pb2_grpc
from cgrpy.errors import CGRError
from cgrpy.event import dumps_exact
from cgrpy.filters import FilterS
from cgrpy.filters.activation import activation_json
from cgrpy.filters.selection import candidate_index
from cgrpy.runtime.batch import BatchItem, RecentIds, ids_or_none, process_each, remember
from cgrpy.runtime.engine_runner import EngineRunner
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
from cgrpy.units import money_str
from cgrpy.wire import event_from_pb
from services.stats.clients import ThresholdSClient
from services.stats.engine import StatEngine, StatProcessResult
from services.stats.metrics import STAT_METRIC
from services.stats.queue import StatQueueProfile
from services.stats.store import FencedStatQueueStore, StatQueueStore, queue_key

LOCK_CLASS = 0x43475351  # first key of pg_advisory_lock(int, int) for queue partitions: "CGSQ"


def profile_json(p: StatQueueProfile) -> dict[str, Any]:
    """CGRateS v0.10 ``StatQueueProfile`` JSON (TTL in nanoseconds, as Go encodes a Duration)."""
    return {
        "Tenant": p.tenant,
        "ID": p.id,
        "FilterIDs": list(p.filter_ids),
        "ActivationInterval": activation_json(p.activation),
        "QueueLength": p.queue_length,
        "TTL": p.ttl_ns,
        "MinItems": p.min_items,
        "Metrics": [{"MetricID": m.metric_id, "FilterIDs": list(m.filter_ids)} for m in p.metrics],
        "Stored": p.stored,
        "Blocker": p.blocker,
        "Weight": p.weight,
        "ThresholdIDs": list(p.threshold_ids),
    }


class StatsServiceServicer(stats_pb2_grpc.StatsServiceServicer):
    def __init__(self, owner: StatsServer) -> None:
        self.owner = owner

    async def ProcessEvent(self, request: stats_pb2.StatsProcessEventRequest, context: Any) -> common_pb2.IDsResponse:
        o = self.owner
        ev = event_from_pb(request.event, o.settings.default_tenant)
        ids = ids_or_none(request.stat_ids)
        retried = False
        if not o.part.single:
            forwarded, retried = request_flags(context)
            if forwarded:  # from a replica: this process owns these queues (or says it does not)
                await o.part.take([queue_key(ev.tenant, i) for i in ids or ()])
        result: StatProcessResult = await o.run(o.process, ev, ids, retried)
        if result.remote:
            await o.process_remote(request.event, ev, result, context, retried)
        await o.notify_thresholds(result)
        if result.partially_executed:
            # ordinary: e.g. *tcc cannot read the Cost an authorize event does not carry yet
            for qid, err in result.errors.items():
                o.log.debug("stats.partially_executed", queue=qid, error=err)
            raise CGRError("PARTIALLY_EXECUTED")
        return common_pb2.IDsResponse(ids=result.queue_ids)

    async def GetStatQueuesForEvent(self, request: stats_pb2.StatsProcessEventRequest,
                                    context: Any) -> common_pb2.IDsResponse:
        o = self.owner
        ev = event_from_pb(request.event, o.settings.default_tenant)
        return common_pb2.IDsResponse(ids=await o.run(o.stats.queues_for_event, ev, ids_or_none(request.stat_ids)))

    async def ProcessEvents(self, request: stats_pb2.StatsProcessEventsRequest, context: Any) -> common_pb2.ProcessEventsResponse:
        o = self.owner
        items = [(event_from_pb(r.event, o.settings.default_tenant), ids_or_none(r.stat_ids))
                 for r in request.events]
        done = await o.run(o.process_batch, items)
        for d, r, (ev, _ids) in zip(done, request.events, items, strict=True):
            if d.result is not None and d.result.remote:  # in order: a queue sees them as sent
                # a possible repeat at the owner too (it skips what it counted already)
                await o.process_remote(r.event, ev, d.result, context, retried=True)
        remember(done, o.recent_ids)  # only now: every queue of these events has them
        await o.notify_thresholds_many([te for d in done if d.result is not None
                                        for te in d.result.threshold_events])
        results = []
        for d in done:
            res = common_pb2.EventResult(event_id=d.event_id, error=d.error, duplicate=d.duplicate)
            if d.result is not None:
                res.ids.extend(d.result.queue_ids)
                if d.result.partially_executed:
                    # an answer like NOT_FOUND, not a failure: logged at debug, not per event
                    o.log.debug("stats.partially_executed", errors=d.result.errors)
                    res.error = "PARTIALLY_EXECUTED"
            results.append(res)
        return common_pb2.ProcessEventsResponse(results=results)

    async def GetQueueStringMetrics(self, request: common_pb2.TenantID, context: Any) -> stats_pb2.MetricsResponse:
        o = self.owner
        there = await o.at_owner("GetQueueStringMetrics", request, context)
        if there is not None:
            return there
        got = await o.run(o.stats.get_string_metrics, request.tenant, request.id)
        return stats_pb2.MetricsResponse(metrics=got)

    async def GetQueueFloatMetrics(self, request: common_pb2.TenantID, context: Any) -> stats_pb2.MetricsResponse:
        o = self.owner
        there = await o.at_owner("GetQueueFloatMetrics", request, context)
        if there is not None:
            return there
        got = await o.run(o.stats.get_float_metrics, request.tenant, request.id)
        return stats_pb2.MetricsResponse(metrics={k: money_str(v) for k, v in got.items()})

    async def GetQueueIDs(self, request: common_pb2.TenantRequest, context: Any) -> common_pb2.IDsResponse:
        o = self.owner
        ids = await o.run(o.stats.get_queue_ids, request.tenant or o.settings.default_tenant)
        return common_pb2.IDsResponse(ids=ids)

    async def GetStatQueue(self, request: common_pb2.TenantID, context: Any) -> common_pb2.JsonObject:
        o = self.owner
        there = await o.at_owner("GetStatQueue", request, context)
        if there is not None:
            return there
        got = await o.run(o.stats.get_queue_json, request.tenant, request.id)
        return common_pb2.JsonObject(json=dumps_exact(got))

    async def GetStatQueueProfile(self, request: common_pb2.TenantID, context: Any) -> common_pb2.JsonObject:
        o = self.owner
        p = await o.runner.run(o.stats.get_profile, request.tenant, request.id)
        return common_pb2.JsonObject(json=dumps_exact(profile_json(p)))

    async def ResetStatQueue(self, request: common_pb2.TenantID, context: Any) -> common_pb2.Empty:
        o = self.owner
        there = await o.at_owner("ResetStatQueue", request, context)
        if there is not None:
            return there
        await o.runner.run(o.reset, request.tenant, request.id)
        return common_pb2.Empty()

    async def GetOwnership(self, request: common_pb2.Empty, context: Any) -> common_pb2.PartitionOwnership:
        return common_pb2.PartitionOwnership(**self.owner.part.ownership())

    async def ReloadCache(self, request: common_pb2.ReloadCacheRequest, context: Any) -> common_pb2.ReloadCacheResponse:
        return await self.owner.reload_cache(request)


class StatsServer(BaseService):
    name = "stats"
    cache_files = ("Stats", "Filters")
    stats: StatEngine
    inline = False
    part: Partitioned

    def register(self, server: grpc.aio.Server) -> list[str]:
        stats_pb2_grpc.add_StatsServiceServicer_to_server(StatsServiceServicer(self), server)
        return [stats_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name]

    async def load(self) -> None:
        self.runner = EngineRunner(self.name)
        self.recent_ids = RecentIds()
        self.thresholds = ThresholdSClient(self.settings)
        self.part = start_partitioned(self, lock_class=LOCK_CLASS, on_gained=self._gained,
                                      on_lost=lambda: None)
        # one process owns every queue: the hot path asks nothing
        self.owned = None if self.part.single else self._owned
        self._gains = 0
        await self.reload()

    async def run(self, fn: Any, *args: Any) -> Any:
        """Engine work inline on the loop while no queue is Stored (memory only, microseconds);
        with Stored queues a change writes to the StorDB, so it runs in a worker."""
        if self.inline:
            return await self.runner.run_inline(fn, *args, lock=self.stats._lock)  # noqa: SLF001
        return await self.runner.run(fn, *args)

    async def close(self) -> None:
        if getattr(self, "part", None) is not None:
            await self.part.close()  # first: the partitions go to the other replicas at once
        if getattr(self, "thresholds", None) is not None:
            await self.thresholds.close()
        if getattr(self, "runner", None) is not None:
            self.runner.close()
        await super().close()

    # --- engine lifecycle ---------------------------------------------------------------------

    async def run_build(self, build: Any, rows: TariffPlanRows) -> StatEngine:
        return await self.runner.run(build, rows)

    def build(self, rows: TariffPlanRows) -> StatEngine:
        """The engine for ``rows`` with the live state of the current one carried over."""
        filters = FilterS.from_tariffplan(rows)
        leases = self.part.leases
        store = (StatQueueStore(self.engine) if self.part.single
                 else FencedStatQueueStore(self.engine, leases))  # type: ignore[arg-type]
        new = StatEngine.from_rows(
            rows,
            filters.passes,
            store=store,
            rounding_decimals=self.settings.rounding_decimals,
        )
        profiles = [q.profile for q in new.queues.values()]
        new.candidate_ids = candidate_index(filters, profiles, self.settings, "stats")
        new.gains_seen = self._gains  # type: ignore[attr-defined]
        self._carry_over(getattr(self, "stats", None), new)
        return new

    def swap(self, new: StatEngine, rows: TariffPlanRows) -> StatEngine | None:
        old: StatEngine | None = getattr(self, "stats", None)
        self.stats = new
        if getattr(new, "gains_seen", self._gains) != self._gains:
            # a partition was taken while this engine was built from the old one's memory:
            # its queues as saved (rare: a reload during a takeover; reads on the loop)
            for p in self.part.leases.held():
                self._gained(p)
        self.inline = not any(q.profile.stored for q in new.queues.values())
        return old

    def counts(self, new: StatEngine, rows: TariffPlanRows) -> dict[str, int]:
        return {"Stats": len(new.queues), "Filters": len(rows.get("Filters", []))}

    def _carry_over(self, old: StatEngine | None, new: StatEngine) -> None:
        if old is not None:
            with old._lock:  # noqa: SLF001 - a consistent snapshot of the live queues
                for key, q in old.queues.items():
                    if key in new.queues:
                        new.queues[key].load_state(q.state())
                        new.queues[key].applied.carry(q.applied)
        for q in new.queues.values():
            # partitioned: only the owner's gauges are the truth (the others' memory of a queue
            # they do not own is stale); a queue's gauges appear when its partition is taken
            if self.owned is None or self.owned(q.tenant, q.id):
                self._export(q.tenant, q.id, new)

    # --- work done in the engine thread -------------------------------------------------------

    def process(self, ev: Any, stat_ids: list[str] | None, retried: bool = False) -> StatProcessResult:
        engine = self.stats
        result = engine.process_event(ev, stat_ids, owned=self.owned, retried=retried)
        for qid in result.queue_ids:
            self._export(ev.tenant, qid, engine)
        return result

    def process_batch(self, items: list[tuple[Any, list[str] | None]]) -> list[BatchItem[StatProcessResult]]:
        """ProcessEvents: every event in order, then each changed Stored queue saved once (one
        transaction for the batch, not one per event) before the reply; gauges exported once
        per touched queue."""
        engine = self.stats
        dirty: dict[tuple[str, str], Any] = {}
        touched: set[tuple[str, str]] = set()

        def one(ev: Any, stat_ids: list[str] | None) -> StatProcessResult:
            # every event of a batch may be a repeat (at-least-once sender): skip what counted it
            result = engine.process_event(ev, stat_ids, defer=dirty, owned=self.owned, retried=True)
            touched.update((ev.tenant, qid) for qid in result.queue_ids)
            return result

        done = process_each(one, items, self.recent_ids)
        engine.persist(dirty)
        for tenant, qid in touched:
            self._export(tenant, qid, engine)
        return done

    def reset(self, tenant: str, queue_id: str) -> None:
        engine = self.stats
        engine.reset(tenant, queue_id)
        self._export(tenant, queue_id, engine)

    def _owned(self, tenant: str, queue_id: str) -> bool:
        return self.part.owns(queue_key(tenant, queue_id))

    def _gained(self, partition: int) -> None:
        """This replica takes ``partition`` (on the lease's thread, before serving it): its
        queues as their last owner saved them, before the reply to its last update."""
        engine = self.stats
        keys = [k for k in engine.queues if partition_of(queue_key(*k)) == partition]
        store = engine.store
        fenced = isinstance(store, FencedStatQueueStore)
        states = store.load_keys(keys) if fenced else {}
        applied = store.load_applied_keys(keys) if fenced else {}
        engine.load_partition(keys, states, applied)
        self._gains += 1
        for tenant, qid in keys:
            self._export(tenant, qid, engine)

    @staticmethod
    def _export(tenant: str, queue_id: str, engine: StatEngine) -> None:
        q = engine.get_queue(tenant, queue_id)
        values = q.float_metrics()
        for mid, metric in q.metrics.items():
            labels = (tenant, queue_id, mid)
            if metric.available():
                STAT_METRIC.labels(*labels).set(float(values[mid]))  # Prometheus is float-only
            else:
                try:
                    STAT_METRIC.remove(*labels)
                except KeyError:
                    pass

    # --- partitions: updates and reads at each queue's owner ---------------------------------

    async def process_remote(self, pb_event: Any, ev: Any, result: StatProcessResult,
                             context: Any, retried: bool = False) -> None:
        """The queues of ``result.remote`` processed at their owners: one ProcessEvent per owner
        (concurrently), or here for partitions taken meanwhile; merged into ``result`` in match
        order, as one process answers."""
        id_of = {queue_key(ev.tenant, i): i for i in result.remote}

        def send(ch: Any, keys: list[str], md: Any, t: float) -> Any:
            req = stats_pb2.StatsProcessEventRequest(event=pb_event, stat_ids=[id_of[k] for k in keys])
            return stats_pb2_grpc.StatsServiceStub(ch).ProcessEvent(req, metadata=md, timeout=t)

        async def here(keys: list[str], again: bool) -> StatProcessResult | None:
            try:
                got: StatProcessResult = await self.run(self.process, ev, [id_of[k] for k in keys], again)
            except CGRError as exc:
                if exc.word == "NOT_FOUND":
                    return None
                raise
            return got

        answers = await spread(self.part, list(id_of), send, here,
                               timeout=budget(context, self.settings), retried=retried)
        done: set[str] = set(result.queue_ids)
        for keys, got, local in answers:
            if isinstance(got, CGRError):
                if got.word == "PARTIALLY_EXECUTED":  # counted there, a metric could not read
                    done.update(id_of[k] for k in keys)
                    result.errors.update({id_of[k]: got.word for k in keys})
                elif got.word != "NOT_FOUND":  # NOT_FOUND: they stopped matching meanwhile
                    raise got
            elif local and got is not None:
                done.update(got.queue_ids)
                result.threshold_events += got.threshold_events
                result.errors.update(got.errors)
            elif not local:
                done.update(got.ids)
        result.queue_ids = [i for i in result.matched if i in done]
        result.remote = []

    async def at_owner(self, method: str, request: Any, context: Any) -> Any | None:
        """A read or reset of one queue: the owner's answer, or None to serve it here (ours,
        taken now, a forwarded request, or a queue that does not exist)."""
        if (request.tenant, request.id) not in self.stats.queues:
            return None

        def call(ch: Any, md: Any, t: float) -> Any:
            return getattr(stats_pb2_grpc.StatsServiceStub(ch), method)(request, metadata=md, timeout=t)
        return await at_owner(self.part, queue_key(request.tenant, request.id), context, call,
                              self.settings)

    # --- ThresholdS ------------------------------------------------------------------------------

    async def notify_thresholds_many(self, events: list[Any]) -> None:
        """The StatUpdate events of a batch in one ThresholdS ``ProcessEvents`` (their ids are
        fresh uuids, so ThresholdS's dedup never skips one)."""
        if not events:
            return
        try:
            await self.thresholds.process_events([(te.event, te.threshold_ids) for te in events])
        except CGRError as exc:
            self.log.warning("stats.thresholds_failed", events=len(events), error=exc.message)

    async def notify_thresholds(self, result: StatProcessResult) -> None:
        for te in result.threshold_events:
            try:
                hit = await self.thresholds.process_event(te.event, te.threshold_ids)
            except CGRError as exc:
                if exc.word != "NOT_FOUND":
                    self.log.warning("stats.thresholds_failed", stat_id=te.event.event.get("StatID"),
                                     error=exc.message)
                continue
            self.log.debug("stats.thresholds_hit", stat_id=te.event.event.get("StatID"),
                           thresholds=hit)
