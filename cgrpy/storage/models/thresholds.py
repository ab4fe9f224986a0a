"""Tables owned by thresholds (threshold hit state).

One row per threshold that has state. A threshold that reached MaxHits keeps its row with
``removed`` set, so a restart does not bring it back with Hits 0 (v0.10 keeps state in DataDB,
which a restart does not reload from the tariff plan either).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cgrpy.storage.models.base import Base


class ThresholdState(Base):
    __tablename__ = "threshold_states"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    threshold_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Unix nanoseconds; 0 = not snoozed. Integers keep the instant exactly on both backends.
    snooze_ns: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    removed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # ID of the last event counted: a partitioned replica taking over does not count an event
    # again that the dead owner counted before it could answer (a retried request).
    last_event: Mapped[str] = mapped_column(String(255), nullable=False, default="", server_default="")
