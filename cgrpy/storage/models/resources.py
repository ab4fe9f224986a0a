"""Tables owned by resources (the live usages of Stored resources).

One row per usage a Stored resource holds: a call counted against a concurrent-call limit. The
rows follow every allocation and release before the reply, so a restarted ResourceS still counts
the calls that were up (v0.10 keeps Stored resources in DataDB for the same reason).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from cgrpy.storage.models.base import Base


class ResourceUsageRow(Base):
    __tablename__ = "resource_usages"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    usage_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    # CGRateS counts units as float64 (calls, channels): not money, so a double is exact enough.
    units: Mapped[float] = mapped_column(Float, nullable=False)
    # Unix nanoseconds the usage expires at; 0 = held until released.
    expiry_ns: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
