"""Units every service shares: durations (int nanoseconds), money (Decimal), times.

CGRateS encodes durations the Go way (`60s`, `1m30s`, a bare number = nanoseconds) and money as
JSON numbers. cgrpy keeps durations as ``int`` nanoseconds and money as ``Decimal`` everywhere;
these helpers are the only place where text turns into either.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
)
from typing import Any

NS = 1
US = 1_000
MS = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

UNLIMITED_NS = -1  # CGRateS `*unlimited` duration

_UNIT_NS = {
    "ns": NS,
    "us": US,
    "µs": US,
    "μs": US,
    "ms": MS,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_BARE_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)")

# Bounds on numbers that come from outside, checked before any conversion. Converting is not
# linear in the size of the input (a regex over 20,000 digits backtracks for seconds, int() of
# Decimal("1e1000000") takes half a minute, Decimal arithmetic on 1e30000000 overflows), so a
# hostile value must be refused by its length or exponent, which costs nothing.
MAX_NUMBER_CHARS = 64  # text of a duration, an amount of money or a time
MAX_DURATION_NS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds
MAX_INTEGER_DIGITS = 21  # money below 10^21 (a float64 in CGRateS is exact to ~15 digits anyway)
MAX_FRACTION_DIGITS = 30  # and no finer than 10^-30
MAX_SIGNIFICANT_DIGITS = MAX_INTEGER_DIGITS + MAX_FRACTION_DIGITS
_SIGNIFICANT = Context(prec=MAX_SIGNIFICANT_DIGITS, traps=[Inexact])
_MAX_UNIX = 10**21  # unix ns of year 9999 is ~2.5 * 10^20


class UnitError(ValueError):
    """A value could not be parsed; the message says what and why."""


def _shown(text: str) -> str:
    return repr(text) if len(text) <= MAX_NUMBER_CHARS else repr(text[:20] + "...")


def check_text(text: str) -> str:
    """``text`` stripped, or UnitError if it is too long to be a number, duration or time."""
    if len(text) > 4 * MAX_NUMBER_CHARS or len(s := text.strip()) > MAX_NUMBER_CHARS:
        raise UnitError(f"too long: {len(text)} characters (at most {MAX_NUMBER_CHARS}), got {_shown(text)}")
    return s


def check_decimal(d: Decimal, *, original: Any = None) -> Decimal:
    """``d`` if it is finite and of a sane size (see MAX_*_DIGITS), else UnitError. O(1) in the
    exponent, linear in C over the digits: never converts to int or does arithmetic first."""
    shown = _shown(str(original)) if original is not None else "number"
    if not d.is_finite():
        raise UnitError(f"not a finite number: {shown}")
    if d.is_zero():
        return d if d.as_tuple().exponent >= -MAX_FRACTION_DIGITS else Decimal(0)
    if d.adjusted() >= MAX_INTEGER_DIGITS:
        raise UnitError(f"number too large: {shown} (at most {MAX_INTEGER_DIGITS} digits before the point)")
    try:
        d = _SIGNIFICANT.plus(d)  # the same value in at most MAX_SIGNIFICANT_DIGITS digits
    except Inexact:
        raise UnitError(f"too many digits: {shown} (at most {MAX_SIGNIFICANT_DIGITS})") from None
    if d.as_tuple().exponent < -MAX_FRACTION_DIGITS:
        d = d.normalize(_SIGNIFICANT)
        if d.as_tuple().exponent < -MAX_FRACTION_DIGITS:
            raise UnitError(f"too many decimals: {shown} (at most {MAX_FRACTION_DIGITS})")
    return d


def check_int(v: int, limit: int = 10**MAX_INTEGER_DIGITS) -> int:
    if not -limit <= v <= limit:
        raise UnitError(f"number too large: {_shown(str(v)) if v.bit_length() < 256 else 'of ' + str(v.bit_length()) + ' bits'}")
    return v


def _duration_ns(value: Decimal | int, original: Any) -> int:
    """Integer nanoseconds of a number, truncated like Go's Duration(float), within int64."""
    if isinstance(value, Decimal):
        value = check_decimal(value, original=original)
        if value.adjusted() > 18:
            raise UnitError(f"duration out of range: {_shown(str(original))} (at most {MAX_DURATION_NS} ns)")
        value = int(value)
    if not -MAX_DURATION_NS <= value <= MAX_DURATION_NS:
        raise UnitError(f"duration out of range: {_shown(str(original))} (at most {MAX_DURATION_NS} ns)")
    return value


