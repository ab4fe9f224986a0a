"""Tables owned by sm (session manager) on a Postgres StorDB.

``sm_sessions``: one row per session an SM replica charges, tagged with the replica that owns it
(``owner``, unique per process start). The row holds what ``services/sm/store.py`` keeps in its
local file: a snapshot of the events (``data``) and the counters laid over it (``progress``), as
exact JSON text. When the owner dies, another replica re-tags its rows and adopts the sessions.

``sm_cdr_spool``: CDRs an SM replica accepted from OpenSIPS and answered OK, not yet stored by
cdre: an outbox (``cgrpy/storage/outbox.py``) any live replica forwards, so a CDR survives the
replica that took it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cgrpy.storage.models.base import Base
from cgrpy.storage.models.cdrs import BigId


class SmSession(Base):
    __tablename__ = "sm_sessions"

    cgrid: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    closed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    # Unix nanoseconds of the last write (int, so both backends keep it exactly).
    updated_ns: Mapped[int] = mapped_column(BigInteger, nullable=False)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    progress: Mapped[str | None] = mapped_column(Text, nullable=True)


class SmCdrSpoolRow(Base):
    __tablename__ = "sm_cdr_spool"
    __table_args__ = (Index("ix_sm_cdr_spool_lease", "lease_until_ns", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128), nullable=False)
    event_id: Mapped[str] = mapped_column(String(255), nullable=False)
    time_ns: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # the CDR's fields and its flags (chargers/attributes/rals), exact JSON
    fields: Mapped[str] = mapped_column(Text, nullable=False)
    flags: Mapped[str] = mapped_column(Text, nullable=False)
    # claimed by a forwarding replica until this time (unix ns); 0 = free
    lease_until_ns: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
