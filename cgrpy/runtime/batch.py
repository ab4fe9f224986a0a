"""Batch ``ProcessEvents`` of the profile services: each event's own answer, and repeats (an
at-least-once sender such as cdre's outbox) skipped by event id."""

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
    ids in ``recent``; an engine error is that item's answer, not the batch's. An id is
    remembered as soon as its event was processed, so a batch that fails half way and is sent
    again skips the half already done."""
    out: list[BatchItem[T]] = []
    for ev, ids in items:
        eid = str(ev.id or "")
        if eid and eid in recent:
            out.append(BatchItem(eid, duplicate=True))
            continue
        try:
            item = BatchItem(eid, result=fn(ev, ids))
        except (CGRError, ProfileError, FilterError) as exc:
            item = BatchItem(eid, error=to_cgr_error(exc).word)
        if eid:
            recent.add(eid)
        out.append(item)
    return out
