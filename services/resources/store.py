"""Persistence of resource usages (table ``resource_usages``): of Stored resources on SQLite
(one process), of every resource on Postgres (replicas: the one that takes over continues them).

Each operation writes only the usage rows it changed, in one transaction, before ResourceS
answers: a reply means the allocation is committed and a restart keeps it.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session

from cgrpy.runtime.partitions import PartitionLeases
from cgrpy.storage.models.resources import ResourceUsageRow
from services.resources.logic import Usage, UsageKey


class ResourceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def write(self, changes: list[tuple[UsageKey, Usage | None]]) -> None:
        """Each changed row deleted, the current ones inserted again: plain statements in one
        transaction (an ORM merge would first SELECT every row; this runs once per call)."""
        if not changes:
            return
        t = ResourceUsageRow.__table__
        rows = [{"tenant": tenant, "resource_id": rid, "usage_id": uid, "units": u.units, "expiry_ns": u.expiry_ns}
                for (tenant, rid, uid), u in changes if u is not None]
        with self.engine.begin() as conn:
            for tenant, rid, uid in (key for key, _u in changes):
                conn.execute(delete(t).where(t.c.tenant == tenant, t.c.resource_id == rid, t.c.usage_id == uid))
            if rows:
                conn.execute(insert(t), rows)

    def load_all(self) -> dict[tuple[str, str], dict[str, Usage]]:
        out: dict[tuple[str, str], dict[str, Usage]] = {}
        with Session(self.engine) as s:
            for r in s.scalars(select(ResourceUsageRow)):
                out.setdefault((r.tenant, r.resource_id), {})[r.usage_id] = Usage(r.usage_id, r.units, r.expiry_ns)
        return out


# Deleted rows and written rows are disjoint key sets, so one statement does both: it commits
# whole or not at all (the lease connection is in autocommit).
_WRITE = (
    "WITH gone AS (DELETE FROM resource_usages WHERE (tenant, resource_id, usage_id) IN "
    "(SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))) "
    "INSERT INTO resource_usages (tenant, resource_id, usage_id, units, expiry_ns) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::bigint[]) "
    "ON CONFLICT (tenant, resource_id, usage_id) DO UPDATE "
    "SET units = EXCLUDED.units, expiry_ns = EXCLUDED.expiry_ns"
)


class FencedResourceStore(ResourceStore):
    """Replicated ResourceS on Postgres: usages are written on the lease connection of the one
    partition that holds every resource, so a write commits only while this process owns them
    (a replica that lost its lease without noticing cannot overwrite the new owner's), and they
    are read when the partition is taken, not at start."""

    def __init__(self, engine: Engine, leases: PartitionLeases, partition: int) -> None:
        super().__init__(engine)
        self.leases = leases
        self.partition = partition

    def write(self, changes: list[tuple[UsageKey, Usage | None]]) -> None:
        """NotOwner (nothing written) when the partition is not held (any more)."""
        if not changes:
            return
        conn = self.leases.fenced([self.partition])
        gone = [key for key, u in changes if u is None]
        kept = [(key, u) for key, u in changes if u is not None]
        conn.execute(_WRITE, (
            [k[0] for k in gone], [k[1] for k in gone], [k[2] for k in gone],
            [k[0] for k, _ in kept], [k[1] for k, _ in kept], [k[2] for k, _ in kept],
            [u.units for _, u in kept], [u.expiry_ns for _, u in kept]))

    def load_all(self) -> dict[tuple[str, str], dict[str, Usage]]:
        return {}  # loaded when the partition is taken (load_taken)

    def load_taken(self) -> dict[tuple[str, str], dict[str, Usage]]:
        """Every saved usage, read on the lease connection (inside ``on_gained``): what the last
        owner committed before its lock went (its writes are on the lock's connection)."""
        out: dict[tuple[str, str], dict[str, Usage]] = {}
        rows = self.leases.reader().execute(
            "SELECT tenant, resource_id, usage_id, units, expiry_ns FROM resource_usages").fetchall()
        for tenant, rid, uid, units, expiry in rows:
            out.setdefault((tenant, rid), {})[uid] = Usage(uid, units, expiry)
        return out
