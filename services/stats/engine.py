"""StatS engine: matches events to stat queues, feeds their metrics, reads metrics back and
prepares the StatUpdate event for ThresholdS.

Pure of I/O except the optional :class:`StatQueueStore`; the gRPC service sends the returned
threshold events and maps errors to status codes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cgrpy.errors import MandatoryIEMissingError, NotFoundError
from cgrpy.event import CGREvent, validate_event
from cgrpy.filters.selection import CandidateIDs, Passes, select_profiles
from cgrpy.runtime.partitions import NotOwner
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.tariffplan.rows import group_rows
from cgrpy.units import to_unix_nano
from services.stats.metric_types import DEFAULT_ROUNDING_DECIMALS, MetricError
from services.stats.queue import StatQueue, StatQueueProfile
from services.stats.store import StatQueueStore


@dataclass
class ThresholdEventArgs:
    """What StatS sends to ThresholdS.ProcessEvent after updating a queue."""

    threshold_ids: list[str]
    event: CGREvent


@dataclass
class StatProcessResult:
    queue_ids: list[str] = field(default_factory=list)
    threshold_events: list[ThresholdEventArgs] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # queue ID -> what failed
    # matched queues another process owns (partitioned StatS), in match order: not processed
    remote: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)  # every matched queue, in match order
    # processed queues that had counted this event already (a repeat: left as they were)
    repeats: list[str] = field(default_factory=list)

    @property
    def partially_executed(self) -> bool:
        """The API answers PARTIALLY_EXECUTED instead of the ID list when this is True."""
        return bool(self.errors)


class StatEngine:
    def __init__(
        self,
        profiles: list[StatQueueProfile],
        passes: Passes,
        *,
        store: StatQueueStore | None = None,
        rounding_decimals: int = DEFAULT_ROUNDING_DECIMALS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        candidate_ids: CandidateIDs | None = None,
    ) -> None:
        self.passes = passes
        self.candidate_ids = candidate_ids
        self.store = store
        self.clock = clock
        self._lock = threading.RLock()
        # changed Stored queues a failed batch save left behind: saved with the next batch
        self._unsaved: dict[tuple[str, str], StatQueue] = {}
        self.queues: dict[tuple[str, str], StatQueue] = {
            (p.tenant, p.id): StatQueue(p, rounding_decimals=rounding_decimals) for p in profiles
        }
        if store is not None:
            for key, state in store.load_all().items():
                q = self.queues.get(key)
                if q is not None and q.profile.stored:
                    q.load_state(state)
            for key, rows in store.load_applied().items():
                if key in self.queues and self.queues[key].profile.stored:
                    self.queues[key].applied.load(rows)

    @classmethod
    def from_rows(
        cls,
        rows: TariffPlanRows,
        passes: Passes,
        *,
        store: StatQueueStore | None = None,
        rounding_decimals: int = DEFAULT_ROUNDING_DECIMALS,
        clock: Callable[[], datetime] | None = None,
        candidate_ids: CandidateIDs | None = None,
    ) -> StatEngine:
        profiles = [
            StatQueueProfile.from_rows(tenant, qid, prow)
            for (tenant, qid), prow in group_rows(rows.get("Stats", []), "Id").items()
        ]
        kw = {"clock": clock} if clock else {}
        return cls(profiles, passes, store=store, rounding_decimals=rounding_decimals,
                   candidate_ids=candidate_ids, **kw)

    # --- matching -----------------------------------------------------------------------------

    def _matching(
        self, event: CGREvent, stat_ids: list[str] | None, now: datetime
    ) -> list[StatQueue]:
        if stat_ids:
            cands = [self.queues[(event.tenant, i)] for i in stat_ids if (event.tenant, i) in self.queues]
        else:
            ids = self.candidate_ids(event.tenant, event) if self.candidate_ids else None
            cands = [q for (t, qid), q in self.queues.items()
                     if t == event.tenant and (ids is None or qid in ids)]
        profiles = select_profiles([q.profile for q in cands], event, self.passes, now=now)
        if not profiles:
            raise NotFoundError()
        return [self.queues[(p.tenant, p.id)] for p in profiles]

    def queues_for_event(
        self, event: CGREvent, stat_ids: list[str] | None = None, *, now: datetime | None = None
    ) -> list[str]:
        """``GetStatQueuesForEvent``: matched queue IDs, nothing processed."""
        validate_event(event)
        return [q.id for q in self._matching(event, stat_ids, now or self.clock())]

    # --- processing ---------------------------------------------------------------------------

    def process_event(
        self,
        event: CGREvent,
        stat_ids: list[str] | None = None,
        *,
        now: datetime | None = None,
        defer: dict[tuple[str, str], StatQueue] | None = None,
        owned: Callable[[str, str], bool] | None = None,
        retried: bool = False,
    ) -> StatProcessResult:
        """Feed ``event`` to every matching queue. NOT_FOUND when none matches; a metric that
        cannot read its field leaves that queue unchanged and is reported in ``errors``.

        A changed Stored queue is saved before this returns, or, with ``defer``, put there for
        :meth:`persist` to save once for a whole batch of events. With ``owned``, a matched
        queue it refuses is only listed in ``remote`` (its owner processes it). ``retried``: the
        event may already be counted (an at-least-once sender's batch, or its owner died
        mid-call): a queue whose recent ids (:mod:`cgrpy.storage.applied`, saved with the
        queue) hold the event's is left as it is (listed in ``repeats``)."""
        validate_event(event)
        now = now or self.clock()
        result = StatProcessResult()
        with self._lock:
            for q in self._matching(event, stat_ids, now):
                result.matched.append(q.id)
                if owned is not None and not owned(q.tenant, q.id):
                    result.remote.append(q.id)
                    continue
                result.queue_ids.append(q.id)
                if retried and event.id and event.id in q.applied:
                    result.repeats.append(q.id)
                    continue
                self._process_one(q, event, now, result, defer)
        return result

    def _process_one(self, q: StatQueue, event: CGREvent, now: datetime, result: StatProcessResult,
                     defer: dict[tuple[str, str], StatQueue] | None) -> None:
        expired = q.expire(now)
        try:
            q.process(event, self.passes, now)
        except MetricError as exc:
            result.errors[q.id] = str(exc)
            if expired:  # the event left the queue as it was; only expiry changed it
                self._persist(q, defer)
            return
        q.applied.add(event.id, to_unix_nano(now))
        self._persist(q, defer)
        if q.profile.notifies_thresholds:
            result.threshold_events.append(self._threshold_event(q))

    def load_partition(self, keys: list[tuple[str, str]], states: dict[tuple[str, str], Any],
                       applied: dict[tuple[str, str], Any] | None = None) -> None:
        """This process became the owner of ``keys``' queues: their state and the event ids
        they counted as the last owner saved them (a queue that is not Stored starts empty, as
        after a restart)."""
        with self._lock:
            for key in keys:
                q = self.queues[key]
                self._unsaved.pop(key, None)
                q.reset()
                stored = q.profile.stored
                q.applied.load((applied or {}).get(key, []) if stored else [])
                if key in states and stored:
                    q.load_state(states[key])

    def persist(self, queues: dict[tuple[str, str], StatQueue]) -> None:
        """Save the Stored ``queues`` (collected with ``defer``) in one transaction, together
        with any a failed earlier call left unsaved; raises (keeping them) when the store fails."""
        if self.store is None:
            return
        with self._lock:
            self._unsaved.update(queues)
            if self._unsaved:
                try:
                    self.store.save_many(list(self._unsaved.values()))
                except NotOwner:
                    # another process owns them now and reloads them from its own saves
                    self._unsaved.clear()
                    raise
                self._unsaved.clear()

    def _threshold_event(self, q: StatQueue) -> ThresholdEventArgs:
        fields: dict[str, object] = {"EventType": "StatUpdate", "StatID": q.id}
        fields.update(q.native_metrics())
        return ThresholdEventArgs(
            threshold_ids=list(q.profile.threshold_ids),
            event=CGREvent(tenant=q.tenant, id=str(uuid.uuid4()), event=fields),
        )

    def _persist(self, q: StatQueue, defer: dict[tuple[str, str], StatQueue] | None = None) -> None:
        if self.store is None or not q.profile.stored:
            return
        if defer is not None:
            defer[(q.tenant, q.id)] = q
        else:
            self.store.save(q)

    # --- reading ------------------------------------------------------------------------------

    def _queue(self, tenant: str, queue_id: str, now: datetime | None) -> StatQueue:
        missing = [n for n, v in (("Tenant", tenant), ("ID", queue_id)) if not v]
        if missing:
            raise MandatoryIEMissingError(*missing)
        q = self.queues.get((tenant, queue_id))
        if q is None:
            raise NotFoundError()
        if q.expire(now or self.clock()):
            self._persist(q)
        return q

    def get_string_metrics(
        self, tenant: str, queue_id: str, *, now: datetime | None = None
    ) -> dict[str, str]:
        with self._lock:
            return self._queue(tenant, queue_id, now).string_metrics()

    def get_float_metrics(
        self, tenant: str, queue_id: str, *, now: datetime | None = None
    ) -> dict[str, Decimal]:
        """Float form of every metric as exact Decimal (-1 when not available)."""
        with self._lock:
            return self._queue(tenant, queue_id, now).float_metrics()

    def get_queue_ids(self, tenant: str) -> list[str]:
        ids = sorted(qid for (t, qid) in self.queues if t == tenant)
        if not ids:
            raise NotFoundError()
        return ids

    def get_profile(self, tenant: str, queue_id: str) -> StatQueueProfile:
        q = self.queues.get((tenant, queue_id))
        if q is None:
            raise NotFoundError()
        return q.profile

    def get_queue_json(self, tenant: str, queue_id: str) -> dict[str, Any]:
        """``StatSv1.GetStatQueue``: the queue (expired items dropped first) as v0.10's JSON."""
        with self._lock:
            return self._queue(tenant, queue_id, None).v010_json()

    def get_queue(self, tenant: str, queue_id: str, *, now: datetime | None = None) -> StatQueue:
        with self._lock:
            return self._queue(tenant, queue_id, now)

    def reset(self, tenant: str, queue_id: str) -> None:
        """``ResetStatQueue``: empty the queue and every metric."""
        with self._lock:
            q = self._queue(tenant, queue_id, None)
            q.reset()
            self._persist(q)
