"""Value typing and coercions of CGRateS v0.10 (docs/profiles.md).

Events carry JSON-typed values (``str``, ``int``, ``Decimal``, ``bool``, ``None``, lists, maps)
plus, from Python callers, ``datetime`` and :class:`Duration`. Filters and attributes need the
exact Go coercions: text for ``*string``/index keys, "smart parsing" of strings for comparisons,
and a comparison that refuses to mix kinds it cannot convert. A Go float64 is modelled by
``Decimal`` so comparisons are exact.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from cgrpy.filters.errors import FilterError
from cgrpy.gotime import ZERO_TIME
from cgrpy.iface import Duration, iface_as_string, timedelta_ns
from cgrpy.units import UnitError, parse_duration

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ConversionError(FilterError):
    """A value could not be converted to the type an operation needs."""


# --- time layout detector ----------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.I
)
_SQL_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d+)?")
_GO_STRING_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d+)? ([+-])(\d{2})(\d{2})( \w+)?"
)
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})")
_GO_DURATION = re.compile(r"[+-]?(([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h))+")


def _mk(parts: tuple[str | None, ...], tz: timedelta = timedelta(0)) -> datetime:
    y, mo, d, h, mi, s = (int(x or 0) for x in parts[:6])
    frac = (parts[6] if len(parts) > 6 else None) or ""
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        local = datetime(y, mo, d, h, mi, s, micro)
    except ValueError as exc:
        raise ConversionError(f"Unsupported time format: {exc}") from None
    return (local - tz).replace(tzinfo=UTC)


def _add_months(t: datetime, months: int) -> datetime:
    # Go's AddDate normalises overflowing days (Jan 31 + 1 month = Mar 3); replicate that.
    y, m = divmod(t.month - 1 + months, 12)
    year, month = t.year + y, m + 1
    last = calendar.monthrange(year, month)[1]
    overflow = max(0, t.day - last)
    return t.replace(year=year, month=month, day=min(t.day, last)) + timedelta(days=overflow)


def parse_time_detect(s: str, now: datetime | None = None) -> datetime:
    """Go ``ParseTimeDetectLayout`` (UTC): RFC3339, SQL/Go-String layouts, unix stamps, keywords.

    ``""``, ``*unlimited`` and ``"0"`` are the zero time. Unknown -> ``Unsupported time format``.
    """
    s = s.strip()
    if s in ("", "*unlimited", "0"):
        return ZERO_TIME
    now = now or datetime.now(UTC)
    if s == "*now":
        return now
    if s == "*daily":
        return now + timedelta(days=1)
    if s == "*monthly":
        return _add_months(now, 1)
    if s == "*yearly":
        return _add_months(now, 12)
    if s.startswith("*month_end"):
        first_next = _add_months(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), 1)
        end = first_next - timedelta(microseconds=1)
        rest = s[len("*month_end") :]
        if rest.startswith("+"):
            end += timedelta(microseconds=parse_duration(rest[1:]) // 1000)
        elif rest:
            raise ConversionError(f"Unsupported time format: {s}")
        return end
    if s.startswith("+"):
        try:
            return now + timedelta(microseconds=parse_duration(s[1:]) // 1000)
        except UnitError:
            raise ConversionError(f"Unsupported time format: {s}") from None
    if m := _RFC3339.fullmatch(s):
        z = m.group(8).upper()
        tz = timedelta(0)
        if z != "Z":
            sign = -1 if z[0] == "-" else 1
            tz = sign * timedelta(hours=int(z[1:3]), minutes=int(z[4:6]))
        return _mk(m.groups(), tz)
    if m := _GO_STRING_TIME.fullmatch(s):
        sign = -1 if m.group(8) == "-" else 1
        return _mk(m.groups(), sign * timedelta(hours=int(m.group(9)), minutes=int(m.group(10))))
    if m := _SQL_TIME.fullmatch(s):
        return _mk(m.groups())
    if s.isdigit():
        if len(s) == 14:
            return _mk(_COMPACT.fullmatch(s).groups())  # type: ignore[union-attr]
        v = int(s)
        if len(s) == 19:  # unix nanoseconds
            return datetime.fromtimestamp(v // 10**9, UTC) + timedelta(microseconds=v % 10**9 // 1000)
        if len(s) == 16:  # FreeSWITCH microseconds
            return datetime.fromtimestamp(v // 10**6, UTC) + timedelta(microseconds=v % 10**6)
        if len(s) == 13:  # unix milliseconds
            return datetime.fromtimestamp(v // 1000, UTC) + timedelta(milliseconds=v % 1000)
        if len(s) <= 10:  # unix seconds
            return datetime.fromtimestamp(v, UTC)
    raise ConversionError(f"Unsupported time format: {s}")


# --- smart_parse ------------------------------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_GO_BOOLS = {
    "1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
    "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False,
}


def smart_parse(s: str, now: datetime | None = None) -> Any:
    """Go ``StringToInterface``: int64, bool, float, time, duration, else the string itself."""
    if _INT.fullmatch(s):
        v = int(s)
        if INT64_MIN <= v <= INT64_MAX:
            return v
    if s in _GO_BOOLS:
        return _GO_BOOLS[s]
    if _FLOAT.fullmatch(s):
        return Decimal(s)
    try:
        return parse_time_detect(s, now)
    except (ConversionError, UnitError, ValueError, OverflowError):
        pass
    if _GO_DURATION.fullmatch(s):
        try:
            return Duration(parse_duration(s))
        except UnitError:
            pass
    return s


# --- to_duration / to_float --------------------------------------------------------------------


def to_duration(v: Any) -> Duration:
    """CGRateS ``IfaceAsDuration``: numbers are nanoseconds, ``"60"`` is 60 ns, Go syntax else."""
    if isinstance(v, Duration):
        return v
    if isinstance(v, bool) or v is None:
        raise ConversionError(f"cannot convert field: {iface_as_string(v)} to time.Duration")
    if isinstance(v, int):
        return Duration(v)
    if isinstance(v, Decimal):
        return Duration(int(v))
    if isinstance(v, timedelta):
        return Duration(timedelta_ns(v))
    if isinstance(v, str):
        s = v.strip()
        if s == "*unlimited":
            return Duration(-1)
        if _FLOAT.fullmatch(s):
            return Duration(int(Decimal(s)))
        try:
            return Duration(parse_duration(s))
        except UnitError:
            pass
    raise ConversionError(f"cannot convert field: {iface_as_string(v)} to time.Duration")


def to_float(v: Any) -> Decimal:
    """CGRateS ``IfaceAsFloat64`` (exact): numbers and durations (ns) as Decimal, text parsed."""
    if isinstance(v, bool) or v is None:
        raise ConversionError(f"cannot convert field: {iface_as_string(v)} to float64")
    if isinstance(v, int):
        return Decimal(int(v))
    if isinstance(v, Decimal):
        return v
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            pass
        else:
            if d.is_finite() and "_" not in v:
                return d
    raise ConversionError(f"cannot convert field: {iface_as_string(v)} to float64")


# --- comparison --------------------------------------------------------------------------------

COMPARISON_TYPES = ("*gt", "*gte", "*lt", "*lte", "*eq")


def kind_of(v: Any) -> str:
    """The Go kind after normalisation: durations are int64 nanoseconds."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, Decimal | float):
        return "float"
    if isinstance(v, datetime):
        return "time"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "nil"
    return type(v).__name__


