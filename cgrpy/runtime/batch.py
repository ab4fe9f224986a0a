"""Batch ``ProcessEvents`` of the profile services: each event's own answer, and repeats (an
at-least-once sender such as cdre's outbox) answered ``duplicate`` by event id.

:class:`RecentIds` is this process's quick answer only (a repeat of a batch it completed). That
an event is counted at most once per stat queue or threshold, across replicas and takeovers, is
the items' own recent ids (``cgrpy.storage.applied``), saved with their state."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cgrpy.errors import CGRError
from cgrpy.filters.errors import FilterError
from cgrpy.runtime.engine_runner import to_cgr_error
from cgrpy.tariffplan.rows import ProfileError

T = TypeVar("T")


def ids_or_none(ids: Sequence[str]) -> list[str] | None:
    return list(ids) or None


class RecentIds:
    """Ids of events processed lately, oldest forgotten first (bounded memory), so a batch
    sender that delivers at least once (cdre's outbox) has a repeat skipped rather than counted
    twice. The window is per process: a repeat after a restart is counted again."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, event_id: str) -> bool:
        with self._lock:
            return event_id in self._ids

    def add(self, event_id: str) -> None:
        with self._lock:
            self._ids[event_id] = None
            if len(self._ids) > self.size:
                self._ids.popitem(last=False)


@dataclass
class BatchItem(Generic[T]):
    """One event's outcome in a batch ``ProcessEvents``."""

    event_id: str
    result: T | None = None
    error: str = ""  # the CGRateS error word ProcessEvent would have answered
    duplicate: bool = False


def process_each(
    fn: Callable[[Any, Any], T], items: Sequence[tuple[Any, Any]], recent: RecentIds
) -> list[BatchItem[T]]:
    """Run ``fn(event, ids)`` for every item in order (in the engine thread), skipping event
    ids in ``recent`` or earlier in the batch; an engine error is that item's answer, not the
    batch's. Ids are remembered by :func:`remember` once the whole batch is done (the parts
    owned by other replicas too): a batch that failed half way is processed again, and each
    queue or threshold skips what it counted already."""
    out: list[BatchItem[T]] = []
    seen: set[str] = set()
    for ev, ids in items:
        eid = str(ev.id or "")
        if eid and (eid in seen or eid in recent):
            out.append(BatchItem(eid, duplicate=True))
            continue
        seen.add(eid)
        try:
            item = BatchItem(eid, result=fn(ev, ids))
        except (CGRError, ProfileError, FilterError) as exc:
            item = BatchItem(eid, error=to_cgr_error(exc).word)
        out.append(item)
    return out


def remember(done: Sequence[BatchItem[Any]], recent: RecentIds) -> None:
    """The batch's events are done everywhere: a repeat of one is answered ``duplicate``."""
    for d in done:
        if d.event_id and not d.duplicate:
            recent.add(d.event_id)
