"""Profile selection shared by every profile subsystem (docs/profiles.md).

Candidates come from the filter indexes (per tenant, or per ``tenant:context`` for AttributeS),
then each candidate is checked: ActivationInterval against the event Time (only when the event
has one), then its filters. Matches are ordered by Weight descending and, unlike v0.10 (map
order), **ties are broken by profile ID ascending** so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from cgrpy.config import Settings
from cgrpy.event import CGREvent
from cgrpy.filters.activation import ActivationInterval
from cgrpy.filters.errors import FilterError
from cgrpy.filters.filters import FilterS
from cgrpy.filters.index import FilterIndex, index_keys

T = TypeVar("T")

ANY_CONTEXT = "*any"


@dataclass(frozen=True)
class ProfileEntry(Generic[T]):
    """What selection needs to know about one profile; ``payload`` is the subsystem's object."""

    tenant: str
    id: str
    filter_ids: tuple[str, ...]
    activation: ActivationInterval | None
    weight: Decimal
    payload: T
    contexts: tuple[str, ...] = ()  # AttributeS only: partitions "<tenant>:<context>"
    blocker: bool = False

    def active_at(self, event_time: datetime | None) -> bool:
        # v0.10 quirk kept: an event without Time ignores profile activation intervals.
        if self.activation is None or event_time is None:
            return True
        return self.activation.contains(event_time)


def sort_key(e: ProfileEntry[T]) -> tuple[Decimal, str]:
    return (-e.weight, e.id)


