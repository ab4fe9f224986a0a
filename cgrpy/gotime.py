"""Go's ``time.Time`` as CGRateS v0.10 writes it: the zero time and the text forms.

One rule for every output: Go's JSON encoder (``RFC3339Nano``) writes the fraction of a second
only when it is not zero and strips its trailing zeros (``...:05.5Z``, never ``...:05.500000Z``);
``Format(time.RFC3339)`` drops the fraction altogether. UTC is written ``Z``, another zone as its
offset (Go keeps the zone a time carries; cgrpy parses times to UTC, so offsets only appear where
a value was written with one and smart-parsed). A naive datetime is taken as UTC. Python keeps
microseconds, so the fraction has at most six digits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Go's ``time.Time{}``: what an unset time marshals to, and what ``""`` smart-parses to.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
RFC3339 = "2006-01-02T15:04:05Z07:00"


def _aware(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _zone(t: datetime) -> str:
    off = t.utcoffset() or timedelta(0)
    if off == timedelta(0):
        return "Z"
    sign = "-" if off < timedelta(0) else "+"
    mins = abs(int(off.total_seconds())) // 60
    return f"{sign}{mins // 60:02d}:{mins % 60:02d}"


def _seconds(t: datetime) -> str:
    # not strftime: it writes year 1 as "1", Go as "0001"
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def go_time(dt: datetime | None) -> str:
    """Go's JSON time (``RFC3339Nano``, trailing zeros of the fraction stripped); None -> zero."""
    if dt is None:
        return GO_ZERO_TIME
    dt = _aware(dt)
    text = _seconds(dt)
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    return text + _zone(dt)


def go_time_ns(unix_ns: int) -> str:
    """:func:`go_time` of a Unix-nanosecond instant in UTC, with all nine digits Go keeps
    (trailing zeros stripped); 0 is the zero time."""
    if unix_ns == 0:
        return GO_ZERO_TIME
    secs, frac = divmod(unix_ns, 1_000_000_000)
    text = _seconds(datetime.fromtimestamp(secs, UTC))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def go_rfc3339(dt: datetime | None) -> str:
    """Go ``t.Format(time.RFC3339)``: whole seconds; None -> the zero time."""
    if dt is None:
        return GO_ZERO_TIME
    dt = _aware(dt)
    return _seconds(dt) + _zone(dt)


_LAYOUT_TOKENS = (
    ("2006", "%Y"), ("Z07:00", "Z"), ("-07:00", "+00:00"), ("-0700", "+0000"), ("MST", "UTC"),
    ("01", "%m"), ("02", "%d"), ("15", "%H"), ("04", "%M"), ("05", "%S"), ("06", "%y"),
)


def go_format(dt: datetime | None, layout: str) -> str:
    """``dt`` (in UTC) in a Go reference layout (``2006-01-02T15:04:05Z07:00``...); None -> ""."""
    if dt is None:
        return ""
    dt = _aware(dt).astimezone(UTC)
    if layout in ("", RFC3339):
        return go_rfc3339(dt)
    out, i = [], 0
    while i < len(layout):
        for tok, rep in _LAYOUT_TOKENS:
            if layout.startswith(tok, i):
                out.append(rep if not rep.startswith("%") else dt.strftime(rep))
                i += len(tok)
                break
        else:
            out.append(layout[i])
            i += 1
    return "".join(out)
