"""Persistence of Stored stat queues in StorDB (table ``stat_queue_states``), so a restart of the
stats service keeps its queues, and a replica taking a queue's partition over continues its
counts. Each save replaces the queues' rows in one transaction, together with the ids of the
events they counted since the last save (``applied_events``, :mod:`cgrpy.storage.applied`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from cgrpy.event import dumps_exact, loads_exact
from cgrpy.runtime.partitions import PartitionLeases, partition_of
from cgrpy.storage import applied
from cgrpy.storage.models.stats import StatQueueState
from cgrpy.units import to_unix_nano
from services.stats.queue import StatQueue

KIND = "stats"  # applied_events.kind


class StatQueueStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pruner = applied.Pruner(KIND)

    def save(self, queue: StatQueue) -> None:
        self.save_many([queue])

    def save_many(self, queues: list[StatQueue]) -> None:
        """Replace the rows of ``queues`` in one transaction (a batch of events pays one)."""
        now = to_unix_nano(datetime.now(UTC))
        with Session(self.engine) as s, s.begin():
            for queue in queues:
                s.merge(StatQueueState(tenant=queue.tenant, queue_id=queue.id,
                                       state=dumps_exact(queue.state()), updated_ns=now))
            applied.add_session(s, KIND, _pending(queues))
            self.pruner.prune_session(s, now)
        _saved(queues)

    def load_all(self) -> dict[tuple[str, str], dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(StatQueueState)).all()
            return {(r.tenant, r.queue_id): loads_exact(r.state) for r in rows}

    def load_applied(self) -> dict[tuple[str, str], list[tuple[str, int]]]:
        with Session(self.engine) as s:
            return applied.load_session(s, KIND, to_unix_nano(datetime.now(UTC)))

    def delete(self, tenant: str, queue_id: str) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(
                delete(StatQueueState).where(
                    StatQueueState.tenant == tenant, StatQueueState.queue_id == queue_id
                )
            )


def _pending(queues: list[StatQueue]) -> list[tuple[str, str, str, int]]:
    return applied.pending_rows(((q.tenant, q.id), q.applied) for q in queues)


def _saved(queues: list[StatQueue]) -> None:
    for q in queues:
        q.applied.pending.clear()


def queue_key(tenant: str, queue_id: str) -> str:
    """A queue's key in the partitions (``cgrpy.runtime.partitions.partition_of``)."""
    return f"{tenant}:{queue_id}"


_UPSERT = ("INSERT INTO stat_queue_states (tenant, queue_id, state, updated_ns) VALUES {rows} "
           "ON CONFLICT (tenant, queue_id) DO UPDATE "
           "SET state = EXCLUDED.state, updated_ns = EXCLUDED.updated_ns")
_LOAD = ("SELECT tenant, queue_id, state FROM stat_queue_states "
         "WHERE (tenant, queue_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))")


class FencedStatQueueStore(StatQueueStore):
    """Partitioned StatS on Postgres: queues are saved on the partition lease connection, so a
    save commits only while this process owns their partitions (one statement, atomic), and a
    queue's state is read when its partition is taken, not at start."""

    def __init__(self, engine: Engine, leases: PartitionLeases) -> None:
        super().__init__(engine)
        self.leases = leases

    def save_many(self, queues: list[StatQueue]) -> None:
        """NotOwner (nothing written) when one of the queues' partitions is not held."""
        if not queues:
            return
        conn = self.leases.fenced({partition_of(queue_key(q.tenant, q.id)) for q in queues})
        now = to_unix_nano(datetime.now(UTC))
        params: list[Any] = []
        for q in queues:
            params += [q.tenant, q.id, dumps_exact(q.state()), now]
        rows = ", ".join(["(%s, %s, %s, %s)"] * len(queues))
        sql, params = applied.with_applied(_UPSERT.format(rows=rows), params, KIND, _pending(queues))
        conn.execute(sql, params)  # type: ignore[arg-type]
        _saved(queues)
        self.pruner.prune_conn(conn, now)

    def load_all(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {}  # each partition's queues are loaded when it is taken (load_keys)

    def load_applied(self) -> dict[tuple[str, str], list[tuple[str, int]]]:
        return {}  # with each partition (load_applied_keys)

    def load_applied_keys(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[str, int]]]:
        """The event ids ``keys`` counted within the window, read on the lease connection."""
        return applied.load_keys(self.leases.reader(), KIND, keys, to_unix_nano(datetime.now(UTC)))

    def load_keys(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Saved state of ``keys``, read on the lease connection (inside ``on_gained``)."""
        if not keys:
            return {}
        rows = self.leases.reader().execute(
            _LOAD, ([t for t, _ in keys], [q for _, q in keys])).fetchall()
        return {(t, q): loads_exact(state) for t, q, state in rows}
