"""The event every subsystem passes around: CGRateS's CGREvent (tenant, id, time, fields).

Field values keep their JSON type because CGRateS's typing rules depend on it (a JSON number
``Usage`` is nanoseconds, text is parsed): ``str``, ``int``, ``Decimal`` (never float), ``bool``,
``None``, or a nested list/dict. ``cgrpy.wire`` converts to and from the protobuf ``Event``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import MAX_PREC, Context, Decimal
from typing import Any

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
        return CGREvent(self.tenant, self.id, self.time, json_roundtrip(self.event))


def loads_exact(text: str | bytes) -> Any:
    """JSON -> Python with exact numbers: fractions become Decimal, integers stay int."""
    return json.loads(text, parse_float=Decimal)


def dumps_exact(value: Any) -> str:
    """Python -> compact JSON; Decimal is written as a JSON number with its exact digits."""
    return _encode(value)


# normalize() under the default context rounds to 28 digits; this one never rounds.
_EXACT = Context(prec=MAX_PREC)


def _encode(v: Any) -> str:
    if isinstance(v, Decimal):
        return format(v.normalize(_EXACT), "f") if v != 0 else "0"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + _encode(x) for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(_encode(x) for x in v) + "]"
    if isinstance(v, datetime):
        return json.dumps(v.isoformat().replace("+00:00", "Z"))
    if isinstance(v, float):
        raise TypeError(f"refusing float {v!r} in JSON output: use Decimal")
    return json.dumps(v, ensure_ascii=False)


def json_roundtrip(value: Any) -> Any:
    return loads_exact(dumps_exact(value))
