"""Tables owned by stats (stat-queue state).

One row per queue of a ``Stored`` profile: its items (event ID + expiry) and every metric's
per-event entries, as exact JSON text (``cgrpy.event.dumps_exact``: Decimals keep their digits on
both backends, which a native JSON column would turn into floats).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cgrpy.storage.models.base import Base


class StatQueueState(Base):
    __tablename__ = "stat_queue_states"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    queue_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[str] = mapped_column(Text, nullable=False)
    # Unix nanoseconds of the last save (int, so both backends keep it exactly).
    updated_ns: Mapped[int] = mapped_column(BigInteger, nullable=False)
