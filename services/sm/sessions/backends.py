"""The calls SM makes to the other services, as a Protocol the gRPC client implements.

Everything is async and takes/returns the plain dataclasses of ``types.py``. A backend signals a
CGRateS error by raising ``BackendError`` with the CGRateS error word (``INSUFFICIENT_CREDIT``,
``ACCOUNT_NOT_FOUND``, ``NOT_FOUND``...); anything else (timeouts, connection refused) is a
failed backend and falls under SM's failed-backend policy.

Idempotency contract for RALs: ``debit`` and ``refund`` carry a ``request_id``; a repeated call
with the same id must return the first answer and change no balance again. SM derives ids from
CGRID + RunID + loop index, so retries after a timeout are safe.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from cgrpy.errors import CGRError
from cgrpy.event import CGREvent

from .types import (
    AttributesReply,
    CdrResult,
    ChargerRun,
    DebitResult,
    RefundResult,
    SuppliersReply,
)


class BackendError(CGRError):
    """A business answer from a backend (the CGRateS error text as ``word``), not a transport
    failure."""


class Backends(Protocol):
    # AttributeS
    async def attributes_process_event(self, event: CGREvent, context: str) -> AttributesReply: ...

    # ChargerS: one run per matching charger; no chargers -> the caller forks a *default run.
    async def chargers_process_event(self, event: CGREvent) -> list[ChargerRun]: ...

    # RALs
    async def rals_get_max_usage(self, run_event: CGREvent, usage_ns: int) -> int:
        """Max session duration in ns for the run (capped at ``usage_ns``); -1 = unlimited."""
        ...

    async def rals_debit(
        self,
        run_event: CGREvent,
        usage_ns: int,
        request_id: str,
        *,
        offset_ns: int = 0,
        loop_index: int = 0,
        go_negative: bool = False,
        max_cost_so_far: Decimal = Decimal(0),
    ) -> DebitResult:
        """MaxDebit ``usage_ns`` starting ``offset_ns`` after the run's AnswerTime (connect fee
        only when ``loop_index`` is 0); ``go_negative`` = plain Debit (terminate top-ups).
        ``max_cost_so_far`` = what the call cost so far (MaxCost ``*disconnect`` across pieces)."""
        ...

    async def rals_refund(
        self, run_event: CGREvent, debit_ids: list[str], keep_usage_ns: int, request_id: str
    ) -> RefundResult:
        """Trim the merged cost of ``debit_ids`` to ``keep_usage_ns`` (whole increments) and put
        the surplus back on the balances it came from, rounding as CGRateS does at terminate."""
        ...

    # CDRs (cdre service): flags as CGRateS CDRsV1.ProcessEvent
    async def cdrs_process_cdr(
        self, event: CGREvent, *, chargers: bool, attributes: bool, rals: bool
    ) -> CdrResult: ...

    # SupplierS
    async def suppliers_get_suppliers(self, event: CGREvent) -> SuppliersReply: ...

    # StatS / ThresholdS: IDs of the queues / thresholds that processed the event
    async def stats_process_event(self, event: CGREvent) -> list[str]: ...

    async def thresholds_process_event(self, event: CGREvent) -> list[str]: ...

    # The tenant's StatS queue IDs / ThresholdS threshold IDs ([] when it has none)
    async def stats_queue_ids(self, tenant: str) -> list[str]: ...

    async def thresholds_ids(self, tenant: str) -> list[str]: ...

    # ResourceS (only with the *resources flags). authorize/allocate answer the AllocationMessage
    # (None: no resource matches the call); a call over a limit raises BackendError
    # RESOURCE_UNAUTHORIZED / RESOURCE_UNAVAILABLE.
    async def resources_authorize(self, event: CGREvent, usage_id: str) -> str | None: ...

    async def resources_allocate(self, event: CGREvent, usage_id: str) -> str | None: ...

    async def resources_release(self, event: CGREvent, usage_id: str) -> None: ...

    async def resources_release_usage(self, tenant: str, usage_id: str) -> list[str]:
        """Clear ``usage_id`` wherever ResourceS holds it (a session closed without an event)."""
        ...
