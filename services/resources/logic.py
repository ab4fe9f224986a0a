"""ResourceS logic (CGRateS v0.10), pure and synchronous: profiles, live usages, the decisions.

A *resource* is the live side of a ResourceProfile: the usages (``UsageID -> Units``) it holds
now. A request matches resources like every profile subsystem does (filters, weight descending,
cut after the first blocker) and then:

* **authorize** (dry run): the first matched resource with room (``Limit == -1`` or ``Limit >=
  TotalUsage + Units``) answers its AllocationMessage, or its ID when the message is empty; none
  has room -> ``RESOURCE_UNAUTHORIZED``. An earlier usage of the same UsageID still counts.
* **allocate**: the same walk with an earlier usage of the same UsageID left out (re-allocation
  replaces it, so a retried allocation takes nothing twice); when one resource has room the usage
  is recorded on *every* matched resource, also those over their limit (so a group limit and a
  per-account limit both count the call). None has room -> ``RESOURCE_UNAVAILABLE``. Unlike
  v0.10, a refused re-allocation keeps the earlier usage (a refusal changes nothing).
* **release**: the UsageID leaves every matched resource.

An event no resource matches answers ``NOT_FOUND`` to all three, as v0.10 does (SM reads that
as "no limit applies to this call").

A usage's lifetime is the request's UsageTTL when given and non-zero, else the profile's when
>= 0, else unlimited. -1 = until released; 0 = not recorded at all (a pure "is there room" check,
as v0.10); > 0 = it expires that long after it was recorded. Authorize and allocate first drop
the expired usages of the resources they walk.

The resources a UsageID matched are remembered (``UsageID -> resource IDs``, a bounded LRU) so the
allocation and release of one call hit the same resources as its authorization even when the
event changed in between; a release forgets them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.filters.activation import ActivationInterval
from cgrpy.filters.selection import ProfileEntry, ProfileIndex, cut_after_blocker

UNLIMITED = -1.0
NONE_IDS = "*none"
MATCH_CACHE_SIZE = 100_000


@dataclass(frozen=True)
class ResourceProfile:
    tenant: str
    id: str
    filter_ids: tuple[str, ...] = ()
    activation: ActivationInterval | None = None
    usage_ttl_ns: int = 0
    limit: float = 0.0
    allocation_message: str = ""
    blocker: bool = False
    stored: bool = False
    weight: Decimal = Decimal(0)
    threshold_ids: tuple[str, ...] = ()

    @property
    def notifies_thresholds(self) -> bool:
        return self.threshold_ids != (NONE_IDS,)


@dataclass
class Usage:
    id: str
    units: float
    expiry_ns: int = 0  # Unix ns; 0 = until released


@dataclass
class Resource:
    tenant: str
    id: str
    usages: dict[str, Usage] = field(default_factory=dict)

    def total_usage(self) -> float:
        return sum(u.units for u in self.usages.values())

    def ttl_idx(self) -> list[str]:
        """v0.10's TTLIdx: the usages that expire, oldest expiry first."""
        return [u.id for u in sorted(self.usages.values(), key=lambda u: u.expiry_ns) if u.expiry_ns]

    def expired(self, now_ns: int) -> list[str]:
        return [u.id for u in self.usages.values() if u.expiry_ns and u.expiry_ns <= now_ns]


# (tenant, resource ID, usage ID): a usage row that changed (written or deleted by the store).
UsageKey = tuple[str, str, str]


@dataclass
class Change:
    """What one operation changed: each usage row touched with its value before (to write the new
    one, or undo the operation when that write fails) and the resources to tell ThresholdS about."""

    before: dict[UsageKey, Usage | None] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)
    notify: bool = False  # allocate/release tell ThresholdS; expiry seen by an authorize does not

    @property
    def keys(self) -> list[UsageKey]:
        return list(self.before)

    def touch(self, r: Resource, usage_id: str, old: Usage | None) -> None:
        self.before.setdefault((r.tenant, r.id, usage_id), old)
        if all(x is not r for x in self.resources):
            self.resources.append(r)


@dataclass(frozen=True)
class UsageRequest:
    event: CGREvent
    usage_id: str
    units: float = 1.0
    usage_ttl_ns: int | None = None

    def check(self) -> None:
        if not self.usage_id:
            raise CGRError("MANDATORY_IE_MISSING", "[UsageID]")
        if not self.event.id:
            raise CGRError("MANDATORY_IE_MISSING", "[ID]")
        if self.units < 0 or self.units != self.units:
            raise CGRError("INVALID_ARGUMENT", f"Units must be a number >= 0 (got {self.units})")


