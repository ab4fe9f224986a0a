"""Tables owned by cdre (CDRs and session costs)."""

from __future__ import annotations

from cgrpy.storage.models.base import Base  # noqa: F401
