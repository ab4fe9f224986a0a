"""The event every subsystem passes around: CGRateS's CGREvent (tenant, id, time, fields).

Field values keep their JSON type because CGRateS's typing rules depend on it (a JSON number
``Usage`` is nanoseconds, text is parsed): ``str``, ``int``, ``Decimal`` (never float), ``bool``,
``None``, or a nested list/dict. ``cgrpy.wire`` converts to and from the protobuf ``Event``.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import MAX_PREC, Context, Decimal
from typing import Any

from cgrpy.errors import MandatoryIEMissingError
from cgrpy.gotime import go_time

DEFAULT_TENANT = "cgrates.org"

FieldValue = Any  # str | int | Decimal | bool | None | list | dict


@dataclass
class CGREvent:
    tenant: str = DEFAULT_TENANT
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:7])
    time: datetime | None = None
    event: dict[str, FieldValue] = field(default_factory=dict)

    def get(self, name: str, default: FieldValue = None) -> FieldValue:
        return self.event.get(name, default)

    def copy(self) -> CGREvent:
        """A deep copy of the fields, exactly as a JSON round trip would give them back."""
        return CGREvent(self.tenant, self.id, self.time, copy_exact(self.event))


def loads_exact(text: str | bytes) -> Any:
    """JSON -> Python with exact numbers: fractions become Decimal, integers stay int."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


# Built once: json.loads with parse_float builds a new decoder on every call, which costs more
# than decoding a small event.
_DECODER = json.JSONDecoder(parse_float=Decimal)


def dumps_exact(value: Any) -> str:
    """Python -> compact JSON; Decimal is written as a JSON number with its exact digits.

    The stdlib C encoder does the work: a Decimal goes through ``default`` as a marked string
    that one regex pass turns back into a bare number. The C encoder writes floats without asking,
    so its output is checked for a non-integer number outside a string (a float) and anything
    suspicious is encoded again by the plain recursive encoder, which refuses floats. Text is the
    same as the recursive encoder's, except that non-ASCII keys are written as UTF-8, not escaped.
    """
    try:
        out = _C_ENCODER.encode(value)
    except (TypeError, ValueError):  # non-str keys, NaN/Infinity, unknown types: the slow path decides
        return _encode(value)
    if _looks_like_float(out):
        return _encode(value)  # a float, or a string that only looks like one: rare, exact either way
    if _MARK_ESCAPED in out:
        out = _DECIMAL_RE.sub(r"\1", out)
    return out


# normalize() under the default context rounds to 28 digits; this one never rounds.
_EXACT = Context(prec=MAX_PREC)
# A per-process random tag, so no text an event carries can pose as an encoded Decimal.
_MARK = "\x00" + secrets.token_hex(8) + ":"
_MARK_ESCAPED = json.dumps(_MARK)[1:-1]
_DECIMAL_RE = re.compile('"' + re.escape(_MARK_ESCAPED) + '([-0-9.]+)"')
# A number with a fraction or exponent right after [ : , (or at the start) and before , ] } (or at
# the end): a float, once the strings are blanked out. The cheap candidate scan runs over every
# output; blanking and the full pattern only where it hits, which is mostly text inside strings
# (a CostDetails JSON carried as a field, Go times with fractions, marked Decimals).
_FLOAT_CANDIDATE = re.compile(r"[\[:,]-?\d+[.eE]")
_FLOAT = re.compile(r"(?:^|[\[:,])-?\d+(?:\.\d+(?:[eE][-+]?\d+)?|[eE][-+]?\d+)(?=[,\]}]|$)")
# A JSON string as the C encoder writes it (escapes are a backslash and one character, or \uXXXX
# whose first character is enough to step over), unrolled so the engine does not backtrack per char.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)


def _looks_like_float(out: str) -> bool:
    if _FLOAT_CANDIDATE.search(out) is None and _FLOAT.match(out) is None:
        return False
    return _FLOAT.search(_STRING.sub('""', out)) is not None


def _decimal_text(v: Decimal) -> str:
    return format(v.normalize(_EXACT), "f") if v != 0 else "0"


def _default(v: Any) -> str:
    if isinstance(v, Decimal):
        return _MARK + _decimal_text(v)
    if isinstance(v, datetime):
        return go_time(v)
    raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")


_C_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_default, allow_nan=False, check_circular=False
)


def _encode(v: Any) -> str:
    if isinstance(v, Decimal):
        return _decimal_text(v)
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + _encode(x) for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(_encode(x) for x in v) + "]"
    if isinstance(v, datetime):
        return json.dumps(go_time(v))
    if isinstance(v, float):
        raise TypeError(f"refusing float {v!r} in JSON output: use Decimal")
    return json.dumps(v, ensure_ascii=False)


def json_roundtrip(value: Any) -> Any:
    return loads_exact(dumps_exact(value))


class _Unusual(Exception):
    """A value :func:`copy_exact` leaves to the JSON round trip (it alone defines the result)."""


def copy_exact(value: Any) -> Any:
    """What ``json_roundtrip(value)`` returns, without writing and parsing the text: events are
    copied on every request, and most hold only str, int, bool, None, lists and dicts. An integral
    Decimal comes back an int and any other Decimal normalized, as through the text; datetimes,
    tuples, non-str keys, floats and the like take the round trip itself."""
    try:
        return _copy(value)
    except _Unusual:
        return json_roundtrip(value)


def _copy(v: Any) -> Any:
    t = type(v)
    if t is str or t is int or t is bool or v is None:
        return v
    if t is dict:
        out = {}
        for k, x in v.items():
            if type(k) is not str:
                raise _Unusual
            out[k] = _copy(x)
        return out
    if t is list:
        return [_copy(x) for x in v]
    if t is Decimal and v.is_finite():
        return int(v) if v == v.to_integral_value() else Decimal(_decimal_text(v))
    raise _Unusual


def validate_event(event: CGREvent | None) -> CGREvent:
    """StatS/ThresholdS/SupplierS/ResourceS requests: a CGREvent with Tenant, ID and an Event map,
    else ``MANDATORY_IE_MISSING`` naming what is missing."""
    if event is None:
        raise MandatoryIEMissingError("CGREvent")
    missing = [name for name, v in (("Tenant", event.tenant), ("ID", event.id)) if not v]
    if missing:
        raise MandatoryIEMissingError(*missing)
    if event.event is None:
        raise MandatoryIEMissingError("Event")
    return event
