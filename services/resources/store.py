"""Persistence of the usages of Stored resources (table ``resource_usages``).

Each operation writes only the usage rows it changed, in one transaction, before ResourceS
answers: a reply means the allocation is committed and a restart keeps it.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from cgrpy.storage.models.resources import ResourceUsageRow
from services.resources.logic import Usage, UsageKey


class ResourceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def write(self, changes: list[tuple[UsageKey, Usage | None]]) -> None:
        if not changes:
            return
        with Session(self.engine) as s, s.begin():
            for (tenant, rid, uid), usage in changes:
                if usage is None:
                    s.execute(delete(ResourceUsageRow).where(
                        ResourceUsageRow.tenant == tenant, ResourceUsageRow.resource_id == rid,
                        ResourceUsageRow.usage_id == uid))
                else:
                    s.merge(ResourceUsageRow(tenant=tenant, resource_id=rid, usage_id=uid,
                                             units=usage.units, expiry_ns=usage.expiry_ns))

    def load_all(self) -> dict[tuple[str, str], dict[str, Usage]]:
        out: dict[tuple[str, str], dict[str, Usage]] = {}
        with Session(self.engine) as s:
            for r in s.scalars(select(ResourceUsageRow)):
                out.setdefault((r.tenant, r.resource_id), {})[r.usage_id] = Usage(r.usage_id, r.units, r.expiry_ns)
        return out
