"""Persistence of Stored stat queues in StorDB (table ``stat_queue_states``), so a restart of the
stats service keeps its queues. Each save replaces the queues' rows in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from cgrpy.event import dumps_exact, loads_exact
from cgrpy.storage.models.stats import StatQueueState
from cgrpy.units import to_unix_nano
from services.stats.queue import StatQueue


class StatQueueStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, queue: StatQueue) -> None:
        self.save_many([queue])

    def save_many(self, queues: list[StatQueue]) -> None:
        """Replace the rows of ``queues`` in one transaction (a batch of events pays one)."""
        now = to_unix_nano(datetime.now(UTC))
        with Session(self.engine) as s, s.begin():
            for queue in queues:
                s.merge(StatQueueState(tenant=queue.tenant, queue_id=queue.id,
                                       state=dumps_exact(queue.state()), updated_ns=now))

    def load_all(self) -> dict[tuple[str, str], dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(StatQueueState)).all()
            return {(r.tenant, r.queue_id): loads_exact(r.state) for r in rows}

    def delete(self, tenant: str, queue_id: str) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(
                delete(StatQueueState).where(
                    StatQueueState.tenant == tenant, StatQueueState.queue_id == queue_id
                )
            )