def effective_ttl(request_ttl: int | None, profile: ResourceProfile) -> int | None:
    """The usage lifetime in ns: None or -1 = until released, 0 = do not record."""
    if request_ttl:
        return request_ttl
    if profile.usage_ttl_ns >= 0:
        return profile.usage_ttl_ns
    return None


def has_room(p: ResourceProfile, r: Resource, units: float, leave_out: str | None = None) -> bool:
    if p.limit == UNLIMITED:
        return True
    total = sum(u.units for uid, u in r.usages.items() if uid != leave_out)
    return p.limit >= total + units


class ResourceEngine:
    """Profiles (immutable per tariff plan) and resources (live usages) of one process."""

    def __init__(self, profiles: Iterable[ResourceProfile], index: ProfileIndex[ResourceProfile],
                 usages: dict[tuple[str, str], dict[str, Usage]] | None = None) -> None:
        self.profiles: dict[tuple[str, str], ResourceProfile] = {(p.tenant, p.id): p for p in profiles}
        self.index = index
        saved = usages or {}
        self.resources: dict[tuple[str, str], Resource] = {
            k: Resource(p.tenant, p.id, dict(saved.get(k, {}))) for k, p in self.profiles.items()}
        self._matches: OrderedDict[tuple[str, str], tuple[str, ...]] = OrderedDict()

    # --- lookups --------------------------------------------------------------------------------

    def profile(self, tenant: str, rid: str) -> ResourceProfile:
        if not rid:
            raise CGRError("MANDATORY_IE_MISSING", "[ID]")
        p = self.profiles.get((tenant, rid))
        if p is None:
            raise CGRError("NOT_FOUND")
        return p

    def resource(self, tenant: str, rid: str) -> Resource:
        self.profile(tenant, rid)
        return self.resources[(tenant, rid)]

    def ids(self, tenant: str) -> list[str]:
        out = sorted(rid for (t, rid) in self.profiles if t == tenant)
        if not out:
            raise CGRError("NOT_FOUND")
        return out

    def matching(self, req: UsageRequest) -> list[tuple[ResourceProfile, Resource]]:
        """Matched resources in order (remembered per UsageID); NOT_FOUND when none."""
        key = (req.event.tenant, req.usage_id)
        ids = self._matches.get(key)
        if ids is None:
            found = [p for p in self.index.select(req.event.tenant, req.event)]
            ids = tuple(p.id for p in cut_after_blocker(found, lambda p: p.blocker))
            self._remember(key, ids)
        else:
            self._matches.move_to_end(key)
        out = [(self.profiles[(req.event.tenant, i)], self.resources[(req.event.tenant, i)])
               for i in ids if (req.event.tenant, i) in self.profiles]
        if not out:
            raise CGRError("NOT_FOUND")
        return out

    def _remember(self, key: tuple[str, str], ids: tuple[str, ...]) -> None:
        self._matches[key] = ids
        while len(self._matches) > MATCH_CACHE_SIZE:
            self._matches.popitem(last=False)

    # --- operations -----------------------------------------------------------------------------

    def authorize(self, req: UsageRequest, now_ns: int, change: Change) -> str:
        req.check()
        matched = self.matching(req)
        self._expire(matched, now_ns, change)
        for p, r in matched:
            if has_room(p, r, req.units):
                return p.allocation_message or p.id
        raise CGRError("RESOURCE_UNAUTHORIZED")

    def allocate(self, req: UsageRequest, now_ns: int, change: Change) -> str:
        req.check()
        matched = self.matching(req)
        self._expire(matched, now_ns, change)
        message = next((p.allocation_message or p.id for p, r in matched
                        if has_room(p, r, req.units, leave_out=req.usage_id)), None)
        if message is None:
            raise CGRError("RESOURCE_UNAVAILABLE")
        change.notify = True
        for p, r in matched:
            ttl = effective_ttl(req.usage_ttl_ns, p)
            old = r.usages.pop(req.usage_id, None)
            if ttl != 0:
                expiry = now_ns + ttl if ttl is not None and ttl > 0 else 0
                r.usages[req.usage_id] = Usage(req.usage_id, req.units, expiry)
            change.touch(r, req.usage_id, old)
        return message

    def release(self, req: UsageRequest, change: Change) -> None:
        req.check()
        matched = self.matching(req)
        missing = []
        change.notify = True
        for p, r in matched:
            if (old := r.usages.pop(req.usage_id, None)) is not None:
                change.touch(r, req.usage_id, old)
            elif (ttl := effective_ttl(req.usage_ttl_ns, p)) is not None and ttl > 0:
                missing.append(r.id)
        self._matches.pop((req.event.tenant, req.usage_id), None)
        if missing:
            raise CGRError("SERVER_ERROR", f"cannot find usage record with id: {req.usage_id} "
                                           f"on {','.join(missing)}")

    def release_anywhere(self, tenant: str, usage_id: str, change: Change) -> list[str]:
        """Clear ``usage_id`` from every resource of ``tenant`` holding it (no event needed)."""
        if not usage_id:
            raise CGRError("MANDATORY_IE_MISSING", "[UsageID]")
        out = []
        change.notify = True
        for (t, _rid), r in self.resources.items():
            if t == tenant and (old := r.usages.pop(usage_id, None)) is not None:
                change.touch(r, usage_id, old)
                out.append(r.id)
        self._matches.pop((tenant, usage_id), None)
        return sorted(out)

    def _expire(self, matched: list[tuple[ResourceProfile, Resource]], now_ns: int, change: Change) -> None:
        for _p, r in matched:
            for uid in r.expired(now_ns):
                change.touch(r, uid, r.usages.pop(uid))

    # --- state ----------------------------------------------------------------------------------

    def snapshot(self) -> dict[tuple[str, str], dict[str, Usage]]:
        """Copies of the usages of every resource (carried into the engine of a reload)."""
        return {k: {uid: Usage(u.id, u.units, u.expiry_ns) for uid, u in r.usages.items()}
                for k, r in self.resources.items()}

    def undo(self, change: Change) -> None:
        """Put every usage ``change`` touched back as it was (its write failed)."""
        for (t, rid, uid), old in change.before.items():
            r = self.resources.get((t, rid))
            if r is None:
                continue
            if old is None:
                r.usages.pop(uid, None)
            else:
                r.usages[uid] = old

    def adopt(self, saved: dict[tuple[str, str], dict[str, Usage]]) -> None:
        """The usages become ``saved`` (what the last owner committed, read when this replica took
        the resources over); what this process remembered of them is forgotten."""
        for k, r in self.resources.items():
            r.usages = dict(saved.get(k, {}))
        self._matches.clear()

    def usages_of(self, keys: Iterable[UsageKey],
                  every: bool = False) -> list[tuple[UsageKey, Usage | None]]:
        """The current value of each changed usage row (None = deleted), of Stored profiles only
        unless ``every`` (replicas: a takeover must continue every resource's count)."""
        out = []
        for t, rid, uid in sorted(keys):
            p = self.profiles.get((t, rid))
            if p is not None and (p.stored or every):
                out.append(((t, rid, uid), self.resources[(t, rid)].usages.get(uid)))
        return out


