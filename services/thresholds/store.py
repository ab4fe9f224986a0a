"""Persistence of threshold state (table ``threshold_states``) so a restart keeps hits, snooze
and the removal of thresholds that reached MaxHits."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cgrpy.storage.models.thresholds import ThresholdState
from cgrpy.units import from_unix_nano, to_unix_nano
from services.thresholds.state import Threshold


class ThresholdStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, t: Threshold) -> None:
        self._write(t.tenant, t.id, t.hits, to_unix_nano(t.snooze), removed=False)

    def mark_removed(self, tenant: str, threshold_id: str) -> None:
        self._write(tenant, threshold_id, 0, 0, removed=True)

    def _write(self, tenant: str, tid: str, hits: int, snooze_ns: int, *, removed: bool) -> None:
        with Session(self.engine) as s, s.begin():
            s.merge(ThresholdState(tenant=tenant, threshold_id=tid, hits=hits,
                                   snooze_ns=snooze_ns, removed=removed))

    def load_all(self) -> dict[tuple[str, str], Threshold | None]:
        """Saved state per threshold; ``None`` for one that was removed at MaxHits."""
        with Session(self.engine) as s:
            rows = s.scalars(select(ThresholdState)).all()
            return {
                (r.tenant, r.threshold_id): None if r.removed else Threshold(
                    r.tenant, r.threshold_id, r.hits, from_unix_nano(r.snooze_ns))
                for r in rows
            }
