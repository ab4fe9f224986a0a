"""Reading CGRateS API arguments the way Go's ``encoding/json`` does: keys match field names
case-insensitively, a missing field is its zero value, wrong types are a clear error."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.units import UnitError, check_event_fields, parse_decimal, parse_duration, parse_time


def bad(field: str, detail: str) -> CGRError:
    return CGRError("SERVER_ERROR", f"{field}: {detail}")


class Args:
    """One JSON-RPC argument object; ``a.str("Account")`` also finds ``"account"``."""

    def __init__(self, raw: Any) -> None:
        if raw is None or raw == "":  # methods whose v0.10 argument is an ignored string ("")
            raw = {}
        if not isinstance(raw, dict):
            raise CGRError("SERVER_ERROR", f"params: expected a JSON object, got {type(raw).__name__}")
        self.raw: dict[str, Any] = raw
        self._keys = {k.lower(): k for k in raw}

    def has(self, name: str) -> bool:
        return name.lower() in self._keys

    def get(self, name: str, default: Any = None) -> Any:
        key = self._keys.get(name.lower())
        return default if key is None else self.raw[key]

    def first(self, *names: str) -> Any:
        for n in names:
            v = self.get(n)
            if v not in (None, ""):
                return v
        return None

    def str(self, *names: str) -> str:
        v = self.first(*names)
        if v is None:
            return ""
        if isinstance(v, bool) or isinstance(v, dict | list):
            raise bad(names[0], f"expected text, got {v!r}")
        return str(v)

    def strs(self, *names: str) -> list[str]:
        v = self.first(*names)
        if v is None:
            return []
        if isinstance(v, str):
            return [v]
        if isinstance(v, dict):  # utils.StringMap {"id": true}
            return [str(k) for k, on in v.items() if on]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise bad(names[0], f"expected a list of strings, got {v!r}")
        return list(v)

    def bool(self, name: str) -> bool | None:
        v = self.get(name)
        if v is None:
            return None
        if not isinstance(v, bool):
            raise bad(name, f"expected true/false, got {v!r}")
        return v

    def int(self, name: str) -> int | None:
        v = self.get(name)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad(name, f"expected an integer, got {v!r}")
        return v

    def decimal(self, name: str) -> Decimal | None:
        v = self.get(name)
        if v in (None, ""):
            return None
        try:
            return parse_decimal(v)
        except (UnitError, TypeError) as exc:
            raise bad(name, str(exc)) from None

    def duration(self, name: str) -> int:
        """A Go duration: a JSON number is nanoseconds, text is ``ParseDurationWithNanosecs``."""
        v = self.get(name)
        try:
            return parse_duration(v)
        except UnitError as exc:
            raise bad(name, str(exc)) from None

    def time(self, name: str) -> datetime | None:
        v = self.get(name)
        try:
            return parse_time(v)
        except (UnitError, TypeError) as exc:
            raise bad(name, str(exc)) from None

    def sub(self, name: str) -> Args:
        return Args(self.get(name))

    def require(self, *names: str) -> None:
        """CGRateS ``MissingStructFields``: every absent/empty one, named in one error."""
        missing = [n for n in names if self.get(n) in (None, "", 0)]
        if missing:
            raise CGRError("MANDATORY_IE_MISSING", "[" + " ".join(missing) + "]")


def cgr_event(a: Args, default_tenant: str) -> CGREvent:
    """The ``utils.CGREvent`` embedded in CGRateS args (``Tenant``, ``ID``, ``Time``, ``Event``);
    also accepted nested under ``CGREvent`` as later CGRateS versions send it."""
    if a.has("CGREvent") and isinstance(a.get("CGREvent"), dict):
        a = a.sub("CGREvent")
    event = a.get("Event")
    if event is None:
        raise CGRError("MANDATORY_IE_MISSING", "[Event]")
    if not isinstance(event, dict):
        raise bad("Event", "expected a JSON object")
    try:
        check_event_fields(event)
    except UnitError as exc:
        raise CGRError("SERVER_ERROR", str(exc)) from None
    ev = CGREvent(tenant=a.str("Tenant") or default_tenant, event=dict(event))
    if a.str("ID"):
        ev.id = a.str("ID")
    ev.time = a.time("Time")
    return ev
