"""The call descriptor: what is being rated (docs/rating.md).

Times are aware datetimes; because units of non-voice ToRs are nanoseconds (one SMS = 1 ns) and a
datetime only holds microseconds, the usage can be given exactly with ``usage_ns`` (it then wins
over ``time_end``). Use :meth:`CallDescriptor.with_defaults` to apply the API-layer defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cgrpy.units import HOUR, to_unix_nano

from .errors import INVALID_ARGUMENT, MAX_USAGE_EXCEEDED, RatingError

DEFAULT_TENANT = "cgrates.org"
DEFAULT_CATEGORY = "call"
VOICE = "*voice"

# rals.max_computed_usage defaults; units of non-voice ToRs are plain counts.
DEFAULT_MAX_COMPUTED_USAGE: dict[str, int] = {
    "*any": 189 * HOUR,
    VOICE: 72 * HOUR,
    "*data": 107_374_182_400,
    "*sms": 10_000,
    "*mms": 10_000,
}


@dataclass
class CallDescriptor:
    tenant: str = ""
    category: str = ""
    subject: str = ""
    account: str = ""
    destination: str = ""
    tor: str = ""
    time_start: datetime = field(default_factory=lambda: datetime(1970, 1, 1, tzinfo=UTC))
    time_end: datetime | None = None
    usage_ns: int | None = None  # exact usage; wins over time_end when given
    duration_index_ns: int = 0  # call offset at the end of this piece; raised to usage if lower
    loop_index: int = 0  # > 0: a later piece of the same call, no connect fee
    max_rate: Decimal = Decimal(0)
    max_rate_unit_ns: int = 0
    max_cost_so_far: Decimal = Decimal(0)
    force_duration: bool = False
    perform_rounding: bool = False
    deny_negative_account: bool = False
    extra_fields: dict[str, Any] = field(default_factory=dict)
    cgrid: str = ""
    run_id: str = ""

    def __post_init__(self) -> None:
        if self.time_start.tzinfo is None:
            raise RatingError(INVALID_ARGUMENT, "time_start must be timezone-aware")
        if self.time_end is not None and self.time_end.tzinfo is None:
            raise RatingError(INVALID_ARGUMENT, "time_end must be timezone-aware")
        if self.usage_ns is None and self.time_end is None:
            self.usage_ns = 0
        if self.usage < 0:
            raise RatingError(INVALID_ARGUMENT, f"negative usage {self.usage}ns")

    @property
    def start_ns(self) -> int:
        return to_unix_nano(self.time_start)

    @property
    def usage(self) -> int:
        """Usage in ns (units for non-voice ToRs)."""
        if self.usage_ns is not None:
            return self.usage_ns
        assert self.time_end is not None
        return to_unix_nano(self.time_end) - to_unix_nano(self.time_start)

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.usage

    @property
    def accounting_id(self) -> str:
        """``Tenant:Account`` (Subject when Account is empty) — the account that pays."""
        return f"{self.tenant}:{self.account or self.subject}"

    def with_defaults(
        self, *, default_tenant: str = DEFAULT_TENANT, default_category: str = DEFAULT_CATEGORY
    ) -> CallDescriptor:
        """The Responder/API defaults: tenant, category, subject <- account, ToR ``*voice``."""
        if self.tenant and self.category and self.subject and self.tor:
            return self
        # A shallow copy without re-running validation (hot path of every rating).
        new = object.__new__(CallDescriptor)
        new.__dict__.update(self.__dict__)
        new.tenant = self.tenant or default_tenant
        new.category = self.category or default_category
        new.subject = self.subject or self.account
        new.tor = self.tor or VOICE
        return new

    def check_max_usage(self, limits: dict[str, int] | None = None) -> None:
        """Refuse usages above ``rals.max_computed_usage`` with ``MAX_USAGE_EXCEEDED``."""
        table = DEFAULT_MAX_COMPUTED_USAGE if limits is None else limits
        limit = table.get(self.tor or VOICE, table.get("*any"))
        if limit is not None and self.usage > limit:
            raise RatingError(MAX_USAGE_EXCEEDED, f"usage {self.usage} above {limit} for {self.tor}")
