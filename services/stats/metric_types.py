"""StatS metrics of CGRateS v0.10 (docs/profiles.md), exact: Decimal money, int ns durations.

Every metric keeps one entry per event ID. Adding an ID that is already there merges the new
contribution into that entry (a counter plus the summed value); removing an ID takes away one
*averaged* contribution, as v0.10's "compressed" entries do. The count of contributions is ``n``.

A metric is "not available" while ``n == 0`` or ``0 < MinItems`` and ``n < MinItems``; it then
reads as ``N/A`` (string), ``-1`` (float) and ``-1`` / ``-1ns`` (native value for ThresholdS).

Adding is two steps so a queue can stay atomic: :meth:`Metric.extract` reads and validates the
event's field (raising :class:`MetricError`, changing nothing) and :meth:`Metric.apply` records the
extracted contribution.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from cgrpy.event import CGREvent
from cgrpy.gotime import GO_ZERO_TIME
from cgrpy.iface import iface_as_string
from cgrpy.units import (
    SECOND,
    UnitError,
    format_duration,
    money_str,
    parse_decimal,
    parse_duration,
    parse_time,
    round_money,
)

NOT_AVAILABLE = "N/A"
MINUS_ONE = Decimal(-1)
DEFAULT_ROUNDING_DECIMALS = 5
REQ_PREFIX = "~*req."


class MetricError(ValueError):
    """An event cannot be counted by a metric, or a metric ID is invalid (CGRateS error text)."""


# --- reading event fields -----------------------------------------------


_MISSING = object()


def field_value(event: CGREvent, path: str) -> Any:
    """The value at a dotted path (``A.B``, ``A[2]``) of the event, or ``_MISSING``."""
    cur: Any = event.event
    for seg in path.split("."):
        idx: int | None = None
        if seg.endswith("]") and "[" in seg:
            seg, _, rest = seg.partition("[")
            try:
                idx = int(rest[:-1])
            except ValueError:
                return _MISSING
        if not isinstance(cur, dict) or seg not in cur:
            return _MISSING
        cur = cur[seg]
        if idx is not None:
            if not isinstance(cur, list) or not -len(cur) <= idx < len(cur):
                return _MISSING
            cur = cur[idx]
    return cur


def to_duration(value: Any, name: str) -> int:
    """Spec to_duration: numbers (and numeric text) are nanoseconds, else Go duration text."""
    if isinstance(value, bool) or value is None:
        raise MetricError(f"cannot convert field {name}={value!r} to a duration")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except UnitError as exc:
            raise MetricError(f"field {name}: {exc}") from None
    raise MetricError(f"cannot convert field {name}={value!r} to a duration")


def to_decimal(value: Any, name: str) -> Decimal:
    """Spec to_float, exactly. A duration travelling as Go text (``"135s"``) counts as nanoseconds,
    as a native Go duration does in v0.10 (``*sum:~*req.Usage`` sums nanoseconds)."""
    if isinstance(value, bool) or value is None:
        raise MetricError(f"cannot convert field {name}={value!r} to a number")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return parse_decimal(value, empty=None)
        except UnitError:
            pass
        try:
            return Decimal(parse_duration(value))
        except UnitError:
            raise MetricError(f"cannot convert field {name}={value!r} to a number") from None
    raise MetricError(f"cannot convert field {name}={value!r} to a number")


def is_answered(value: Any) -> bool:
    """``AnswerTime`` present and not the zero time; a non-time value is an error."""
    if value is _MISSING or value is None:
        return False
    if isinstance(value, datetime):
        return True
    if isinstance(value, bool):
        raise MetricError(f"AnswerTime is not a time: {value!r}")
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        if value.strip() in ("", "0", GO_ZERO_TIME):
            return False
        try:
            return parse_time(value) is not None
        except UnitError as exc:
            raise MetricError(f"AnswerTime: {exc}") from None
    raise MetricError(f"AnswerTime is not a time: {value!r}")


def seconds(ns: int) -> Decimal:
    """Go ``Duration.Seconds()`` without the float: exact seconds."""
    return (Decimal(ns) / SECOND).normalize() if ns else Decimal(0)


def _div_trunc(a: int, b: int) -> int:
    """Integer division truncating toward zero, as Go's ``Duration / Duration``."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


# --- metric base --------------------------------------------------------------------------------


