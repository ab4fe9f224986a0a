"""ThresholdProfile (from Thresholds.csv rows) and the Threshold hit state (docs/profiles.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from cgrpy.filters.activation import ActivationInterval
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

UNLIMITED_HITS = -1


@dataclass
class ThresholdProfile:
    tenant: str
    id: str
    filter_ids: list[str] = field(default_factory=list)
    activation: ActivationInterval | None = None
    max_hits: int = 0  # -1 unlimited; 0 never fires and is never removed
    min_hits: int = 0
    min_sleep_ns: int = 0
    blocker: bool = False
    weight: Decimal = Decimal(0)
    action_ids: list[str] = field(default_factory=list)
    async_: bool = False

    @classmethod
    def from_rows(cls, tenant: str, tid: str, rows: list[dict[str, str]]) -> ThresholdProfile:
        p = cls(tenant, tid)
        where = f"Thresholds {tenant}:{tid}"
        for row in rows:
            p.filter_ids += [f for f in split_list(row.get("FilterIDs")) if f not in p.filter_ids]
            if (row.get("ActivationInterval") or "").strip():
                p.activation = parse_activation(row["ActivationInterval"], where=where)
            if (row.get("MaxHits") or "").strip():
                p.max_hits = parse_int(row["MaxHits"], where=f"{where} MaxHits")
            if (row.get("MinHits") or "").strip():
                p.min_hits = parse_int(row["MinHits"], where=f"{where} MinHits")
            if (row.get("MinSleep") or "").strip():
                try:
                    p.min_sleep_ns = parse_duration(row["MinSleep"])
                except UnitError as exc:
                    raise ProfileError(f"{where} MinSleep: {exc}") from None
            if (row.get("Blocker") or "").strip():
                p.blocker = parse_bool(row["Blocker"], where=f"{where} Blocker")
            if (row.get("Weight") or "").strip():
                p.weight = parse_weight(row["Weight"], where=f"{where} Weight")
            p.action_ids += [a for a in split_list(row.get("ActionIDs")) if a not in p.action_ids]
            if (row.get("Async") or "").strip():
                p.async_ = parse_bool(row["Async"], where=f"{where} Async")
        if p.max_hits < UNLIMITED_HITS:
            raise ProfileError(f"{where} MaxHits: must be -1 (unlimited) or >= 0, got {p.max_hits}")
        return p


@dataclass
class Threshold:
    """Hit state; ``snooze`` is the earliest moment the threshold may fire again."""

    tenant: str
    id: str
    hits: int = 0
    snooze: datetime | None = None
    last_event: str = ""  # ID of the last event counted
    # ids of the events counted lately (saved with the hits): a repeat is not counted again
    applied: AppliedIds = field(default_factory=lambda: AppliedIds(durable=True), compare=False,
                                repr=False)
