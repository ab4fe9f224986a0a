"""Event ids applied to a partitioned item (a stat queue, a threshold), kept for a while so an
event delivered again (cdre's outbox is at least once) is not counted twice, whichever replica
gets it. Written in the same statement as the item's state (``cgrpy.storage.applied``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cgrpy.storage.models.base import Base


class AppliedEvent(Base):
    __tablename__ = "applied_events"

    # "stats" or "thresholds": one table for both services' items
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Unix nanoseconds when it was applied: rows older than the window are pruned
    applied_ns: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_applied_events_kind_applied_ns", "kind", "applied_ns"),)