class Metric(ABC):
    """One metric of a queue. Subclasses define how a contribution is read and what it means."""

    kind: ClassVar[str]

    def __init__(
        self,
        metric_id: str,
        *,
        min_items: int = 0,
        filter_ids: list[str] | None = None,
        rounding_decimals: int = DEFAULT_ROUNDING_DECIMALS,
    ) -> None:
        self.metric_id = metric_id
        self.min_items = min_items
        self.filter_ids = list(filter_ids or [])
        self.rounding_decimals = rounding_decimals

    @property
    @abstractmethod
    def count(self) -> int: ...

    def available(self) -> bool:
        n = self.count
        return n > 0 and not (self.min_items > 0 and n < self.min_items)

    @abstractmethod
    def extract(self, event: CGREvent) -> Any:
        """The event's contribution; raises MetricError and changes nothing."""

    @abstractmethod
    def apply(self, event_id: str, contribution: Any) -> None: ...

    def add(self, event: CGREvent) -> None:
        self.apply(event.id, self.extract(event))

    @abstractmethod
    def remove(self, event_id: str) -> None:
        """Take one contribution of ``event_id`` away; unknown IDs are a no-op."""

    @abstractmethod
    def reset(self) -> None: ...

    @abstractmethod
    def value(self) -> Decimal | int | None:
        """The metric value (int ns for duration metrics), None when not available."""

    @abstractmethod
    def string_value(self) -> str: ...

    @abstractmethod
    def float_value(self) -> Decimal: ...

    @abstractmethod
    def native_value(self) -> Decimal | int:
        """Value sent to ThresholdS: Decimal, or int nanoseconds for duration metrics."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """JSON-able per-event entries (Decimals kept exact by ``dumps_exact``)."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None: ...

    def _round(self, v: Decimal) -> Decimal:
        return round_money(v, self.rounding_decimals, "*middle")

    def v010_json(self) -> dict[str, Any]:
        """The metric as v0.10's StatQueue.SQMetrics shows it (its exported struct fields)."""
        raise NotImplementedError(self.kind)