def check_field(name: str, value: Any) -> None:
    """Refuse (UnitError naming ``name``) a value too long or too large to be converted safely;
    anything else, including what is merely malformed, is left to the parser of the field."""
    try:
        if isinstance(value, str):
            check_text(value)
        elif isinstance(value, Decimal):
            check_decimal(value, original=value)
        elif isinstance(value, int) and not isinstance(value, bool):
            check_int(value, _MAX_UNIX)
    except UnitError as exc:
        raise UnitError(f"{name}: {exc}") from None


# Event fields that become durations, times or money somewhere downstream.
NUMERIC_EVENT_FIELDS = ("Usage", "LastUsed", "AnswerTime", "SetupTime", "Cost", "DebitInterval",
                        "MaxUsage", "ExtraUsage")


def check_event_fields(fields: dict[str, Any]) -> None:
    """:func:`check_field` over the event fields that are converted to numbers."""
    for name in NUMERIC_EVENT_FIELDS:
        v = fields.get(name)
        if v is not None:
            check_field(name, v)


def parse_duration(text: str | int | None) -> int:
    """Parse a CGRateS duration into integer nanoseconds.

    Empty -> 0, ``*unlimited`` -> -1, a bare number is nanoseconds (``"60"`` is 60 ns, not 60 s),
    otherwise Go syntax (``1h2m3.5s``, ``50ms``, ``-1s``).
    """
    if text is None:
        return 0
    if isinstance(text, bool):
        raise UnitError(f"not a duration: {text!r}")
    if isinstance(text, int | Decimal):
        return _duration_ns(text, text)
    if not isinstance(text, str):
        raise UnitError(f"not a duration: {type(text).__name__}")
    s = check_text(text)
    if s == "":
        return 0
    if s == "*unlimited":
        return UNLIMITED_NS
    if _BARE_NUMBER.fullmatch(s):
        # Go's ParseDurationWithNanosecs: a bare number is nanoseconds; a fraction truncates.
        return _duration_ns(Decimal(s), text)
    sign = 1
    body = s
    if body[0] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    pos = 0
    total = Decimal(0)
    while (m := _GO_DURATION.match(body, pos)) is not None:
        total += Decimal(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if pos != len(body) or pos == 0:
        raise UnitError(f"not a duration: {text!r} (use e.g. 60s, 1m30s, 500ms or nanoseconds)")
    return _duration_ns(sign * total, text)


def format_duration(ns: int) -> str:
    """Render nanoseconds the way Go's ``time.Duration.String()`` does (``2m0s``, ``1.5µs``)."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < SECOND:
        if u < US:
            out = f"{u}ns"
        elif u < MS:
            out = _frac(u, US) + "µs"
        else:
            out = _frac(u, MS) + "ms"
    else:
        h, rem = divmod(u, HOUR)
        m, rem = divmod(rem, MINUTE)
        secs = _frac(rem, SECOND) + "s"
        if h:
            out = f"{h}h{m}m{secs}"
        elif m:
            out = f"{m}m{secs}"
        else:
            out = secs
    return "-" + out if neg else out


def _frac(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


def parse_decimal(text: str | int | Decimal | None, *, empty: Decimal | None = Decimal(0)) -> Decimal:
    """Parse money or another exact number. Floats are refused: they are how money goes wrong."""
    if isinstance(text, float):
        raise UnitError(f"refusing float {text!r}: money must be a decimal string or int")
    if text is None:
        if empty is None:
            raise UnitError("missing number")
        return empty
    if isinstance(text, Decimal):
        return check_decimal(text, original=text)
    if isinstance(text, bool):
        raise UnitError(f"not a number: {text!r}")
    if isinstance(text, int):
        return Decimal(check_int(text))
    if not isinstance(text, str):
        raise UnitError(f"not a number: {type(text).__name__}")
    s = check_text(text)
    if s == "":
        if empty is None:
            raise UnitError("missing number")
        return empty
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise UnitError(f"not a number: {text!r}") from None
    return check_decimal(d, original=text)


ROUNDING_METHODS = ("*up", "*down", "*middle")


def round_money(value: Decimal, decimals: int, method: str = "*middle") -> Decimal:
    """CGRateS ``utils.Round`` done exactly in Decimal.

    With ``v = value * 10^decimals`` and ``frac`` its fractional part (sign of v, as Go's
    ``math.Modf``): ``*up`` -> ceil(v) if frac > 0 else floor(v); ``*down`` -> floor(v);
    ``*middle`` -> ceil(v) if frac >= 0.5 else floor(v). So on negatives both ``*up`` and
    ``*middle`` go towards -inf, as in CGRateS. An unknown method leaves the value unchanged.
    CGRateS computes this with doubles (and so treats a remainder below 1e-7 as none for ``*up``);
    with exact decimals there is no float noise to forgive, so ``*up`` rounds any remainder up.
    """
    q = Decimal(1).scaleb(-decimals)
    scaled = value.scaleb(decimals)
    frac = scaled - scaled.to_integral_value(rounding=ROUND_DOWN)
    floor = scaled.to_integral_value(rounding=ROUND_FLOOR)
    ceil = scaled.to_integral_value(rounding=ROUND_CEILING)
    if method == "*up":
        out = ceil if frac > 0 else floor
    elif method == "*down":
        out = floor
    elif method == "*middle":
        out = ceil if frac >= Decimal("0.5") else floor
    else:
        return value
    return out.scaleb(-decimals).quantize(q)


def money_str(value: Decimal) -> str:
    """Canonical text for money on the wire: no exponent, no trailing zeros (``0.6``, ``10``)."""
    if value == 0:
        return "0"
    s = format(value.normalize(), "f")
    return s


# --- times -------------------------------------------------------------------------------------

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")


def parse_time(text: str | int | None, *, now: datetime | None = None) -> datetime | None:
    """Parse a CGRateS time expression into an aware UTC datetime; empty/``*unlimited`` -> None.

    Accepts RFC3339, ``YYYY-MM-DD HH:MM:SS`` (UTC), unix seconds/ms/ns, ``*now`` and
    ``+<duration>``. Calendar words (``*monthly``...) are resolved by :func:`parse_time_expr`.
    """
    if text is None:
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        return _from_unix(check_int(text, _MAX_UNIX))
    if not isinstance(text, str):
        raise UnitError(f"not a time: {type(text).__name__}")
    s = check_text(text)
    if s in ("", "*unlimited"):
        return None
    now = now or datetime.now(UTC)
    if s == "*now":
        return now
    try:
        if s.startswith("+"):
            return now + timedelta(microseconds=parse_duration(s[1:]) / 1000)
        if s.lstrip("-").isdigit():
            return _from_unix(check_int(int(s), _MAX_UNIX))
    except (OverflowError, ValueError, OSError) as exc:
        if isinstance(exc, UnitError):
            raise
        raise UnitError(f"time out of range: {text!r}") from None
    if _RFC3339.fullmatch(s):
        t = s.replace(" ", "T", 1).replace("Z", "+00:00")
        try:
            dt = datetime.fromisoformat(t)
        except ValueError:
            raise UnitError(f"not a time: {text!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)
    raise UnitError(f"not a time: {text!r} (use RFC3339 like 2014-01-14T00:00:00Z)")


def _from_unix(v: int) -> datetime:
    try:
        return _from_unix_unchecked(v)
    except (OverflowError, ValueError, OSError):
        raise UnitError(f"time out of range: {v}") from None


def _from_unix_unchecked(v: int) -> datetime:
    # Same magnitude detection as CGRateS: seconds, milliseconds or nanoseconds since the epoch.
    if abs(v) >= 10**17:
        return datetime.fromtimestamp(v // 10**9, UTC) + timedelta(microseconds=(v % 10**9) // 1000)
    if abs(v) >= 10**11:
        return datetime.fromtimestamp(v // 1000, UTC) + timedelta(milliseconds=v % 1000)
    return datetime.fromtimestamp(v, UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # built once: both below run for every event on the wire


def to_unix_nano(dt: datetime | None) -> int:
    """Aware datetime -> integer nanoseconds since the epoch (0 for None), exactly."""
    if dt is None:
        return 0
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * SECOND + delta.microseconds * 1000


def from_unix_nano(ns: int) -> datetime | None:
    """Inverse of :func:`to_unix_nano` (microsecond precision; 0 -> None)."""
    if ns == 0:
        return None
    return _EPOCH + timedelta(microseconds=ns // 1000)
