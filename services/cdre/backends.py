"""What the CDR pipeline needs from the other services, as a Protocol.

The lead implements :class:`CdrBackends` over gRPC (chargers, attributes, rals, stats,
thresholds); tests implement it in memory. :class:`CallDescriptor` mirrors the proto
``cgrates.v1.CallDescriptor`` field for field, so the gRPC adapter is a plain copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.units import to_unix_nano
from services.cdre.cdr import CDR


class BackendError(CGRError):
    """A backend refused or failed; ``word`` is the CGRateS error word (``NOT_FOUND``,
    ``UNAUTHORIZED_DESTINATION``, ``ACCOUNT_NOT_FOUND``, ``SERVER_ERROR``...); ``transient``: the
    service was unreachable, worth retrying later."""

    spaced = True


class MissingRatingTime(ValueError):
    """A CDR with neither AnswerTime nor SetupTime cannot be rated."""


@dataclass(frozen=True)
class CallDescriptor:
    """The whole call of one CDR run, rated from its start (one piece, loop index 0)."""

    tenant: str
    category: str
    subject: str
    account: str
    destination: str
    tor: str
    time_start_unix_ns: int
    usage_ns: int
    duration_index_ns: int
    cgrid: str
    run_id: str
    loop_index: int = 0

    @classmethod
    def from_cdr(cls, cdr: CDR) -> CallDescriptor:
        start = cdr.rating_start
        if start is None:
            raise MissingRatingTime("MANDATORY_IE_MISSING: [AnswerTime SetupTime]")
        return cls(
            tenant=cdr.tenant,
            category=cdr.category,
            subject=cdr.subject or cdr.account,
            account=cdr.account,
            destination=cdr.destination,
            tor=cdr.tor,
            time_start_unix_ns=to_unix_nano(start),
            usage_ns=cdr.usage_ns,
            duration_index_ns=cdr.usage_ns,
            cgrid=cdr.cgrid,
            run_id=cdr.run_id,
        )


@dataclass(frozen=True)
class RatingResult:
    """RALs GetCost / Debit reply: EventCost total, charged usage, the EventCost itself."""

    cost: Decimal
    usage_ns: int
    cost_details: dict[str, Any] | None = None
    # A Debit whose request_id RALs had already applied (nothing charged again).
    duplicate: bool = False


class CdrBackends(Protocol):
    async def attributes_process_event(self, event: CGREvent, context: str) -> CGREvent:
        """The event altered by matching attribute profiles; unchanged when none match."""
        ...

    async def chargers_process_event(self, event: CGREvent) -> list[CGREvent]:
        """One event per matching charger, each with its ``RunID`` and its attributes applied;
        an empty list when no charger matches."""
        ...

    async def rals_get_cost(self, cd: CallDescriptor) -> RatingResult:
        """Price the call at tariff, no account touched (CGRateS Responder.GetCost)."""
        ...

    async def rals_debit(
        self, cd: CallDescriptor, request_id: str, request_type: str
    ) -> RatingResult:
        """Debit the account for the call (may go negative), with final rounding
        (PerformRounding). Idempotent on ``request_id``: a repeat returns the first result."""
        ...

    async def rals_refund(self, request_id: str, refund_id: str, keep_usage_ns: int = 0) -> Decimal:
        """Give back what debit ``request_id`` took beyond ``keep_usage_ns``; idempotent on
        ``refund_id``. Returns the money refunded."""
        ...

    async def stats_process_event(self, event: CGREvent) -> None: ...

    async def thresholds_process_event(self, event: CGREvent) -> None: ...

    async def stats_process_events(self, events: list[CGREvent]) -> None:
        """Feed many events to StatS in one call, in order. The receiver skips an event id it
        already counted (the outbox delivers at least once). Per-event answers (no queue
        matched, PARTIALLY_EXECUTED) are not failures; only an unreachable or failing StatS
        raises :class:`BackendError`, and then the whole batch is sent again later."""
        ...

    async def thresholds_process_events(self, events: list[CGREvent]) -> None:
        """As :meth:`stats_process_events`, to ThresholdS."""
        ...
