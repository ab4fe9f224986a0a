"""Persistence of the usages of Stored resources (table ``resource_usages``).

Each operation writes only the usage rows it changed, in one transaction, before ResourceS
answers: a reply means the allocation is committed and a restart keeps it.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session

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
