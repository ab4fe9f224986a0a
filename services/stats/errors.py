"""CGRateS error words used by StatS, ThresholdS and SupplierS (the exact texts clients compare)."""

from __future__ import annotations

from cgrpy.event import CGREvent


class CGRError(Exception):
    """An error whose ``str()`` is the CGRateS error text (``NOT_FOUND``, ``SERVER_ERROR: …``)."""


class NotFoundError(CGRError):
    def __init__(self, detail: str = "") -> None:
        super().__init__("NOT_FOUND" + (f":{detail}" if detail else ""))


class MandatoryIEMissingError(CGRError):
    def __init__(self, *fields: str) -> None:
        self.fields = list(fields)
        super().__init__(f"MANDATORY_IE_MISSING: [{' '.join(fields)}]")


class PartiallyExecutedError(CGRError):
    def __init__(self, details: list[str] | None = None) -> None:
        self.details = list(details or [])
        super().__init__("PARTIALLY_EXECUTED")


class ServerError(CGRError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"SERVER_ERROR: {detail}")


def validate_event(event: CGREvent | None) -> CGREvent:
    """Spec §1.1 for StatS/ThresholdS/SupplierS: CGREvent, Tenant and ID, and an Event map."""
    if event is None:
        raise MandatoryIEMissingError("CGREvent")
    missing = [name for name, v in (("Tenant", event.tenant), ("ID", event.id)) if not v]
    if missing:
        raise MandatoryIEMissingError(*missing)
    if event.event is None:
        raise MandatoryIEMissingError("Event")
    return event