class ProfileIndex(Generic[T]):
    """Immutable set of one subsystem's profiles with their filter indexes.

    ``string_fields``/``prefix_fields`` are the ``*_indexed_fields`` config (None = all event
    keys). ``indexed_selects=False`` makes every profile of the tenant a candidate (and, as in
    v0.10, ignores contexts).
    """

    def __init__(
        self,
        filters: FilterS,
        entries: Iterable[ProfileEntry[T]],
        *,
        string_fields: Sequence[str] | None = None,
        prefix_fields: Sequence[str] | None = (),
        indexed_selects: bool = True,
    ) -> None:
        self.filters = filters
        self.string_fields = string_fields
        self.prefix_fields = prefix_fields
        self.indexed_selects = indexed_selects
        self._entries: dict[tuple[str, str], ProfileEntry[T]] = {}
        self._by_tenant: dict[str, list[str]] = {}
        self._index = FilterIndex()
        for e in entries:
            self._add(e)

    def _add(self, e: ProfileEntry[T]) -> None:
        try:
            fl = [self.filters.get(e.tenant, fid) for fid in e.filter_ids]
        except FilterError as exc:
            raise FilterError(f"profile {e.tenant}:{e.id}: {exc}") from None
        keys = index_keys(fl, bool(e.filter_ids))
        self._entries[(e.tenant, e.id)] = e
        self._by_tenant.setdefault(e.tenant, []).append(e.id)
        for part in self._partitions(e):
            self._index.add(part, e.id, keys)

    @staticmethod
    def _partitions(e: ProfileEntry[T]) -> list[str]:
        if not e.contexts:
            return [e.tenant]
        return [f"{e.tenant}:{c}" for c in e.contexts]

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[ProfileEntry[T]]:
        return list(self._entries.values())

    def get(self, tenant: str, profile_id: str) -> ProfileEntry[T] | None:
        return self._entries.get((tenant, profile_id))

    def candidate_ids(self, tenant: str, event: CGREvent, context: str | None = None) -> set[str]:
        """Index lookup; with a context, fall back to ``*any`` only if it found nothing."""
        if not self.indexed_selects:
            return set(self._by_tenant.get(tenant, ()))
        fields = event.event
        if context is None:
            return self._index.match(tenant, fields, self.string_fields, self.prefix_fields)
        ids = self._index.match(f"{tenant}:{context}", fields, self.string_fields,
                                self.prefix_fields)
        if not ids and context != ANY_CONTEXT:
            ids = self._index.match(f"{tenant}:{ANY_CONTEXT}", fields, self.string_fields,
                                    self.prefix_fields)
        return ids

    def candidates(
        self, tenant: str, event: CGREvent, context: str | None = None
    ) -> list[ProfileEntry[T]]:
        """Candidate profiles (not yet evaluated), sorted by ID."""
        ids = self.candidate_ids(tenant, event, context)
        out = [self._entries[(tenant, i)] for i in sorted(ids) if (tenant, i) in self._entries]
        return out

    def matching(
        self,
        tenant: str,
        event: CGREvent,
        context: str | None = None,
        *,
        ids: Sequence[str] | None = None,
        now: datetime | None = None,
        extra_roots: dict | None = None,
    ) -> list[ProfileEntry[T]]:
        """Candidates that pass activation and filters, Weight desc then ID asc.

        ``ids`` replaces the index lookup by an explicit ID list (unknown IDs are skipped).
        FilterError aborts (the caller maps it to SERVER_ERROR).
        """
        if ids is not None:
            cands = [e for i in dict.fromkeys(ids) if (e := self.get(tenant, i)) is not None]
        else:
            cands = self.candidates(tenant, event, context)
        out = []
        for e in cands:
            if not e.active_at(event.time):
                continue
            if self.filters.passes(tenant, e.filter_ids, event, now=now, extra_roots=extra_roots):
                out.append(e)
        out.sort(key=sort_key)
        return out

    def select(
        self,
        tenant: str,
        event: CGREvent,
        context: str | None = None,
        *,
        ids: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> list[T]:
        """Payloads of :meth:`matching`, in order."""
        return [e.payload for e in self.matching(tenant, event, context, ids=ids, now=now)]


def cut_after_blocker(
    items: list[T], is_blocker: Callable[[T], bool]
) -> list[T]:
    """StatS/ThresholdS/ResourceS rule: keep items up to and including the first blocker."""
    for i, it in enumerate(items):
        if is_blocker(it):
            return items[: i + 1]
    return items


# --- selection over a subsystem's own profile objects (StatS, ThresholdS, SupplierS) ------------


class Passes(Protocol):
    """FilterS's ``passes(tenant, filter_ids, event, *, now=None) -> bool``."""

    def __call__(
        self, tenant: str, filter_ids: list[str], event: CGREvent, *, now: datetime | None = None
    ) -> bool: ...


# Optional filter-index lookup (:meth:`ProfileIndex.candidate_ids`): (tenant, event) -> candidate
# profile IDs. Without it every profile of the tenant is a candidate (CGRateS
# ``indexed_selects = false``); with it the v0.10 index semantics apply.
CandidateIDs = Callable[[str, CGREvent], set[str]]


class SelectableProfile(Protocol):
    tenant: str
    id: str
    filter_ids: list[str]
    activation: ActivationInterval | None
    weight: Decimal
    blocker: bool


P = TypeVar("P", bound=SelectableProfile)


def select_profiles(
    candidates: Iterable[P],
    event: CGREvent,
    passes: Passes,
    *,
    now: datetime | None = None,
    use_blocker: bool = True,
) -> list[P]:
    """Candidates that are active and pass their filters, Weight descending then ID ascending,
    cut after a blocker. As in v0.10 the activation interval is only checked when the event
    carries a Time."""
    kept: list[P] = []
    for p in candidates:
        if p.tenant != event.tenant:
            continue
        if p.activation is not None and event.time is not None and not p.activation.contains(
            event.time
        ):
            continue
        if not passes(p.tenant, list(p.filter_ids), event, now=now):
            continue
        kept.append(p)
    kept.sort(key=lambda p: (-p.weight, p.id))
    return cut_after_blocker(kept, lambda p: p.blocker) if use_blocker else kept


def candidate_index(filters: FilterS, profiles: Iterable[Any], settings: Settings, service: str) -> CandidateIDs:
    """FilterS's index over ``profiles`` (objects with tenant/id/filter_ids/weight), honouring
    ``<service>_string_indexed_fields`` / ``<service>_prefix_indexed_fields``."""
    index: ProfileIndex[str] = ProfileIndex(
        filters,
        [ProfileEntry(p.tenant, p.id, tuple(p.filter_ids), None, p.weight, p.id) for p in profiles],
        string_fields=settings.get(f"{service}_string_indexed_fields"),
        prefix_fields=settings.get(f"{service}_prefix_indexed_fields"),
    )
    return index.candidate_ids
