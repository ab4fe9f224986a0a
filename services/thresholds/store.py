"""Persistence of threshold state (table ``threshold_states``) so a restart keeps hits, snooze
and the removal of thresholds that reached MaxHits, and a replica taking a threshold's partition
over continues its counts. Each write also adds the ids of the events counted since the last
one (``applied_events``, :mod:`cgrpy.storage.applied`), in the same statement."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cgrpy.runtime.partitions import PartitionLeases, partition_of
from cgrpy.storage import applied
from cgrpy.storage.models.thresholds import ThresholdState
from cgrpy.units import from_unix_nano, to_unix_nano
from services.thresholds.state import Threshold


def threshold_key(tenant: str, threshold_id: str) -> str:
    """A threshold's key in the partitions (``cgrpy.runtime.partitions.partition_of``)."""
    return f"{tenant}:{threshold_id}"


KIND = "thresholds"  # applied_events.kind
Pending = list[tuple[str, str, str, int]]


class ThresholdStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pruner = applied.Pruner(KIND)

    def save(self, t: Threshold) -> None:
        rows = applied.pending_rows([((t.tenant, t.id), t.applied)])
        self._write(t.tenant, t.id, t.hits, to_unix_nano(t.snooze), removed=False,
                    last=t.last_event, rows=rows)
        t.applied.pending.clear()

    def mark_removed(self, tenant: str, threshold_id: str, last_event: str = "") -> None:
        # removed: it matches nothing any more, so its ids need not be kept
        self._write(tenant, threshold_id, 0, 0, removed=True, last=last_event, rows=[])

    def _write(self, tenant: str, tid: str, hits: int, snooze_ns: int, *, removed: bool,
               last: str, rows: Pending) -> None:
        with Session(self.engine) as s, s.begin():
            s.merge(ThresholdState(tenant=tenant, threshold_id=tid, hits=hits,
                                   snooze_ns=snooze_ns, removed=removed, last_event=last))
            applied.add_session(s, KIND, rows)
            self.pruner.prune_session(s, _now_ns())

    def load_applied(self) -> dict[tuple[str, str], list[tuple[str, int]]]:
        with Session(self.engine) as s:
            return applied.load_session(s, KIND, _now_ns())

    def load_all(self) -> dict[tuple[str, str], Threshold | None]:
        """Saved state per threshold; ``None`` for one that was removed at MaxHits."""
        with Session(self.engine) as s:
            rows = s.scalars(select(ThresholdState)).all()
            return {
                (r.tenant, r.threshold_id): None if r.removed else Threshold(
                    r.tenant, r.threshold_id, r.hits, from_unix_nano(r.snooze_ns), r.last_event)
                for r in rows
            }


def _now_ns() -> int:
    return to_unix_nano(datetime.now(UTC))


_UPSERT = ("INSERT INTO threshold_states (tenant, threshold_id, hits, snooze_ns, removed, last_event) "
           "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant, threshold_id) DO UPDATE SET "
           "hits = EXCLUDED.hits, snooze_ns = EXCLUDED.snooze_ns, removed = EXCLUDED.removed, "
           "last_event = EXCLUDED.last_event")
_LOAD = ("SELECT tenant, threshold_id, hits, snooze_ns, removed, last_event FROM threshold_states "
         "WHERE (tenant, threshold_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))")


class FencedThresholdStore(ThresholdStore):
    """Partitioned ThresholdS on Postgres: state is written on the partition lease connection,
    so a write commits only while this process owns the threshold's partition, and read when
    the partition is taken, not at start."""

    def __init__(self, engine: Engine, leases: PartitionLeases) -> None:
        super().__init__(engine)
        self.leases = leases

    def _write(self, tenant: str, tid: str, hits: int, snooze_ns: int, *, removed: bool,
               last: str, rows: Pending) -> None:
        conn = self.leases.fenced([partition_of(threshold_key(tenant, tid))])
        sql, params = applied.with_applied(_UPSERT, [tenant, tid, hits, snooze_ns, removed, last],
                                           KIND, rows)
        conn.execute(sql, params)
        self.pruner.prune_conn(conn, _now_ns())

    def load_applied(self) -> dict[tuple[str, str], list[tuple[str, int]]]:
        return {}  # with each partition (load_applied_keys)

    def load_applied_keys(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[str, int]]]:
        """The event ids ``keys`` counted within the window, read on the lease connection."""
        return applied.load_keys(self.leases.reader(), KIND, keys, _now_ns())

    def load_all(self) -> dict[tuple[str, str], Threshold | None]:
        return {}  # each partition's thresholds are loaded when it is taken (load_keys)

    def load_keys(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Threshold | None]:
        """Saved state of ``keys``, read on the lease connection (inside ``on_gained``)."""
        if not keys:
            return {}
        rows = self.leases.reader().execute(
            _LOAD, ([t for t, _ in keys], [i for _, i in keys])).fetchall()
        return {(t, i): None if removed else Threshold(t, i, hits, from_unix_nano(snooze), last)
                for t, i, hits, snooze, removed, last in rows}
