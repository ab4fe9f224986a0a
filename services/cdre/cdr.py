"""The CDR: built from a CGREvent (docs/rating.md), rendered for APIs and events.

Normalisation choices (beyond CGRateS):

* ``OriginID`` loses a leading ``Call-ID:`` / ``i:`` header name: OpenSIPS sends the raw header
  line for missed calls, which would give the call a different CGRID.
* Legacy request types ``prepaid``/``postpaid``/``pseudoprepaid``/``rated``/``none`` are stored
  with their star, so queries by request type find them.
* Times without a zone are UTC (CGRateS: the configured default timezone, ``Local``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cgrpy.cgrid import cgrid as make_cgrid
from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.gotime import go_rfc3339
from cgrpy.iface import iface_as_string
from cgrpy.units import (
    UnitError,
    check_decimal,
    format_duration,
    parse_decimal,
    parse_duration,
    parse_time,
)

DEFAULT_RUN_ID = "*default"
DEFAULT_TOR = "*voice"
NOT_RATED = Decimal(-1)

PREPAID = "*prepaid"
POSTPAID = "*postpaid"
PSEUDOPREPAID = "*pseudoprepaid"
RATED = "*rated"
NONE = "*none"
REQUEST_TYPES = (PREPAID, POSTPAID, PSEUDOPREPAID, RATED, NONE)
# Request types whose CDR moves money on an account (debit at CDR time / refundable).
ACCOUNTED = (PREPAID, POSTPAID, PSEUDOPREPAID)

COST_SOURCE_CDRS = "*cdrs"
COST_SOURCE_SESSIONS = "*sessions"

# Everything else in the event is an extra field. "Rated" and "OrderID" are main fields
# that the CDR does not keep from the event (OrderID is the StorDB id).
MAIN_FIELDS = frozenset({
    "CGRID", "Source", "OriginHost", "OriginID", "ToR", "RequestType", "Tenant", "Category",
    "Account", "Subject", "Destination", "SetupTime", "AnswerTime", "Usage", "Cost", "Rated",
    "Partial", "RunID", "PreRated", "CostSource", "CostDetails", "ExtraInfo", "OrderID",
})



class CdrError(ValueError):
    """A CDR field could not be understood; the message names the field and the value."""


@dataclass(frozen=True)
class CdrDefaults:
    """The ``general`` config defaults a CDR falls back to."""

    tenant: str = "cgrates.org"
    request_type: str = RATED
    category: str = "call"


@dataclass
class CDR:
    cgrid: str
    run_id: str = DEFAULT_RUN_ID
    order_id: int = 0
    origin_host: str = ""
    source: str = ""
    origin_id: str = ""
    tor: str = DEFAULT_TOR
    request_type: str = RATED
    tenant: str = "cgrates.org"
    category: str = "call"
    account: str = ""
    subject: str = ""
    destination: str = ""
    setup_time: datetime | None = None
    answer_time: datetime | None = None
    usage_ns: int = 0
    extra_fields: dict[str, str] = field(default_factory=dict)
    cost_source: str = ""
    cost: Decimal = NOT_RATED
    cost_details: dict[str, Any] | None = None
    extra_info: str = ""
    pre_rated: bool = False
    partial: bool = False
    # (the cost_details object, its JSON): see cost_details_json
    _details_json: tuple[Any, str] | None = field(default=None, init=False, repr=False,
                                                  compare=False)

    @property
    def rating_start(self) -> datetime | None:
        """Rating starts at AnswerTime, or SetupTime when the call was never answered."""
        return self.answer_time or self.setup_time

    @property
    def rated(self) -> bool:
        return self.cost != NOT_RATED

    def copy(self, **changes: Any) -> CDR:
        return replace(self, extra_fields=dict(self.extra_fields), **changes)


def cost_details_json(cdr: CDR) -> str | None:
    """``cdr.cost_details`` as JSON, encoded once per details object: the row, the session
    cost, the outbox event and the reply of a run all carry the same EventCost (the biggest
    value of a CDR). The memo holds the object it was made from and is used only while
    ``cost_details`` is that object (cost details are replaced, never changed in place)."""
    d = cdr.cost_details
    if d is None:
        return None
    memo = cdr._details_json
    if memo is not None and memo[0] is d:
        return memo[1]
    text = dumps_exact(d)
    cdr._details_json = (d, text)
    return text


def set_cost_details(cdr: CDR, details: dict[str, Any] | None, text: str | None) -> None:
    """Give ``cdr`` the cost details ``details`` whose JSON (``dumps_exact``) is ``text``."""
    cdr.cost_details = details
    cdr._details_json = None if details is None or text is None else (details, text)


# --- from an event ------------------------------------------------------------------------------


def cdr_from_event(ev: CGREvent, defaults: CdrDefaults = CdrDefaults(),
                   decoded: Mapping[str, Any] | None = None) -> CDR:
    """Build the CDR of one event (one run). Raises :class:`CdrError` naming the bad field.
    ``decoded``: JSON texts already decoded (a CostDetails text found there is not decoded
    again; the CDR shares the object)."""
    f = ev.event
    origin_id = normalise_origin_id(_text(f, "OriginID"))
    origin_host = _text(f, "OriginHost")
    account = _text(f, "Account")
    cid = _text(f, "CGRID") or make_cgrid(origin_id, origin_host)
    request_type = normalise_request_type(_text(f, "RequestType") or defaults.request_type)
    usage = _usage(f)
    return CDR(
        cgrid=cid,
        run_id=_text(f, "RunID") or DEFAULT_RUN_ID,
        origin_host=origin_host,
        source=_text(f, "Source"),
        origin_id=origin_id,
        tor=_text(f, "ToR") or DEFAULT_TOR,
        request_type=request_type,
        tenant=_text(f, "Tenant") or ev.tenant or defaults.tenant,
        category=_text(f, "Category") or defaults.category,
        account=account,
        subject=_text(f, "Subject") or account,
        destination=_text(f, "Destination"),
        setup_time=_time(f, "SetupTime"),
        answer_time=_time(f, "AnswerTime"),
        usage_ns=max(usage, 0),
        extra_fields={k: iface_as_string(v) for k, v in f.items() if k not in MAIN_FIELDS},
        cost_source=_text(f, "CostSource"),
        cost=_cost(f),
        cost_details=_cost_details(f, decoded),
        extra_info=_text(f, "ExtraInfo"),
        pre_rated=_bool(f, "PreRated"),
        partial=_bool(f, "Partial"),
    )


def normalise_origin_id(origin_id: str) -> str:
    s = origin_id.strip()
    low = s.lower()
    for prefix in ("call-id:", "i:"):
        if low.startswith(prefix):
            return s[len(prefix):].strip()
    return s


def normalise_request_type(rt: str) -> str:
    if not rt.startswith("*") and f"*{rt}" in REQUEST_TYPES:
        return f"*{rt}"
    return rt


def _text(f: dict[str, Any], name: str) -> str:
    v = f.get(name)
    if v is None:
        return ""
    if isinstance(v, dict | list):
        raise CdrError(f"{name}: expected text, got {dumps_exact(v)}")
    return iface_as_string(v).strip()


def _usage(f: dict[str, Any]) -> int:
    v = f.get("Usage")
    try:
        return parse_duration(v)  # a fractional JSON number of ns truncates, as Go's Duration(float)
    except (UnitError, TypeError) as exc:
        raise CdrError(f"Usage: {exc}") from None


def _time(f: dict[str, Any], name: str) -> datetime | None:
    v = f.get(name)
    if isinstance(v, datetime):
        return v.astimezone(UTC)
    if isinstance(v, Decimal):
        try:
            v = check_decimal(v, original=v)
        except UnitError as exc:
            raise CdrError(f"{name}: {exc}") from None
        if v != v.to_integral_value():
            raise CdrError(f"{name}: not a time: {v}")
        v = int(v)
    try:
        t = parse_time(v)
    except (UnitError, TypeError, ValueError, OverflowError) as exc:
        raise CdrError(f"{name}: {exc}") from None
    if t is not None and t.year <= 1:
        return None  # Go zero time
    return t


def _bool(f: dict[str, Any], name: str) -> bool:
    v = f.get(name)
    if v is None or isinstance(v, bool):
        return bool(v)
    s = str(v).strip().lower()
    if s in ("true", "1", "t", "yes"):
        return True
    if s in ("false", "0", "f", "no", ""):
        return False
    raise CdrError(f"{name}: not a boolean: {v!r}")


def _cost(f: dict[str, Any]) -> Decimal:
    v = f.get("Cost")
    try:
        return parse_decimal(v, empty=NOT_RATED)
    except UnitError as exc:
        raise CdrError(f"Cost: {exc}") from None


def _cost_details(f: dict[str, Any], decoded: Mapping[str, Any] | None = None
                  ) -> dict[str, Any] | None:
    v = f.get("CostDetails")
    if v is None or v == "" or v == "null":
        return None
    if isinstance(v, str) and decoded and v in decoded:
        v = decoded[v]
    elif isinstance(v, str):
        try:
            v = loads_exact(v)
        except ValueError as exc:
            raise CdrError(f"CostDetails: not JSON: {exc}") from None
    if not isinstance(v, dict):
        raise CdrError("CostDetails: expected an EventCost object")
    return v


# --- out of a CDR -------------------------------------------------------------------------------


def usage_text(cdr: CDR) -> str:
    """ExternalCDR ``Usage``: a Go duration string for *voice, the integer otherwise."""
    return format_duration(cdr.usage_ns) if cdr.tor == DEFAULT_TOR else str(cdr.usage_ns)


def to_external(cdr: CDR) -> dict[str, Any]:
    """The ExternalCDR dict ``APIerSv2.GetCDRs`` returns (serialise with ``dumps_exact``)."""
    return {
        "CGRID": cdr.cgrid,
        "RunID": cdr.run_id,
        "OrderID": cdr.order_id,
        "OriginHost": cdr.origin_host,
        "Source": cdr.source,
        "OriginID": cdr.origin_id,
        "ToR": cdr.tor,
        "RequestType": cdr.request_type,
        "Tenant": cdr.tenant,
        "Category": cdr.category,
        "Account": cdr.account,
        "Subject": cdr.subject,
        "Destination": cdr.destination,
        "SetupTime": go_rfc3339(cdr.setup_time),
        "AnswerTime": go_rfc3339(cdr.answer_time),
        "Usage": usage_text(cdr),
        "ExtraFields": dict(cdr.extra_fields),
        "CostSource": cdr.cost_source,
        "Cost": cdr.cost,
        "CostDetails": dumps_exact(cdr.cost_details),
        "ExtraInfo": cdr.extra_info,
        "PreRated": cdr.pre_rated,
    }


def to_event(cdr: CDR, **extra: Any) -> CGREvent:
    """The CDR as a CGREvent (StatS/ThresholdS input, rerating): typed main fields + extras."""
    fields: dict[str, Any] = dict(cdr.extra_fields)
    fields.update({
        "CGRID": cdr.cgrid,
        "RunID": cdr.run_id,
        "OrderID": cdr.order_id,
        "OriginHost": cdr.origin_host,
        "Source": cdr.source,
        "OriginID": cdr.origin_id,
        "ToR": cdr.tor,
        "RequestType": cdr.request_type,
        "Tenant": cdr.tenant,
        "Category": cdr.category,
        "Account": cdr.account,
        "Subject": cdr.subject,
        "Destination": cdr.destination,
        "SetupTime": go_rfc3339(cdr.setup_time) if cdr.setup_time else "",
        "AnswerTime": go_rfc3339(cdr.answer_time) if cdr.answer_time else "",
        "Usage": cdr.usage_ns,
        "Cost": cdr.cost,
        "CostSource": cdr.cost_source,
        "ExtraInfo": cdr.extra_info,
        "PreRated": cdr.pre_rated,
        "Partial": cdr.partial,
    })
    if cdr.cost_details is not None:
        fields["CostDetails"] = cdr.cost_details
    fields.update(extra)
    return CGREvent(tenant=cdr.tenant, id=f"{cdr.cgrid}:{cdr.run_id}", event=fields)
