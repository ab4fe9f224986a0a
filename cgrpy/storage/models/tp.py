"""Tables owned by the loader (tariff-plan rows as loaded, keyed by tpid)."""

from __future__ import annotations

from cgrpy.storage.models.base import Base  # noqa: F401
