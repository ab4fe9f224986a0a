"""StatQueueProfile (from Stats.csv rows) and the StatQueue that feeds events into its metrics.

Differences from CGRateS v0.10, on purpose:

* TTL 0 (including an empty CSV cell) means "items never expire", as later CGRateS versions do;
  v0.10 expires such items at the next operation so metrics almost always read N/A.
* Adding is atomic per queue: every metric's field is read and validated first, and only when
  all succeed is the item appended and counted. v0.10 visits metrics in random order and stops
  at the first error, leaving some metrics counted and the item appended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cgrpy.event import CGREvent
from cgrpy.filters.activation import ActivationInterval
from cgrpy.filters.selection import Passes
from cgrpy.gotime import go_time
from cgrpy.storage.applied import AppliedIds
from cgrpy.tariffplan.rows import (
    ProfileError,
    parse_activation,
    parse_bool,
    parse_int,
    parse_weight,
    split_list,
)
from cgrpy.units import UnitError, parse_duration
from services.stats.metric_types import (
    DEFAULT_ROUNDING_DECIMALS,
    Metric,
    MetricError,
    new_metric,
)

NONE_THRESHOLDS = "*none"


@dataclass(frozen=True)
class MetricSpec:
    metric_id: str
    filter_ids: tuple[str, ...] = ()


@dataclass
class StatQueueProfile:
    tenant: str
    id: str
    filter_ids: list[str] = field(default_factory=list)
    activation: ActivationInterval | None = None
    queue_length: int = 0
    ttl_ns: int = -1  # <= 0: items never expire (see module doc)
    min_items: int = 0
    metrics: list[MetricSpec] = field(default_factory=list)
    stored: bool = False
    blocker: bool = False
    weight: Decimal = Decimal(0)
    threshold_ids: list[str] = field(default_factory=list)

    @property
    def notifies_thresholds(self) -> bool:
        return self.threshold_ids != [NONE_THRESHOLDS]

    @classmethod
    def from_rows(cls, tenant: str, qid: str, rows: list[dict[str, str]]) -> StatQueueProfile:
        """One profile from its Stats.csv rows (later non-empty cells override, lists append)."""
        p = cls(tenant, qid)
        where = f"Stats {tenant}:{qid}"
        seen: set[str] = set()
        for row in rows:
            p.filter_ids += [f for f in split_list(row.get("FilterIDs")) if f not in p.filter_ids]
            if (row.get("ActivationInterval") or "").strip():
                p.activation = parse_activation(row["ActivationInterval"], where=where)
            if (row.get("QueueLength") or "").strip():
                p.queue_length = parse_int(row["QueueLength"], where=f"{where} QueueLength")
            if (row.get("TTL") or "").strip():
                try:
                    p.ttl_ns = parse_duration(row["TTL"])
                except UnitError as exc:
                    raise ProfileError(f"{where} TTL: {exc}") from None
            if (row.get("MinItems") or "").strip():
                p.min_items = parse_int(row["MinItems"], where=f"{where} MinItems")
            metric_filters = tuple(split_list(row.get("MetricFilterIDs")))
            for mid in split_list(row.get("Metrics")):
                if mid in seen:
                    continue
                try:
                    new_metric(mid)  # validate the ID now, not at the first event
                except MetricError as exc:
                    raise ProfileError(f"{where} Metrics: {exc}") from None
                seen.add(mid)
                p.metrics.append(MetricSpec(mid, metric_filters))
            if (row.get("Stored") or "").strip():
                p.stored = parse_bool(row["Stored"], where=f"{where} Stored")
            if (row.get("Blocker") or "").strip():
                p.blocker = parse_bool(row["Blocker"], where=f"{where} Blocker")
            if (row.get("Weight") or "").strip():
                p.weight = parse_weight(row["Weight"], where=f"{where} Weight")
            for t in split_list(row.get("ThresholdIDs")):
                if t not in p.threshold_ids:
                    p.threshold_ids.append(t)
        return p


@dataclass
class QueueItem:
    event_id: str
    expiry: datetime | None


class StatQueue:
    """The live state of one profile: items in arrival order and one metric per MetricID."""

    def __init__(
        self, profile: StatQueueProfile, *, rounding_decimals: int = DEFAULT_ROUNDING_DECIMALS
    ) -> None:
        self.profile = profile
        self.items: list[QueueItem] = []
        # ids of the events counted lately, kept across ResetStatQueue: a repeat is not counted
        self.applied = AppliedIds(durable=profile.stored)
        self.metrics: dict[str, Metric] = {
            m.metric_id: new_metric(
                m.metric_id,
                min_items=profile.min_items,
                filter_ids=list(m.filter_ids),
                rounding_decimals=rounding_decimals,
            )
            for m in profile.metrics
        }

    @property
    def tenant(self) -> str:
        return self.profile.tenant

    @property
    def id(self) -> str:
        return self.profile.id

    def expire(self, now: datetime) -> bool:
        """Drop items whose expiry is due; True when something changed."""
        changed = False
        while self.items and self.items[0].expiry is not None and self.items[0].expiry <= now:
            self._evict(0)
            changed = True
        return changed

    def _evict(self, index: int) -> None:
        item = self.items.pop(index)
        for m in self.metrics.values():
            m.remove(item.event_id)

    def process(self, event: CGREvent, passes: Passes, now: datetime) -> None:
        """Expire, make room, append and count ``event``; MetricError leaves the queue as it was
        after expiry."""
        self.expire(now)
        contributions: list[tuple[Metric, Any]] = []
        for m in self.metrics.values():
            if m.filter_ids and not passes(self.tenant, list(m.filter_ids), event, now=now):
                continue
            try:
                contributions.append((m, m.extract(event)))
            except MetricError as exc:
                raise MetricError(f"metric {m.metric_id} of queue {self.id}: {exc}") from None
        if self.profile.queue_length > 0:
            while len(self.items) >= self.profile.queue_length:
                self._evict(0)
        ttl = self.profile.ttl_ns
        expiry = now + timedelta(microseconds=ttl // 1000) if ttl > 0 else None
        self.items.append(QueueItem(event.id, expiry))
        for m, c in contributions:
            m.apply(event.id, c)

    def reset(self) -> None:
        self.items.clear()
        for m in self.metrics.values():
            m.reset()

    def string_metrics(self) -> dict[str, str]:
        return {mid: m.string_value() for mid, m in self.metrics.items()}

    def float_metrics(self) -> dict[str, Decimal]:
        return {mid: m.float_value() for mid, m in self.metrics.items()}

    def native_metrics(self) -> dict[str, Decimal | int]:
        return {mid: m.native_value() for mid, m in self.metrics.items()}

    def v010_json(self) -> dict[str, Any]:
        """engine.StatQueue as v0.10's StatSv1.GetStatQueue answers it: SQItems {EventID,
        ExpiryTime: null without a TTL}, SQMetrics keyed by metric ID, MinItems."""
        return {
            "Tenant": self.tenant, "ID": self.id,
            "SQItems": [{"EventID": i.event_id, "ExpiryTime": go_time(i.expiry) if i.expiry else None}
                        for i in self.items],
            "SQMetrics": {mid: m.v010_json() for mid, m in self.metrics.items()},
            "MinItems": self.profile.min_items,
        }

    # --- persistence ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "items": [
                [i.event_id, i.expiry.isoformat() if i.expiry else None] for i in self.items
            ],
            "metrics": {mid: m.state() for mid, m in self.metrics.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore items and metric entries; metrics no longer in the profile are dropped and
        new ones start empty."""
        self.reset()
        self.items = [
            QueueItem(eid, datetime.fromisoformat(exp) if exp else None)
            for eid, exp in state.get("items", [])
        ]
        for mid, mstate in state.get("metrics", {}).items():
            if mid in self.metrics:
                self.metrics[mid].load_state(mstate)
