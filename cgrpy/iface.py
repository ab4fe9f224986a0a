"""CGRateS ``IfaceAsString``: any event value as the text every subsystem compares and stores.

Filters (``*string``, index keys), attribute values, StatS ``*distinct``/``*ddc``, ThresholdS
accounts, CDR ExtraFields and the call descriptor all turn a value into text with this one rule:
``None`` -> ``""``, bools ``true``/``false``, numbers in their shortest exact decimal form, a
duration in Go syntax (``1m30s``), a time as Go ``RFC3339`` (whole seconds), anything else as JSON.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cgrpy.event import dumps_exact
from cgrpy.gotime import go_rfc3339
from cgrpy.units import format_duration, money_str


class Duration(int):
    """Integer nanoseconds that remember they are a duration (Go ``time.Duration``).

    Only matters where CGRateS keeps the type: text form (``1m30s``) and ``*sum``.
    """

    def __repr__(self) -> str:
        return f"Duration({format_duration(int(self))})"

    def __str__(self) -> str:
        return format_duration(int(self))


def timedelta_ns(td: timedelta) -> int:
    return (td.days * 86400 + td.seconds) * 1_000_000_000 + td.microseconds * 1000


def iface_as_string(v: Any) -> str:
    """The text of ``v`` as CGRateS ``utils.IfaceAsString`` writes it."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Duration):
        return format_duration(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        # Go's strconv.FormatFloat(f, 'f', -1, 64): shortest text, no exponent
        return money_str(v)
    if isinstance(v, float):
        # Only reachable from Python callers; repr() is the shortest round-trip text.
        return money_str(Decimal(repr(v)))
    if isinstance(v, datetime):
        return go_rfc3339(v)
    if isinstance(v, timedelta):
        return format_duration(timedelta_ns(v))
    if isinstance(v, bytes | bytearray):
        return bytes(v).decode("utf-8", errors="replace")
    return dumps_exact(v)
