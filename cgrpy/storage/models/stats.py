"""Tables owned by stats (stat-queue state)."""

from __future__ import annotations

from cgrpy.storage.models.base import Base  # noqa: F401