def _numeric(v: Any) -> Decimal:
    if isinstance(v, float):
        return Decimal(repr(v))
    return Decimal(int(v)) if isinstance(v, int) else v


def compare(op: str, field: Any, value: Any) -> bool:
    """Apply ``*gt``/``*gte``/``*lt``/``*lte``/``*eq`` to two already typed operands.

    Mixed int/float/duration compare numerically; other kind mismatches raise
    ``incomparable: ...``; ordering strings or bools raises ``unsupported comparison type``.
    ``*lt`` is ``not >=`` and ``*lte`` is ``not >``, as in v0.10.
    """
    a, b = field, value
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        if ka in ("int", "float"):
            a, ka = _numeric(a), "float"
        if kb in ("int", "float"):
            b, kb = _numeric(b), "float"
    if ka != kb:
        raise FilterError(f"incomparable: {iface_as_string(field)} with {iface_as_string(value)}")
    if ka in ("int", "float"):
        a, b = _numeric(a), _numeric(b)
    elif ka == "time":
        a, b = _aware(a), _aware(b)
    elif not (ka == "string" and op == "*eq"):
        raise FilterError(f"unsupported comparison type: {iface_as_string(field)}, kind: {ka}")
    if op == "*eq":
        return bool(a == b)
    if op == "*gt":
        return bool(a > b)
    if op == "*gte":
        return bool(a >= b)
    if op == "*lt":
        return not a >= b
    if op == "*lte":
        return not a > b
    raise FilterError(f"NOT_IMPLEMENTED:{op}")


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def comparable_field(v: Any, now: datetime | None = None) -> Any:
    """A string field is smart-parsed, anything else used as it is."""
    return smart_parse(v, now) if isinstance(v, str) else v