def build_index(filters: Any, profiles: Iterable[ResourceProfile], string_fields: Any,
                prefix_fields: Any) -> ProfileIndex[ResourceProfile]:
    entries = [ProfileEntry(p.tenant, p.id, p.filter_ids, p.activation, p.weight, p, blocker=p.blocker)
               for p in profiles]
    return ProfileIndex(filters, entries, string_fields=string_fields, prefix_fields=prefix_fields)


# --- CGRateS v0.10 JSON --------------------------------------------------------------------------


def _number(v: float) -> int | float:
    return int(v) if v == int(v) else v


def usage_json(tenant: str, u: Usage, go_time: Callable[[int], str]) -> dict[str, Any]:
    return {"Tenant": tenant, "ID": u.id, "ExpiryTime": go_time(u.expiry_ns),
            "Units": _number(u.units)}


def resource_json(r: Resource, go_time: Callable[[int], str]) -> dict[str, Any]:
    ttl_idx = r.ttl_idx()
    return {"Tenant": r.tenant, "ID": r.id,
            "Usages": {uid: usage_json(r.tenant, u, go_time) for uid, u in sorted(r.usages.items())},
            "TTLIdx": ttl_idx or None}


def profile_json(p: ResourceProfile) -> dict[str, Any]:
    return {
        "Tenant": p.tenant, "ID": p.id, "FilterIDs": list(p.filter_ids),
        "ActivationInterval": p.activation.to_dict() if p.activation else None,
        "UsageTTL": p.usage_ttl_ns, "Limit": _number(p.limit), "AllocationMessage": p.allocation_message,
        "Blocker": p.blocker, "Stored": p.stored, "Weight": p.weight, "ThresholdIDs": list(p.threshold_ids),
    }
