"""At most once per item: the event ids a stat queue or a threshold has counted lately.

cdre delivers stored CDRs' events to StatS and ThresholdS through an at-least-once outbox: a
batch can arrive twice, at the same replica or at another (the first one died or timed out
after counting part of it; a forward from a non-owner to the owner was sent again). A process's
memory of the ids it saw is not enough: a takeover or the other replica does not have it.

So every partitioned item (stat queue, threshold) keeps :class:`AppliedIds`, the ids of the
events it counted, and an event whose id is there is not counted again. The ids are saved in the
very statement that saves the item's state (one transaction, on the partition lease connection
when partitioned: a data-modifying ``WITH``), so the state a new owner loads and the ids it
loads always agree: an event is either counted and known, or neither.

Bounded: an item keeps the ids of the last :data:`WINDOW_NS` (10 minutes) and at most
:data:`MAX_PER_ITEM` of them; older rows are deleted every :data:`PRUNE_EVERY_NS`. A repeat
comes within the outbox lease (30 s) plus its back-off (at most 10 s) of the first attempt while
any cdre replica lives, so 10 minutes covers it with room; a repeat after that (every cdre down
longer) is counted again, as it would have been before.

Why not a high-water mark of the outbox row id per partition: several cdre replicas claim
disjoint batches concurrently and a failed batch goes back while later ones are delivered, so
ids do not arrive in order; a mark would drop events never counted. Events that do not come
from the outbox (SM's, StatS's StatUpdates) have no row id either.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cgrpy.storage.models.applied import AppliedEvent

WINDOW_NS = 10 * 60 * 1_000_000_000
MAX_PER_ITEM = 100_000
PRUNE_EVERY_NS = 60 * 1_000_000_000

Key = tuple[str, str]  # (tenant, item ID)
Row = tuple[str, int]  # (event ID, applied unix ns)


class AppliedIds:
    """One item's ids counted within the window, oldest first. ``durable``: the item's state is
    saved, so new ids wait in :attr:`pending` for the next save of the item."""

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self._ids: OrderedDict[str, int] = OrderedDict()
        self.pending: list[Row] = []

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str, now_ns: int) -> None:
        if not event_id:
            return  # nothing to recognise a repeat by
        self._ids[event_id] = now_ns
        self._ids.move_to_end(event_id)
        if self.durable:
            self.pending.append((event_id, now_ns))
        self._trim(now_ns)

    def _trim(self, now_ns: int) -> None:
        ids = self._ids
        while ids and (len(ids) > MAX_PER_ITEM or next(iter(ids.values())) < now_ns - WINDOW_NS):
            ids.popitem(last=False)

    def load(self, rows: Iterable[Row]) -> None:
        """The ids as saved (a takeover, a restart): replaces what is kept."""
        self._ids.clear()
        self.pending.clear()
        for event_id, ns in sorted(rows, key=lambda r: r[1]):
            self._ids[event_id] = ns
        if self._ids:
            self._trim(max(self._ids.values()))

    def carry(self, other: AppliedIds) -> None:
        """A reload's new item continues the old one's ids (and its unsaved ones)."""
        self._ids = OrderedDict(other._ids)
        self.pending = list(other.pending)


# --- Postgres, on a partition lease connection (psycopg, one statement each) -------------------

_INSERT = ("INSERT INTO applied_events (kind, tenant, item_id, event_id, applied_ns) "
           "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) "
           "ON CONFLICT DO NOTHING")
_LOAD = ("SELECT tenant, item_id, event_id, applied_ns FROM applied_events "
         "WHERE kind = %s AND applied_ns >= %s "
         "AND (tenant, item_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))")
_PRUNE = "DELETE FROM applied_events WHERE kind = %s AND applied_ns < %s"


def pending_rows(items: Iterable[tuple[Key, AppliedIds]]) -> list[tuple[str, str, str, int]]:
    return [(t, i, eid, ns) for (t, i), a in items for eid, ns in a.pending]


def with_applied(state_sql: str, state_params: list[Any], kind: str,
                 rows: list[tuple[str, str, str, int]]) -> tuple[str, list[Any]]:
    """``state_sql`` (an INSERT/UPDATE of the items' state) and the insert of ``rows`` as ONE
    statement, so both commit or neither does."""
    if not rows:
        return state_sql, state_params
    cols = [list(c) for c in zip(*rows, strict=True)]
    return (f"WITH state AS ({state_sql}) {_INSERT}",
            [*state_params, kind, *cols])


def load_keys(conn: Any, kind: str, keys: list[Key], now_ns: int) -> dict[Key, list[Row]]:
    if not keys:
        return {}
    rows = conn.execute(_LOAD, (kind, now_ns - WINDOW_NS, [t for t, _ in keys],
                                [i for _, i in keys])).fetchall()
    out: dict[Key, list[Row]] = {}
    for t, i, eid, ns in rows:
        out.setdefault((t, i), []).append((eid, ns))
    return out


class Pruner:
    """Deletes rows older than the window, at most every :data:`PRUNE_EVERY_NS`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._last = 0

    def due(self, now_ns: int) -> bool:
        if now_ns - self._last < PRUNE_EVERY_NS:
            return False
        self._last = now_ns
        return True

    def prune_conn(self, conn: Any, now_ns: int) -> None:
        if self.due(now_ns):
            conn.execute(_PRUNE, (self.kind, now_ns - WINDOW_NS))

    def prune_session(self, s: Session, now_ns: int) -> None:
        if self.due(now_ns):
            s.execute(delete(AppliedEvent).where(AppliedEvent.kind == self.kind,
                                                 AppliedEvent.applied_ns < now_ns - WINDOW_NS))


# --- one process (SQLite or Postgres), through a SQLAlchemy session ------------------------------

def add_session(s: Session, kind: str, rows: list[tuple[str, str, str, int]]) -> None:
    """Add ``rows`` in the session that saves the items' state (same transaction)."""
    for t, i, eid, ns in rows:
        s.merge(AppliedEvent(kind=kind, tenant=t, item_id=i, event_id=eid, applied_ns=ns))


def load_session(s: Session, kind: str, now_ns: int) -> dict[Key, list[Row]]:
    rows = s.execute(select(AppliedEvent.tenant, AppliedEvent.item_id, AppliedEvent.event_id,
                            AppliedEvent.applied_ns)
                     .where(AppliedEvent.kind == kind,
                            AppliedEvent.applied_ns >= now_ns - WINDOW_NS)).all()
    out: dict[Key, list[Row]] = {}
    for t, i, eid, ns in rows:
        out.setdefault((t, i), []).append((eid, ns))
    return out
