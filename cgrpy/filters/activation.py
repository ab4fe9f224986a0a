"""ActivationInterval (docs/profiles.md): both bounds exclusive, a missing bound is open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cgrpy.filters.errors import FilterError
from cgrpy.gotime import go_time
from cgrpy.units import UnitError, parse_time


@dataclass(frozen=True)
class ActivationInterval:
    activation_time: datetime | None = None
    expiry_time: datetime | None = None

    def contains(self, t: datetime) -> bool:
        """``(start open or start < t) and (end open or end > t)``."""
        if self.activation_time is not None and not self.activation_time < t:
            return False
        return self.expiry_time is None or self.expiry_time > t

    @classmethod
    def parse(cls, text: str) -> ActivationInterval | None:
        """CSV form ``start[;end]``; empty -> None (no interval)."""
        text = (text or "").strip()
        if not text:
            return None
        parts = text.split(";")
        if len(parts) > 2:
            raise FilterError(f"invalid ActivationInterval {text!r}: use start[;end]")
        try:
            start = parse_time(parts[0]) if parts[0] else None
            end = parse_time(parts[1]) if len(parts) == 2 and parts[1] else None
        except UnitError as exc:
            raise FilterError(f"invalid ActivationInterval {text!r}: {exc}") from None
        return cls(start, end)

    def to_dict(self) -> dict[str, str]:
        """CGRateS JSON shape; an open bound is Go's zero time."""
        return {"ActivationTime": go_time(self.activation_time), "ExpiryTime": go_time(self.expiry_time)}


def activation_json(a: ActivationInterval | None) -> dict[str, str] | None:
    """A profile's ``ActivationInterval`` field in CGRateS JSON: null when it has none."""
    return None if a is None else a.to_dict()
