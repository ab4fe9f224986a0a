"""Timings (Timings.csv) and the local-calendar arithmetic rating needs.

A timing restricts a rate interval to some years/months/month days/week days and gives the time of
day from which it applies (there is no end column: a timing runs to the end of the day or until a
later interval of the same plan takes over, see ``timespans``). Week days follow Go: 0 = Sunday.
Instants are int nanoseconds since the epoch; calendar questions are answered in the call's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache

from cgrpy.units import SECOND, to_unix_nano

ANY = "*any"
ASAP = "*asap"
DAY_NS = 86_400 * SECOND


class TimingError(ValueError):
    """A Timings.csv cell could not be understood."""


@dataclass(frozen=True)
class Timing:
    id: str
    years: tuple[int, ...] = ()  # empty = any
    months: tuple[int, ...] = ()
    month_days: tuple[int, ...] = ()
    week_days: tuple[int, ...] = ()  # 0 = Sunday .. 6 = Saturday
    start_time: str = "00:00:00"  # as written (hh:mm:ss, *asap, ...), shown in cost details
    start_tod_ns: int = 0  # start_time as an offset into the day

    def matches_day(self, day: LocalDay) -> bool:
        return (
            (not self.years or day.year in self.years)
            and (not self.months or day.month in self.months)
            and (not self.month_days or day.day in self.month_days)
            and (not self.week_days or day.week_day in self.week_days)
        )

    def active_at(self, day: LocalDay, tod_ns: int) -> bool:
        return self.matches_day(day) and tod_ns >= self.start_tod_ns


def parse_int_list(cell: str, *, week_days: bool = False) -> tuple[int, ...]:
    """``*any``/empty -> () (unrestricted); else ``;``-separated ints, non-numbers dropped."""
    s = cell.strip()
    if s in ("", ANY):
        return ()
    out: list[int] = []
    for item in s.split(";"):
        item = item.strip()
        if not item.lstrip("-").isdigit():
            continue  # CGRateS silently drops what it cannot parse
        v = int(item)
        if week_days:
            v %= 7  # 7 is accepted as Sunday
        if v not in out:
            out.append(v)
    return tuple(out)


def parse_start_time(cell: str) -> int:
    """``hh:mm:ss`` -> ns into the day. Scheduler words (``*asap``, ``*hourly``...) and empty
    mean "from the start of the day" for rating purposes."""
    s = cell.strip()
    if s == "" or s.startswith("*"):
        return 0
    parts = s.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise TimingError(f"bad Time {cell!r}: want hh:mm:ss")
    h, m, sec = (int(p) for p in parts)
    if h > 23 or m > 59 or sec > 59:
        raise TimingError(f"bad Time {cell!r}: out of range")
    return ((h * 60 + m) * 60 + sec) * SECOND


def timing_from_row(row: dict[str, str]) -> Timing:
    start = row.get("Time", "").strip()
    return Timing(
        id=row["Tag"].strip(),
        years=parse_int_list(row.get("Years", "")),
        months=parse_int_list(row.get("Months", "")),
        month_days=parse_int_list(row.get("MonthDays", "")),
        week_days=parse_int_list(row.get("WeekDays", ""), week_days=True),
        start_time=start,
        start_tod_ns=parse_start_time(start),
    )


IMPLICIT_TIMINGS: dict[str, Timing] = {
    ANY: Timing(id=ANY, start_time="00:00:00"),
    ASAP: Timing(id=ASAP, start_time=ASAP),
}


@dataclass(frozen=True)
class LocalDay:
    """The calendar day containing an instant, in the call's zone."""

    year: int
    month: int
    day: int
    week_day: int  # Go numbering, 0 = Sunday
    start_ns: int  # local midnight opening the day
    end_ns: int  # next local midnight


def local_day(ns: int, tz: tzinfo) -> LocalDay:
    if isinstance(tz, timezone):
        # Fixed offset (UTC included): plain arithmetic, the calendar part cached per day.
        off = _offset_ns(tz)
        index = (ns + off) // DAY_NS
        y, m, d, wd = _civil_day(index)
        start = index * DAY_NS - off
        return LocalDay(y, m, d, wd, start, start + DAY_NS)
    local = datetime.fromtimestamp(ns // SECOND, tz)
    d: date = local.date()
    start = to_unix_nano(datetime.combine(d, time(0), tz))
    end = to_unix_nano(datetime.combine(d + timedelta(days=1), time(0), tz))
    return LocalDay(d.year, d.month, d.day, (d.weekday() + 1) % 7, start, end)


@lru_cache(maxsize=64)
def _offset_ns(tz: timezone) -> int:
    delta = tz.utcoffset(None)
    return (delta.days * 86_400 + delta.seconds) * SECOND + delta.microseconds * 1000


_EPOCH_DAY = date(1970, 1, 1)


@lru_cache(maxsize=4096)
def _civil_day(index: int) -> tuple[int, int, int, int]:
    d = _EPOCH_DAY + timedelta(days=index)
    return d.year, d.month, d.day, (d.weekday() + 1) % 7
