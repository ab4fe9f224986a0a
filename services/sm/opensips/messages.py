"""OpenSIPS request params -> (CGREvent, flags) and SM answers -> the exact reply shapes.

Spec A.3/A.4 (params), A.4.1 (auth digest reply: MaxUsage in SECONDS), A.4.2 (InitiateSession
reply: MaxUsage in NANOSECONDS), A.9 (compat_mode=1: flat params, ``SMGenericV1.*``, integer
seconds), A.10 (CGRateS v0.10 decodes the option keys case-insensitively).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

from cgrpy.cgrid import cgrid_of
from cgrpy.event import DEFAULT_TENANT, CGREvent
from cgrpy.units import SECOND, UNLIMITED_NS, UnitError, check_event_fields, parse_time
from services.sm.sessions.types import (
    AttributesReply,
    AuthorizeResult,
    InitiateResult,
    SessionFlags,
    SuppliersReply,
    UpdateResult,
)

log = logging.getLogger(__name__)


class Kind(Enum):
    AUTHORIZE = "authorize"  # SessionSv1.AuthorizeEvent (MaxUsage ns)
    AUTHORIZE_DIGEST = "authorize_digest"  # ...WithDigest (MaxUsage s)
    INITIATE = "initiate"
    UPDATE = "update"
    TERMINATE = "terminate"
    PROCESS_CDR = "process_cdr"
    GET_ACTIVE = "get_active"
    PING = "ping"


METHODS: dict[str, tuple[Kind, bool]] = {
    # method -> (kind, compat_mode)
    "SessionSv1.AuthorizeEvent": (Kind.AUTHORIZE, False),
    "SessionSv1.AuthorizeEventWithDigest": (Kind.AUTHORIZE_DIGEST, False),
    "SessionSv1.InitiateSession": (Kind.INITIATE, False),
    "SessionSv1.InitiateSessionWithDigest": (Kind.INITIATE, False),
    "SessionSv1.UpdateSession": (Kind.UPDATE, False),
    "SessionSv1.TerminateSession": (Kind.TERMINATE, False),
    "SessionSv1.ProcessCDR": (Kind.PROCESS_CDR, False),
    "SessionSv1.GetActiveSessions": (Kind.GET_ACTIVE, False),
    "SessionSv1.Ping": (Kind.PING, False),
    "SMGenericV1.GetMaxUsage": (Kind.AUTHORIZE, True),
    "SMGenericV1.InitiateSession": (Kind.INITIATE, True),
    "SMGenericV1.UpdateSession": (Kind.UPDATE, True),
    "SMGenericV1.TerminateSession": (Kind.TERMINATE, True),
    "SMGenericV1.ProcessCDR": (Kind.PROCESS_CDR, True),
}

# Option keys (top level of params, or flat in compat mode) that are not event fields.
_FLAG_KEYS = {
    "getmaxusage": "get_max_usage",
    "getattributes": "get_attributes",
    "getsuppliers": "get_suppliers",
    "processthresholds": "process_thresholds",
    "processstats": "process_stats",
    "processstatqueues": "process_stats",  # tutorial name; v0.10 ignores it, we honour it
    "authorizeresources": "authorize_resources",
    "allocateresources": "allocate_resources",
    "releaseresources": "release_resources",
}
_RESOURCE_KEYS = {"authorizeresources", "allocateresources", "releaseresources"}
_OTHER_OPTION_KEYS = {"initsession", "terminatesession", "tenant", "event", "cgrevent", "id"}
_CALLID_PREFIXES = ("call-id:", "i:")


class RequestError(ValueError):
    """Params OpenSIPS sent that SM cannot use; the message is sent back as the error string."""


@dataclass
class SessionRequest:
    kind: Kind
    compat: bool
    event: CGREvent
    flags: SessionFlags
    tag: str = ""  # session tag from an ``OriginID|tag`` suffix (spec A.7)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def origin_id(self) -> str:
        return str(self.event.get("OriginID") or "")

    @property
    def origin_host(self) -> str:
        return str(self.event.get("OriginHost") or "")

    @property
    def cgrid(self) -> str:
        return cgrid_of(self.event)


def normalize_origin_id(value: Any) -> str:
    """Strip the ``Call-ID: `` header-name prefix OpenSIPS leaves on missed-call CDRs (A.4.4)."""
    text = "" if value is None else str(value).strip()
    low = text.lower()
    for prefix in _CALLID_PREFIXES:
        if low.startswith(prefix):
            return text[len(prefix) :].strip()
    return text


def parse_request(method: str, arg: Any) -> SessionRequest:
    try:
        kind, compat = METHODS[method]
    except KeyError:
        raise RequestError(f"rpc: can't find method {method}") from None
    if kind in (Kind.PING, Kind.GET_ACTIVE):
        return SessionRequest(kind, compat, CGREvent(), SessionFlags())
    if not isinstance(arg, dict):
        raise RequestError("MANDATORY_IE_MISSING: [Event]")
    options, fields = _split(arg, compat)
    try:
        check_event_fields(fields)  # sizes first: nothing below may convert a hostile number
    except UnitError as exc:
        raise RequestError(f"SERVER_ERROR: {exc}") from None
    flags = _flags(options, kind, compat)
    tenant = str(options.get("tenant") or fields.pop("Tenant", None) or DEFAULT_TENANT)
    origin = fields.get("OriginID")
    tag = ""
    if origin is not None:
        oid = normalize_origin_id(origin)
        fields["OriginID"] = oid
        if "|" in oid:
            tag = oid.rsplit("|", 1)[1]
    event_time = None
    for name in ("AnswerTime", "SetupTime"):
        try:
            event_time = parse_time(fields.get(name)) if fields.get(name) else None
        except UnitError:
            event_time = None
        if event_time is not None:
            break
    event = CGREvent(tenant=tenant, id=uuid.uuid4().hex[:7], time=event_time, event=fields)
    if kind not in (Kind.PING, Kind.GET_ACTIVE) and not event.get("OriginID"):
        raise RequestError("MANDATORY_IE_MISSING: [OriginID]")
    return SessionRequest(kind, compat, event, flags, tag, options)


def _split(arg: dict[str, Any], compat: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options keyed lower-case, event fields) from the params object."""
    options: dict[str, Any] = {}
    if compat:
        fields: dict[str, Any] = {}
        for k, v in arg.items():
            lk = k.lower()
            if lk in _FLAG_KEYS or lk in _RESOURCE_KEYS or lk in ("initsession", "terminatesession"):
                options[lk] = v
            else:
                fields[k] = v
        if "Tenant" in fields:
            options["tenant"] = fields.pop("Tenant")
        return options, fields
    event: Any = None
    for k, v in arg.items():
        lk = k.lower()
        if lk == "event":
            event = v
        elif lk == "cgrevent" and isinstance(v, dict):  # CGRateS API clients nest the event
            event = v.get("Event")
            if v.get("Tenant"):
                options["tenant"] = v["Tenant"]
        else:
            options[lk] = v
    if not isinstance(event, dict):
        raise RequestError("MANDATORY_IE_MISSING: [Event]")
    return options, dict(event)


