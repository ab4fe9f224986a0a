"""What a service holds in memory, per CGRateS cache partition: counted when it loads its tariff
plan (:func:`cache_counts`) and served to ``CacheSv1.GetCacheStats`` by the ``CacheService``
every :class:`~cgrpy.runtime.server.ServiceRunner` registers.

cgrpy has no lazy cache in front of a DataDB: each service compiles whole tariff-plan files from
the StorDB. So an item count is the number of distinct IDs of a file the service compiled."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cgrates.v1 import cache_pb2_grpc, common_pb2
from cgrpy.tariffplan.columns import TariffPlanRows

# Tariff-plan file -> CGRateS v0.10 cache ID.
CACHE_IDS: dict[str, str] = {
    "Destinations": "*destinations", "Timings": "*timings", "RatingPlans": "*rating_plans",
    "RatingProfiles": "*rating_profiles", "Actions": "*actions", "ActionPlans": "*action_plans",
    "ActionTriggers": "*action_triggers", "SharedGroups": "*shared_groups",
    "Resources": "*resource_profiles", "Stats": "*statqueue_profiles",
    "Thresholds": "*threshold_profiles", "Filters": "*filters", "Suppliers": "*supplier_profiles",
    "Attributes": "*attribute_profiles", "Chargers": "*charger_profiles",
}

# What RALs compiles of a tariff plan (the profile services each name their own file + Filters).
RALS_FILES = ("Destinations", "Timings", "RatingPlans", "RatingProfiles", "Actions", "ActionPlans",
              "ActionTriggers", "SharedGroups")

# The columns naming one item of a file (profiles are per tenant).
_KEYS: dict[str, tuple[str, ...]] = {
    "Destinations": ("Id",), "Timings": ("Tag",), "RatingPlans": ("Id",),
    "RatingProfiles": ("Tenant", "Category", "Subject"), "Actions": ("ActionsId",),
    "ActionPlans": ("Id",), "ActionTriggers": ("Tag",), "SharedGroups": ("Id",),
    "Resources": ("Tenant", "Id"), "Stats": ("Tenant", "Id"), "Thresholds": ("Tenant", "Id"),
}


def cache_counts(rows: TariffPlanRows, files: Iterable[str]) -> dict[str, int]:
    """Distinct items per cache ID of ``files`` in ``rows`` (every file named, 0 when empty)."""
    out: dict[str, int] = {}
    for f in files:
        cols = _KEYS.get(f, ("Tenant", "ID"))
        ids = {tuple((r.get(c) or "").strip() for c in cols) for r in rows.get(f, [])}
        out[CACHE_IDS[f]] = len({k for k in ids if k[-1]})
    return out


class CacheServicer(cache_pb2_grpc.CacheServiceServicer):
    """Answers from the service's ``cache_tpid``/``cache_counts`` (set by its load/reload)."""

    def __init__(self, service: Any) -> None:
        self.service = service

    async def GetCacheStats(self, request: common_pb2.Empty, context: Any) -> common_pb2.ReloadCacheResponse:
        return common_pb2.ReloadCacheResponse(tpid=self.service.cache_tpid, loaded=self.service.cache_counts)
