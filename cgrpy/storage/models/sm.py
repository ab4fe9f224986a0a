"""Tables owned by sm (session manager) on a Postgres StorDB.

``sm_sessions``: one row per session an SM replica charges, tagged with the replica that owns it
(``owner``, unique per process start). The row holds what ``services/sm/store.py`` keeps in its
local file: a snapshot of the events (``data``) and the counters laid over it (``progress``), as
exact JSON text. When the owner dies, another replica re-tags its rows and adopts the sessions.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cgrpy.storage.models.base import Base


class SmSession(Base):
    __tablename__ = "sm_sessions"

    cgrid: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    closed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    # Unix nanoseconds of the last write (int, so both backends keep it exactly).
    updated_ns: Mapped[int] = mapped_column(BigInteger, nullable=False)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    progress: Mapped[str | None] = mapped_column(Text, nullable=True)