class _Summing(Metric):
    """Metrics that keep a running total and a count per event ID."""

    def __init__(self, metric_id: str, **kw: Any) -> None:
        super().__init__(metric_id, **kw)
        self._entries: dict[str, list[Any]] = {}  # event id -> [total, count]
        self._total: Any = self._zero()
        self._n = 0

    @staticmethod
    def _zero() -> Any:
        return Decimal(0)

    def _avg_of(self, total: Any, count: int) -> Any:
        return total / count

    @property
    def count(self) -> int:
        return self._n

    def apply(self, event_id: str, contribution: Any) -> None:
        if contribution is None:
            return
        entry = self._entries.setdefault(event_id, [self._zero(), 0])
        entry[0] += contribution
        entry[1] += 1
        self._total += contribution
        self._n += 1

    def remove(self, event_id: str) -> None:
        entry = self._entries.get(event_id)
        if entry is None:
            return
        total, count = entry
        share = total if count == 1 else self._avg_of(total, count)
        self._total -= share
        self._n -= 1
        if count == 1:
            del self._entries[event_id]
        else:
            entry[0] = total - share
            entry[1] = count - 1

    def reset(self) -> None:
        self._entries.clear()
        self._total = self._zero()
        self._n = 0

    def state(self) -> dict[str, Any]:
        return {"entries": {k: [v[0], v[1]] for k, v in self._entries.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.reset()
        for eid, (total, count) in state.get("entries", {}).items():
            t = self._coerce(total)
            self._entries[eid] = [t, int(count)]
            self._total += t
            self._n += int(count)

    def _coerce(self, raw: Any) -> Any:
        return Decimal(raw) if not isinstance(raw, Decimal) else raw

    # v0.10's field names: the running total, and each event's (average) value
    _total_field: ClassVar[str] = "Sum"
    _event_field: ClassVar[str] = "Stat"

    def v010_json(self) -> dict[str, Any]:
        """StatASR/ACC/TCC/ACD/TCD/PDD/Sum/Average: FilterIDs, Sum (ASR: Answered), Count,
        Events {event id: {Stat|Duration: the event's average, CompressFactor: its count}},
        MinItems (and FieldName for the parametrised ones)."""
        out = {
            "FilterIDs": list(self.filter_ids), self._total_field: self._total, "Count": self._n,
            "Events": {eid: {self._event_field: self._avg_of(total, n), "CompressFactor": n}
                       for eid, (total, n) in self._entries.items()},
            "MinItems": self.min_items,
        }
        param = getattr(self, "param", None)
        return out if param is None else {**out, "FieldName": param}


class _DurationSumming(_Summing):
    _event_field: ClassVar[str] = "Duration"

    @staticmethod
    def _zero() -> Any:
        return 0

    def _avg_of(self, total: Any, count: int) -> Any:
        return _div_trunc(total, count)

    def _coerce(self, raw: Any) -> Any:
        return int(raw)

    def string_value(self) -> str:
        v = self.value()
        return NOT_AVAILABLE if v is None else format_duration(int(v))

    def float_value(self) -> Decimal:
        v = self.value()
        return MINUS_ONE if v is None else seconds(int(v))

    def native_value(self) -> Decimal | int:
        v = self.value()
        return -1 if v is None else v


class _DecimalValued(Metric):
    def string_value(self) -> str:
        v = self.value()
        return NOT_AVAILABLE if v is None else money_str(Decimal(v))

    def float_value(self) -> Decimal:
        v = self.value()
        return MINUS_ONE if v is None else Decimal(v)

    def native_value(self) -> Decimal | int:
        return self.float_value()


# --- the metrics ----------------------------------------------------------------------------------


class ASR(_DecimalValued, _Summing):
    """Answer-seizure ratio in percent; answered = AnswerTime present and non-zero."""

    kind = "*asr"
    _total_field: ClassVar[str] = "Answered"

    def extract(self, event: CGREvent) -> Decimal:
        return Decimal(1) if is_answered(field_value(event, "AnswerTime")) else Decimal(0)

    def remove(self, event_id: str) -> None:
        entry = self._entries.get(event_id)
        if entry is None:
            return
        total, count = entry
        # A merged entry counts as answered when more than half of it was (v0.10 semantics).
        share = Decimal(1) if total / count > Decimal("0.5") else Decimal(0)
        self._total -= share
        self._n -= 1
        if count == 1:
            del self._entries[event_id]
        else:
            entry[0] = total - share
            entry[1] = count - 1

    def value(self) -> Decimal | None:
        if not self.available():
            return None
        return self._round(Decimal(100) * self._total / self._n)

    def string_value(self) -> str:
        v = self.value()
        return NOT_AVAILABLE if v is None else money_str(v) + "%"


class _FieldDuration(_DurationSumming):
    field_name: ClassVar[str]

    def extract(self, event: CGREvent) -> int:
        raw = field_value(event, self.field_name)
        if raw is _MISSING:
            raise MetricError(f"NOT_FOUND:{self.field_name}")
        return to_duration(raw, self.field_name)


class ACD(_FieldDuration):
    """Average call duration over every counted event, answered or not (integer ns division)."""

    kind = "*acd"
    field_name = "Usage"

    def value(self) -> int | None:
        return _div_trunc(self._total, self._n) if self.available() else None


class TCD(_FieldDuration):
    kind = "*tcd"
    field_name = "Usage"

    def value(self) -> int | None:
        return self._total if self.available() else None


class PDD(_FieldDuration):
    kind = "*pdd"
    field_name = "PDD"

    def value(self) -> int | None:
        return _div_trunc(self._total, self._n) if self.available() else None


class _FieldDecimal(_DecimalValued, _Summing):
    field_name: ClassVar[str]

    def extract(self, event: CGREvent) -> Decimal:
        raw = field_value(event, self.field_name)
        if raw is _MISSING:
            raise MetricError(f"NOT_FOUND:{self.field_name}")
        return to_decimal(raw, self.field_name)


class ACC(_FieldDecimal):
    kind = "*acc"
    field_name = "Cost"

    def value(self) -> Decimal | None:
        return self._round(self._total / self._n) if self.available() else None


class TCC(_FieldDecimal):
    kind = "*tcc"
    field_name = "Cost"

    def value(self) -> Decimal | None:
        return self._round(self._total) if self.available() else None


def _param_path(metric_id: str, param: str) -> str:
    if not param.startswith(REQ_PREFIX) or len(param) == len(REQ_PREFIX):
        raise MetricError(f"Invalid format for field {param}")
    return param[len(REQ_PREFIX) :]


class _Parametrised(_DecimalValued, _Summing):
    """``*sum:<p>`` / ``*average:<p>``: ``p`` is ``~*req.<Field>`` or a numeric constant."""

    def __init__(self, metric_id: str, param: str, **kw: Any) -> None:
        super().__init__(metric_id, **kw)
        self.param = param
        self._path: str | None = None
        self._const: Decimal | None = None
        if param.startswith("~"):
            self._path = _param_path(metric_id, param)
        else:
            try:
                self._const = parse_decimal(param, empty=None)
            except UnitError:
                raise MetricError(f"Invalid format for field {param}") from None

    def extract(self, event: CGREvent) -> Decimal:
        if self._const is not None:
            return self._const
        assert self._path is not None
        raw = field_value(event, self._path)
        if raw is _MISSING:
            raise MetricError(f"NOT_FOUND:{self._path}")
        return to_decimal(raw, self._path)


class Sum(_Parametrised):
    kind = "*sum"

    def value(self) -> Decimal | None:
        return self._round(self._total) if self.available() else None


class Average(_Parametrised):
    kind = "*average"

    def value(self) -> Decimal | None:
        return self._round(self._total / self._n) if self.available() else None


class _Distinct(_DecimalValued):
    """Number of distinct text values; a removal drops one value recorded under that event ID."""

    def __init__(self, metric_id: str, **kw: Any) -> None:
        super().__init__(metric_id, **kw)
        self._entries: dict[str, list[str]] = {}
        self._seen: Counter[str] = Counter()
        self._n = 0

    @property
    def count(self) -> int:
        return self._n

    @abstractmethod
    def _path(self) -> str: ...

    def extract(self, event: CGREvent) -> str:
        raw = field_value(event, self._path())
        if raw is _MISSING:
            raise MetricError(self._missing_error())
        return iface_as_string(raw)

    def _missing_error(self) -> str:
        return f"NOT_FOUND:{self._path()}"

    def apply(self, event_id: str, contribution: Any) -> None:
        self._entries.setdefault(event_id, []).append(contribution)
        self._seen[contribution] += 1
        self._n += 1

    def remove(self, event_id: str) -> None:
        values = self._entries.get(event_id)
        if not values:
            return
        v = values.pop()
        if not values:
            del self._entries[event_id]
        self._seen[v] -= 1
        if self._seen[v] <= 0:
            del self._seen[v]
        self._n -= 1

    def reset(self) -> None:
        self._entries.clear()
        self._seen.clear()
        self._n = 0

    def value(self) -> Decimal | None:
        return Decimal(len(self._seen)) if self.available() else None

    def state(self) -> dict[str, Any]:
        return {"entries": {k: list(v) for k, v in self._entries.items()}}

    def v010_json(self) -> dict[str, Any]:
        """StatDDC/StatDistinct: FilterIDs, FieldValues {value: {event id: {}}}, Events {event id:
        {value: count}}, MinItems, Count (and FieldName for *distinct)."""
        values: dict[str, dict[str, Any]] = {}
        events: dict[str, dict[str, int]] = {}
        for eid, vals in self._entries.items():
            for v in vals:
                values.setdefault(v, {})[eid] = {}
                events.setdefault(eid, {})[v] = events.get(eid, {}).get(v, 0) + 1
        out = {"FilterIDs": list(self.filter_ids), "FieldValues": values, "Events": events,
               "MinItems": self.min_items, "Count": self._n}
        param = getattr(self, "param", None)
        return out if param is None else {**out, "FieldName": param}

    def load_state(self, state: dict[str, Any]) -> None:
        self.reset()
        for eid, values in state.get("entries", {}).items():
            for v in values:
                self.apply(eid, str(v))


class DDC(_Distinct):
    kind = "*ddc"

    def _path(self) -> str:
        return "Destination"

    def _missing_error(self) -> str:
        return "NOT_FOUND"


class Distinct(_Distinct):
    kind = "*distinct"

    def __init__(self, metric_id: str, param: str, **kw: Any) -> None:
        super().__init__(metric_id, **kw)
        self.param = param
        self._field = _param_path(metric_id, param)

    def _path(self) -> str:
        return self._field


_PLAIN: dict[str, type[Metric]] = {
    m.kind: m for m in (ASR, ACD, TCD, PDD, ACC, TCC, DDC)
}
_PARAM: dict[str, type[_Parametrised] | type[Distinct]] = {
    "*sum": Sum,
    "*average": Average,
    "*distinct": Distinct,
}


def new_metric(
    metric_id: str,
    *,
    min_items: int = 0,
    filter_ids: list[str] | None = None,
    rounding_decimals: int = DEFAULT_ROUNDING_DECIMALS,
) -> Metric:
    """The metric for a v0.10 metric ID (``*asr``, ``*sum:~*req.Usage``, ``*average:1`` …)."""
    kw: dict[str, Any] = {
        "min_items": min_items,
        "filter_ids": filter_ids,
        "rounding_decimals": rounding_decimals,
    }
    kind, sep, param = metric_id.partition(":")
    if kind in _PARAM:
        if not sep or not param:
            raise MetricError(f"Invalid format for field {metric_id} (expected {kind}:~*req.Field)")
        return _PARAM[kind](metric_id, param, **kw)
    if kind in _PLAIN and not sep:
        return _PLAIN[kind](metric_id, **kw)
    raise MetricError(f"unsupported metric type {metric_id}")
