"""Build RALs's CallDescriptor from a (run) event: the one place that knows which CGRateS event
fields feed rating, shared by SM and the CDR pipeline."""

from __future__ import annotations

from datetime import datetime

from cgrates.v1 import rals_pb2
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.units import UnitError, parse_duration, parse_time, to_unix_nano

DEFAULT_CATEGORY = "call"
DEFAULT_TOR = "*voice"


def _text(v: object) -> str:
    return "" if v is None else str(v)


def event_start_time(ev: CGREvent) -> datetime | None:
    """AnswerTime, else SetupTime, else the event time (CGRateS's order for rating)."""
    for name in ("AnswerTime", "SetupTime"):
        raw = ev.get(name)
        if raw not in (None, "", 0, "0"):
            try:
                return parse_time(raw)
            except UnitError as exc:
                raise CGRError("INVALID_ARGUMENT", f"{name}: {exc}") from None
    return ev.time


def event_usage(ev: CGREvent, default_ns: int = 0) -> int:
    """Usage in ns: a JSON number is nanoseconds; text is a duration (``"2s"``)."""
    raw = ev.get("Usage")
    if raw in (None, ""):
        return default_ns
    try:
        return parse_duration(raw)
    except UnitError as exc:
        raise CGRError("INVALID_ARGUMENT", f"Usage: {exc}") from None


def descriptor_from_event(
    ev: CGREvent,
    *,
    usage_ns: int,
    offset_ns: int = 0,
    loop_index: int = 0,
    default_tenant: str = "cgrates.org",
    default_category: str = DEFAULT_CATEGORY,
) -> rals_pb2.CallDescriptor:
    """The descriptor for the piece ``[start+offset, start+offset+usage)`` of the run ``ev``."""
    account = _text(ev.get("Account"))
    subject = _text(ev.get("Subject")) or account
    if not account and not subject:
        raise CGRError("MANDATORY_IE_MISSING", "[Account]")
    start = event_start_time(ev)
    start_ns = to_unix_nano(start) + offset_ns if start else 0
    return rals_pb2.CallDescriptor(
        tenant=ev.tenant or default_tenant,
        category=_text(ev.get("Category")) or default_category,
        subject=subject,
        account=account or subject,
        destination=_text(ev.get("Destination")),
        tor=_text(ev.get("ToR")) or DEFAULT_TOR,
        time_start_unix_ns=start_ns,
        usage_ns=usage_ns,
        duration_index_ns=offset_ns + usage_ns,
        loop_index=loop_index,
        cgrid=_text(ev.get("CGRID")),
        run_id=_text(ev.get("RunID")) or "*default",
    )
