"""Plain data crossing between the OpenSIPS adapters, the session core and the backends.

Money is ``Decimal``, durations are ``int`` nanoseconds (``UNLIMITED_NS`` = -1), events are
``CGREvent``: these map one to one onto the gRPC messages the lead's ``Backends`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from cgrpy.event import CGREvent
from cgrpy.iface import iface_as_string

# ----------------------------------------------------------------------------- backend answers


@dataclass(frozen=True)
class ProfileSet:
    """Which profile set answered (changes on every reload) and the event fields it can read: a
    kept answer holds for another event with the same values there (``reusable`` only)."""

    version: str
    input_fields: frozenset[str] = frozenset()
    reusable: bool = False


@dataclass(frozen=True)
class AttributesReply:
    event: CGREvent  # the event with AttributeS's changes applied
    matched_profiles: list[str] = field(default_factory=list)
    altered_fields: list[str] = field(default_factory=list)
    profile_set: ProfileSet | None = None

    def digest(self) -> str | None:
        """CGRateS ``AttributesDigest``: ``Field:Value`` of every altered field, ``,``-joined."""
        if not self.altered_fields:
            return None
        return ",".join(f"{f}:{iface_as_string(self.event.get(f))}" for f in self.altered_fields)


@dataclass(frozen=True)
class ChargerRun:
    run_id: str  # *default, *raw, ...
    event: CGREvent  # the forked event (RunID set, charger attributes applied)
    altered_fields: tuple[str, ...] = ()  # paths ChargerS set on it ("*req.RunID", ...)
    profile_set: ProfileSet | None = None  # of the whole ChargerS answer


@dataclass(frozen=True)
class DebitResult:
    usage_ns: int  # what RALs actually charged: > requested after increment rounding, < on no credit
    cost: Decimal
    # the highest rate the debit applied (value per unit ns); (0, 0) when none was rated
    max_rate: Decimal = Decimal(0)
    max_rate_unit_ns: int = 0


@dataclass(frozen=True)
class RefundResult:
    refunded_usage_ns: int
    refunded_cost: Decimal
    # the EventCost JSON of what the run keeps (its debits' merged and trimmed); "" = none
    event_cost_json: str = ""


@dataclass(frozen=True)
class SortedSupplier:
    id: str
    params: str = ""


@dataclass(frozen=True)
class SuppliersReply:
    profile_id: str
    suppliers: list[SortedSupplier]

    def digest(self) -> str | None:
        if not self.suppliers:
            return None
        return ",".join(f"{s.id}:{s.params}" if s.params else s.id for s in self.suppliers)


@dataclass(frozen=True)
class CdrResult:
    stored: int  # CDR rows written (one per run)
    duplicate: bool = False


# ----------------------------------------------------------------------------- SM answers


@dataclass
class AuthorizeResult:
    max_usage_ns: int | None  # None: GetMaxUsage not asked
    attributes: AttributesReply | None = None
    suppliers: SuppliersReply | None = None
    threshold_ids: list[str] | None = None
    stat_queue_ids: list[str] | None = None
    error: str | None = None  # CGRateS error word; set -> refuse
    resource_allocation: str | None = None  # ResourceS's AllocationMessage (AuthorizeResources)


@dataclass
class InitiateResult:
    max_usage_ns: int | None
    attributes: AttributesReply | None = None
    threshold_ids: list[str] | None = None
    stat_queue_ids: list[str] | None = None
    error: str | None = None
    resource_allocation: str | None = None  # ResourceS's AllocationMessage (AllocateResources)


@dataclass
class UpdateResult:
    max_usage_ns: int | None
    attributes: AttributesReply | None = None
    error: str | None = None


@dataclass
class SessionFlags:
    """The ``$cgr_opt`` switches SM honours (spec A.10; tutorial's ProcessStatQueues included)."""

    get_max_usage: bool = False
    get_attributes: bool = False
    get_suppliers: bool = False
    process_thresholds: bool = False
    process_stats: bool = False
    authorize_resources: bool = False  # authorize: is there room for one more call?
    allocate_resources: bool = False  # initiate: take the call's unit
    release_resources: bool = False  # terminate: give it back


@dataclass(frozen=True)
class ActiveSessionInfo:
    cgrid: str
    origin_id: str
    origin_host: str
    run_id: str
    account: str
    destination: str
    request_type: str
    duration_ns: int  # wall-clock time since start
    debited_ns: int
    cost: Decimal
    max_usage_left_ns: int | None