def _truthy(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return False


def _flags(options: dict[str, Any], kind: Kind, compat: bool) -> SessionFlags:
    flags = SessionFlags()
    for key, attr in _FLAG_KEYS.items():
        if key in options:
            setattr(flags, attr, getattr(flags, attr) or _truthy(options[key]))
    if compat and kind in (Kind.AUTHORIZE, Kind.INITIATE, Kind.UPDATE):
        flags.get_max_usage = True  # SMGenericV1.GetMaxUsage/InitiateSession always size the call
    return flags


# ----------------------------------------------------------------------------- replies


def seconds(ns: int) -> int | Decimal:
    """Go ``Duration.Seconds()`` as JSON: an integer when whole, else an exact fraction."""
    if ns == UNLIMITED_NS:
        return -1  # CGRateS would send -1e-09 which OpenSIPS truncates to 0 = refused
    q = Decimal(ns) / SECOND
    return int(q) if q == q.to_integral_value() else q.normalize()


def authorize_digest_reply(res: AuthorizeResult, *, units: bool = False) -> dict[str, Any]:
    """``units``: a ToR counted in units (*sms, *data) answers its MaxUsage as the count; in
    seconds one SMS would be 1e-09, which OpenSIPS truncates to 0 = refused."""
    max_usage: int | Decimal = -1
    if res.max_usage_ns is not None:
        max_usage = res.max_usage_ns if units else seconds(res.max_usage_ns)
    return {
        "AttributesDigest": res.attributes.digest() if res.attributes else None,
        "ResourceAllocation": res.resource_allocation,
        "MaxUsage": max_usage,
        "SuppliersDigest": res.suppliers.digest() if res.suppliers else None,
        "Thresholds": ",".join(res.threshold_ids) if res.threshold_ids is not None else None,
        "StatQueues": ",".join(res.stat_queue_ids) if res.stat_queue_ids is not None else None,
    }


def authorize_reply(res: AuthorizeResult) -> dict[str, Any]:
    """CGRateS ``V1AuthorizeReply`` (MaxUsage in ns), for ``cgrates_cmd`` / API clients."""
    return {
        "Attributes": attributes_json(res.attributes),
        "ResourceAllocation": res.resource_allocation,
        "MaxUsage": res.max_usage_ns if res.max_usage_ns is not None else UNLIMITED_NS,
        "Suppliers": suppliers_json(res.suppliers),
        "ThresholdIDs": res.threshold_ids,
        "StatQueueIDs": res.stat_queue_ids,
    }


def initiate_reply(res: InitiateResult) -> dict[str, Any]:
    # OpenSIPS needs an integer MaxUsage; null would tear the call down, -1 means unlimited.
    return {
        "Attributes": attributes_json(res.attributes),
        "ResourceAllocation": res.resource_allocation,
        "MaxUsage": res.max_usage_ns if res.max_usage_ns is not None else UNLIMITED_NS,
        "ThresholdIDs": res.threshold_ids,
        "StatQueueIDs": res.stat_queue_ids,
    }


def initiate_digest_reply(res: InitiateResult, *, units: bool = False) -> dict[str, Any]:
    """CGRateS ``V1InitReplyWithDigest`` (InitiateSessionWithDigest): MaxUsage in seconds (the
    count for a unit ToR, -1 unlimited), attributes as their digest, IDs as text."""
    max_usage: int | Decimal = -1
    if res.max_usage_ns is not None:
        max_usage = res.max_usage_ns if units else seconds(res.max_usage_ns)
    return {
        "AttributesDigest": res.attributes.digest() if res.attributes else None,
        "ResourceAllocation": res.resource_allocation,
        "MaxUsage": max_usage,
        "Thresholds": ",".join(res.threshold_ids) if res.threshold_ids is not None else None,
        "StatQueues": ",".join(res.stat_queue_ids) if res.stat_queue_ids is not None else None,
    }


def update_reply(res: UpdateResult) -> dict[str, Any]:
    return {
        "Attributes": attributes_json(res.attributes),
        "MaxUsage": res.max_usage_ns if res.max_usage_ns is not None else UNLIMITED_NS,
    }


def compat_seconds(ns: int | None, *, units: bool = False) -> int:
    """compat_mode replies: JSON integer seconds (the count for a unit ToR), -1 unlimited."""
    if ns is None or ns == UNLIMITED_NS:
        return -1
    return ns if units else ns // SECOND


def attributes_json(a: AttributesReply | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "MatchedProfiles": list(a.matched_profiles),
        # v0.10 answers the paths as AttributeS gives them (``*req.Password``, ``*tenant``); SM
        # keeps the bare field names (the digest's), so the ``*req.`` prefix is put back here
        "AlteredFields": [f if f.startswith("*") else f"*req.{f}" for f in a.altered_fields],
        "CGREvent": {
            "Tenant": a.event.tenant,
            "ID": a.event.id,
            "Time": a.event.time,
            "Event": a.event.event,
        },
    }


def suppliers_json(s: SuppliersReply | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "ProfileID": s.profile_id,
        "SortedSuppliers": [
            {"SupplierID": x.id, "SupplierParameters": x.params, "SortingData": {}}
            for x in s.suppliers
        ],
    }
