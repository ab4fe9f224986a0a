"""Tables owned by rals (accounts, balances, balance journal, action-plan state)."""

from __future__ import annotations

from cgrpy.storage.models.base import Base  # noqa: F401
