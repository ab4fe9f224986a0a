"""Clients of StatS and ThresholdS send an event to the replica that owns what it will update.

StatS and ThresholdS split their items (stat queues, thresholds; key ``tenant:ID``) into
partitions owned by one replica each (``cgrpy.runtime.partitions``). A replica that gets an
event matches it and passes the matched items it does not own to their owner: one more hop,
which with two replicas and a client taking them in turn was half the events (every event of a
batch sent to the wrong one). Which items an event matches is known only after matching it
against the profiles and filters, which the client does not have. What the client can know:

* the IDs the request names (``stat_ids``/``threshold_ids``: StatS's StatUpdate events name
  the queue's ThresholdIDs): their keys exactly;
* otherwise the tenant: an event only ever matches its own tenant's items, and a tenant has few
  (``GetQueueIDs``/``GetThresholdIDs``, asked in the background at most every
  :data:`REFRESH_S`). The event goes to the replica owning most of them (``Balancer``, with the
  owners every replica reports by ``GetOwnership``).

So when all of a tenant's items are owned by one replica, its events take no hop at all; and
they come to be: a partition no replica holds yet is taken by the first replica asked about it,
which is the one the tenant's events are routed to. When a tenant's items are split between
replicas, an event matching items on both still takes the hop for the others' part, as before.
Results do not change: the replica asked still matches the event and passes on whatever it does
not own; a stale or missing answer (an owner that just changed, a tenant not looked up yet)
costs only that hop.

A batch is split by tenant, each tenant's events in one request in their order (an item belongs
to one tenant, so no item sees its events reordered); the tenants' requests go concurrently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from cgrpy.runtime.logs import get_logger

log = get_logger("owner_routes")

T = TypeVar("T")

REFRESH_S = 10.0  # how often a tenant's item IDs are asked again (profiles loaded meanwhile)

# A tenant's item IDs (GetQueueIDs / GetThresholdIDs): [] when it has none.
IdsLookup = Callable[[str], Awaitable[Sequence[str]]]


def keys_of(tenant: str, ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{tenant}:{i}" for i in ids)


class TenantRoutes:
    """Per tenant, the partition keys of its items, for ``ServiceClient.call(route=...)``."""

    def __init__(self, lookup: IdsLookup, refresh_s: float | None = None) -> None:
        self._lookup = lookup
        self._refresh_s = refresh_s
        self._keys: dict[str, tuple[str, ...]] = {}
        self._asked: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def route(self, tenant: str, named: Sequence[str] = ()) -> tuple[str, ...]:
        """The keys an event of ``tenant`` naming ``named`` IDs will touch (no I/O; empty while
        the tenant's IDs are not known yet: the call then takes the rotation)."""
        if named:
            return keys_of(tenant, named)
        self._refresh(tenant)
        return self._keys.get(tenant, ())

    def know(self, tenant: str, ids: Sequence[str]) -> None:
        """A tenant's IDs learnt elsewhere (SM's check whether the tenant has any)."""
        self._keys[tenant] = keys_of(tenant, ids)
        self._asked[tenant] = time.monotonic()

    def _refresh(self, tenant: str) -> None:
        now = time.monotonic()
        every = REFRESH_S if self._refresh_s is None else self._refresh_s
        if now - self._asked.get(tenant, -1e9) < every:
            return
        self._asked[tenant] = now
        task = asyncio.get_running_loop().create_task(self._ask(tenant))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ask(self, tenant: str) -> None:
        try:
            ids = await self._lookup(tenant)
        except Exception as exc:  # noqa: BLE001 - unknown: the tenant's events take the rotation
            log.info("owner_routes.lookup_failed", tenant=tenant, error=str(exc))
            return
        self._keys[tenant] = keys_of(tenant, ids)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def per_tenant(items: Sequence[T], tenant_of: Callable[[T], str],
                     send: Callable[[list[T]], Awaitable[None]]) -> None:
    """``send`` each tenant's items (in the batch's order) concurrently; the first failure is
    raised once all are done (a batch sender sends the whole batch again; the receivers skip
    the events they counted)."""
    parts: dict[str, list[T]] = {}
    for item in items:
        parts.setdefault(tenant_of(item), []).append(item)
    results = await asyncio.gather(*(send(p) for p in parts.values()), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r


def batch_route(routes: TenantRoutes, tenant: str, named: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """The keys of one tenant's part of a batch: every event's (named IDs, or the tenant's)."""
    keys: list[str] = []
    tenant_keys = False
    for ids in named:
        if ids:
            keys += keys_of(tenant, ids)
        elif not tenant_keys:
            keys += routes.route(tenant)
            tenant_keys = True
    return tuple(keys)
