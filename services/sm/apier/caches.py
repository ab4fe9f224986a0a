"""CacheSv1 for scripts that call it after provisioning: ``ReloadCache``, ``LoadCache``,
``FlushCache``, ``Clear``, ``GetCacheStats``.

cgrpy has no lazy cache in front of a DataDB: every service compiles whole tariff-plan files from
the StorDB (the configured TPID). So each call maps to *reloading the services that hold the named
kinds*: afterwards a service holds exactly what the StorDB holds, which is what a CGRateS cache
refilled from its DataDB would hold. A reload is a real ``ReloadCache`` on the service (it
answers only when the new plan is compiled and swapped in, and keeps the old one on error), so
"OK" means done; a failed service is named in the error.

* ``ReloadCache``/``LoadCache`` (AttrReloadCache): v0.10 reloads every kind whose ID list is
  absent (``null`` = all of that kind); here each service whose kinds are not all given as empty
  lists is reloaded (a service reloads all its items, not only the named IDs). ``FlushAll`` = all.
* ``FlushCache``: the services of the kinds given non-empty (all with ``FlushAll``).
* ``Clear`` (CacheIDs; none = all): the services holding those cache partitions. Partitions cgrpy
  keeps no copy of (``*rpc_responses``, ``*closed_sessions``, ...) have nothing to clear.
* ``GetCacheStats`` (CacheIDs; none = all): per cache ID ``{"Items", "Groups"}``, ``Items`` = the
  distinct IDs each service compiled at its last load (``CacheService.GetCacheStats``); ``Groups``
  is always 0 (no cache groups here). ``*filters`` is the largest count among the services (each
  compiles the plan's Filters).

Dispatcher partitions are ``NOT_IMPLEMENTED`` (no DispatcherS in cgrpy); an unknown cache ID or
argument key is an error, not ignored.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cgrates.v1 import cache_pb2_grpc, common_pb2
from cgrpy.errors import CGRError
from cgrpy.runtime.cache import CACHE_IDS
from cgrpy.runtime.reload import reload_service
from services.sm.apier.args import Args, bad
from services.sm.apier.backends import STUBS
from services.sm.apier.core import Context, method

RATING = ("rals",)
# The services that compile a tariff plan (ReloadCache); those in this suite are asked.
STUBS_RELOADABLE = ("rals", "attributes", "chargers", "suppliers", "stats", "thresholds", "resources")
PROFILE_SERVICES = ("attributes", "chargers", "suppliers", "stats", "thresholds", "resources")

# AttrReloadCache ID lists -> the services compiling that kind.
ARG_SERVICES: dict[str, tuple[str, ...]] = {
    "DestinationIDs": RATING, "ReverseDestinationIDs": RATING, "RatingPlanIDs": RATING,
    "RatingProfileIDs": RATING, "ActionIDs": RATING, "ActionPlanIDs": RATING,
    "AccountActionPlanIDs": RATING, "ActionTriggerIDs": RATING, "SharedGroupIDs": RATING,
    "TimingIDs": RATING, "ResourceProfileIDs": ("resources",), "ResourceIDs": ("resources",),
    "StatsQueueIDs": ("stats",), "StatsQueueProfileIDs": ("stats",), "ThresholdIDs": ("thresholds",),
    "ThresholdProfileIDs": ("thresholds",), "FilterIDs": PROFILE_SERVICES,
    "SupplierProfileIDs": ("suppliers",), "AttributeProfileIDs": ("attributes",),
    "ChargerProfileIDs": ("chargers",),
}
_DISPATCHER_ARGS = ("DispatcherProfileIDs", "DispatcherHostIDs", "DispatcherRoutesIDs")
_OTHER_ARGS = ("FlushAll", "Tenant", "APIKey", "RouteID", "ArgDispatcher")

_FILE_SERVICE = {
    "Destinations": RATING, "Timings": RATING, "RatingPlans": RATING, "RatingProfiles": RATING,
    "Actions": RATING, "ActionPlans": RATING, "ActionTriggers": RATING, "SharedGroups": RATING,
    "Resources": ("resources",), "Stats": ("stats",), "Thresholds": ("thresholds",),
    "Filters": PROFILE_SERVICES, "Suppliers": ("suppliers",), "Attributes": ("attributes",),
    "Chargers": ("chargers",),
}
# cache ID -> services holding it (the tariff-plan ones, plus their runtime twins)
CACHE_SERVICES: dict[str, tuple[str, ...]] = {CACHE_IDS[f]: s for f, s in _FILE_SERVICE.items()}
CACHE_SERVICES.update({
    "*reverse_destinations": RATING, "*account_action_plans": RATING, "*statqueues": ("stats",),
    "*thresholds": ("thresholds",), "*resources": ("resources",), "*event_resources": ("resources",),
})
# v0.10 partitions cgrpy keeps no copy of: nothing to clear, nothing to count
NOT_HELD = ("*rpc_responses", "*closed_sessions", "*cdr_ids", "*load_ids", "*rpc_connections",
            "*diameter_messages", "*rating_profiles_tmp", "*uch")


def _present(services: tuple[str, ...] | list[str]) -> list[str]:
    """The services this suite has (ResourceS may not be part of it)."""
    return [s for s in dict.fromkeys(services) if s in STUBS]


def _check_keys(a: Args) -> None:
    for k in a.raw:
        if any(k.lower() == d.lower() for d in _DISPATCHER_ARGS) and a.get(k) not in (None, []):
            raise CGRError("NOT_IMPLEMENTED", k)
        known = (*ARG_SERVICES, *_DISPATCHER_ARGS, *_OTHER_ARGS)
        if not any(k.lower() == n.lower() for n in known):
            raise bad(k, "unknown argument")
        v = a.get(k)
        if k.lower() in (n.lower() for n in ARG_SERVICES) and v is not None and (
                not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            raise bad(k, f"expected a list of IDs or null, got {v!r}")


async def _reload(ctx: Context, services: list[str]) -> str:
    """ReloadCache on every replica of each service (each process holds its own compiled copy:
    one left out would go on serving the old plan); "OK" once all have, else the failures."""
    timeout = max(ctx.backends.timeout, 60.0)
    results = await asyncio.gather(*(asyncio.to_thread(reload_service, ctx.settings, s, ctx.settings.tpid, timeout)
                                     for s in services))
    failed = [f"{s}: {r}" for s, r in zip(services, results, strict=True) if r != "reloaded"]
    if failed:
        raise CGRError("SERVER_ERROR", "reload failed: " + "; ".join(failed))
    return "OK"


@method("CacheSv1.ReloadCache", "CacheSv1.LoadCache")
async def reload_cache(ctx: Context, a: Args) -> Any:
    _check_keys(a)
    if a.bool("FlushAll"):
        return await _reload(ctx, _present(list(STUBS_RELOADABLE)))
    by_service: dict[str, list[bool]] = {}
    for arg, services in ARG_SERVICES.items():
        given = a.get(arg)
        for s in services:  # a kind named with an empty list is the only way to leave it out
            by_service.setdefault(s, []).append(given is None or bool(a.strs(arg)))
    wanted = [s for s, kinds in by_service.items() if any(kinds)]
    return await _reload(ctx, _present(wanted))


@method("CacheSv1.FlushCache")
async def flush_cache(ctx: Context, a: Args) -> Any:
    _check_keys(a)
    if a.bool("FlushAll"):
        return await _reload(ctx, _present(list(STUBS_RELOADABLE)))
    wanted = [s for arg, services in ARG_SERVICES.items() if a.get(arg) is not None and a.strs(arg)
              for s in services]
    return await _reload(ctx, _present(wanted)) if wanted else "OK"


def _cache_ids(a: Args) -> list[str]:
    ids = a.strs("CacheIDs")
    for cid in ids:
        if cid.startswith("*dispatcher"):
            raise CGRError("NOT_IMPLEMENTED", cid)
        if cid not in CACHE_SERVICES and cid not in NOT_HELD:
            raise bad("CacheIDs", f"unknown cache ID {cid}")
    return ids


@method("CacheSv1.Clear")
async def clear(ctx: Context, a: Args) -> Any:
    ids = _cache_ids(a)
    if not ids:
        return await _reload(ctx, _present(list(STUBS_RELOADABLE)))
    wanted = [s for cid in ids for s in CACHE_SERVICES.get(cid, ())]
    return await _reload(ctx, _present(wanted)) if wanted else "OK"


async def _stats(ctx: Context, service: str) -> dict[str, int]:
    stub = cache_pb2_grpc.CacheServiceStub(ctx.backends._channel(service))  # noqa: SLF001 - shared channel
    try:
        res = await stub.GetCacheStats(common_pb2.Empty(), timeout=ctx.backends.timeout)
    except Exception as exc:  # grpc.aio.AioRpcError: the service is down or too old
        raise CGRError("SERVER_ERROR", f"{service}: cache stats unavailable: {exc}") from None
    return dict(res.loaded)


@method("CacheSv1.GetCacheStats")
async def get_cache_stats(ctx: Context, a: Args) -> Any:
    ids = _cache_ids(a)
    services = _present(list(STUBS_RELOADABLE))
    counts = await asyncio.gather(*(_stats(ctx, s) for s in services))
    merged: dict[str, int] = {}
    for c in counts:
        for cid, n in c.items():
            merged[cid] = max(merged.get(cid, 0), n)  # *filters: every profile service has them
    # one live queue / threshold per profile at load (a threshold spent at MaxHits is still counted)
    merged.setdefault("*statqueues", merged.get("*statqueue_profiles", 0))
    merged.setdefault("*thresholds", merged.get("*threshold_profiles", 0))
    wanted = ids or sorted(CACHE_SERVICES)
    return {cid: {"Items": merged.get(cid, 0), "Groups": 0} for cid in wanted}

