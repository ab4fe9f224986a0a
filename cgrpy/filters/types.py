"""The v0.10 filter rule types and their ``*not`` negations (docs/profiles.md).

A rule is compiled once (``compile_rule``) and evaluated with :func:`rule_passes` against a
data provider. Positive result first, then negation; errors are never negated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cgrpy.filters.compare import (
    COMPARISON_TYPES,
    ConversionError,
    comparable_field,
    compare,
    parse_time_detect,
    smart_parse,
)
from cgrpy.filters.errors import FilterError
from cgrpy.filters.paths import MISSING, DataProvider, check_element, has_valid_prefix, resolve
from cgrpy.filters.rsr import RSRParser, compile_rsr
from cgrpy.iface import iface_as_string

# Base types; each also exists as "*not<name>" (``*eq`` -> ``*noteq``).
BASE_TYPES = frozenset({
    "*string", "*prefix", "*suffix", "*empty", "*exists", "*timings", "*destinations", "*rsr",
    "*gt", "*gte", "*lt", "*lte", "*eq", "*nistring", "*niprefix", "*nisuffix", "*niexists",
})
# Only these exact types feed the string/prefix indexes.
INDEXED_TYPES = ("*string", "*prefix")
_NI_ALIASES = {"*nistring": "*string", "*niprefix": "*prefix", "*nisuffix": "*suffix",
               "*niexists": "*exists"}


@dataclass(frozen=True)
class Timing:
    """A Timings.csv row: ``None`` means ``*any``; week days use 0 or 7 for Sunday, 1 = Monday."""

    tag: str
    years: frozenset[int] | None = None
    months: frozenset[int] | None = None
    month_days: frozenset[int] | None = None
    week_days: frozenset[int] | None = None
    start_time: str = "00:00:00"

    def contains(self, t: datetime) -> bool:
        t = t.astimezone(UTC)
        if self.years is not None and t.year not in self.years:
            return False
        if self.months is not None and t.month not in self.months:
            return False
        if self.month_days is not None and t.day not in self.month_days:
            return False
        if self.week_days is not None:
            go_weekday = (t.weekday() + 1) % 7  # Python Monday=0 -> Go Monday=1, Sunday=0
            days = {d % 7 for d in self.week_days}
            if go_weekday not in days:
                return False
        return t.strftime("%H:%M:%S") >= self.start_time


def timings_from_rows(rows: list[dict[str, str]]) -> dict[str, Timing]:
    """Timings.csv rows (Tag, Years, Months, MonthDays, WeekDays, Time) -> Timing by tag."""

    def ints(cell: str, col: str, tag: str) -> frozenset[int] | None:
        cell = (cell or "").strip()
        if cell in ("", "*any"):
            return None
        try:
            return frozenset(int(x) for x in cell.split(";") if x != "")
        except ValueError:
            raise FilterError(f"Timings {tag}: bad {col} {cell!r}") from None

    out: dict[str, Timing] = {}
    for r in rows:
        tag = r["Tag"]
        start = (r.get("Time") or "").strip()
        if start in ("", "*any", "*asap"):
            start = "00:00:00"
        out[tag] = Timing(tag, ints(r.get("Years", ""), "Years", tag),
                          ints(r.get("Months", ""), "Months", tag),
                          ints(r.get("MonthDays", ""), "MonthDays", tag),
                          ints(r.get("WeekDays", ""), "WeekDays", tag), start)
    return out


@dataclass(frozen=True)
class EvalContext:
    """What rules need besides the event: the clock and the destination/timing data."""

    now: datetime
    # prefix -> destination IDs (reverse destinations); None: no destination data loaded.
    reverse_destinations: Mapping[str, frozenset[str]] | None = None
    timings: Mapping[str, Timing] | None = None


@dataclass(frozen=True)
class FilterRule:
    type: str
    element: str
    values: tuple[str, ...]
    rsr: tuple[RSRParser, ...] = field(default=(), compare=False)

    @property
    def negated(self) -> bool:
        return self.type.startswith("*not")

    @property
    def base_type(self) -> str:
        return "*" + self.type[4:] if self.negated else self.type

    def to_dict(self) -> dict[str, Any]:
        return {"Type": self.type, "Element": self.element, "Values": list(self.values)}


def compile_rule(type_: str, element: str, values: list[str] | tuple[str, ...]) -> FilterRule:
    """Build a rule; ``*rsr`` values are compiled now so a malformed rule fails early."""
    rule = FilterRule(type_, element, tuple(values))
    if rule.base_type == "*rsr":
        rsr = tuple(compile_rsr(v) for v in values)
        rule = FilterRule(type_, element, tuple(values), rsr)
    return rule


def reverse_destinations(destinations: Mapping[str, list[str]]) -> dict[str, frozenset[str]]:
    """Destination ID -> prefixes  ==>  prefix -> destination IDs."""
    rev: dict[str, set[str]] = {}
    for dest_id, prefixes in destinations.items():
        for p in prefixes:
            rev.setdefault(p, set()).add(dest_id)
    return {p: frozenset(ids) for p, ids in rev.items()}


def rule_passes(rule: FilterRule, dp: DataProvider, ctx: EvalContext) -> bool:
    """Evaluate one rule; FilterError aborts the whole Pass (never negated)."""
    check_element(rule.element)
    base = rule.base_type
    base = _NI_ALIASES.get(base, base)
    if base not in BASE_TYPES:
        raise FilterError(f"NOT_IMPLEMENTED:{rule.type}")
    result = _positive(base, rule, dp, ctx)
    return not result if rule.negated else result


def _field(rule: FilterRule, dp: DataProvider) -> Any:
    return MISSING if rule.element == "" else resolve(rule.element, dp)


def _values(rule: FilterRule, dp: DataProvider) -> list[tuple[Any, bool]]:
    """(value, is_constant) for every value that resolves; failed dynamic lookups are skipped."""
    out: list[tuple[Any, bool]] = []
    for v in rule.values:
        if not v.startswith("~"):
            out.append((v, True))
            continue
        if not has_valid_prefix(v):
            continue  # "~Account": no known root, resolves against nothing
        try:
            got = resolve(v, dp)
        except FilterError:
            continue
        if got is not MISSING:
            out.append((got, False))
    return out


def _positive(base: str, rule: FilterRule, dp: DataProvider, ctx: EvalContext) -> bool:
    if base == "*rsr":
        return all(p.passes(dp) for p in rule.rsr)
    fld = _field(rule, dp)
    if base == "*exists":
        return fld is not MISSING
    if base == "*empty":
        return fld is MISSING or fld is None or (isinstance(fld, str | list | tuple | dict)
                                                  and len(fld) == 0)
    if fld is MISSING:
        return False
    if base == "*timings":
        return _timings(fld, rule, dp, ctx)
    if base == "*destinations":
        return _destinations(fld, rule, dp, ctx)
    if base in COMPARISON_TYPES:
        left = comparable_field(fld, ctx.now)
        for v, constant in _values(rule, dp):
            right = smart_parse(v, ctx.now) if constant else v
            if compare(base, left, right):
                return True
        return False
    text = iface_as_string(fld)
    vals = [iface_as_string(v) for v, _ in _values(rule, dp)]
    if base == "*string":
        return text in vals
    if base == "*prefix":
        return any(text.startswith(v) for v in vals)
    if base == "*suffix":
        return any(text.endswith(v) for v in vals)
    raise FilterError(f"NOT_IMPLEMENTED:{rule.type}")  # pragma: no cover - BASE_TYPES guards


def _destinations(fld: Any, rule: FilterRule, dp: DataProvider, ctx: EvalContext) -> bool:
    if ctx.reverse_destinations is None:
        raise FilterError("no destination data loaded: *destinations filters need Destinations")
    wanted = {iface_as_string(v) for v, _ in _values(rule, dp)}
    number = iface_as_string(fld)
    for i in range(len(number), 0, -1):
        ids = ctx.reverse_destinations.get(number[:i])
        if ids and not ids.isdisjoint(wanted):
            return True
    return False


def _timings(fld: Any, rule: FilterRule, dp: DataProvider, ctx: EvalContext) -> bool:
    # v0.10 answers NOT_IMPLEMENTED for every *timings rule; later versions implement it. With
    # timing data loaded we evaluate it (element time inside any listed timing).
    if ctx.timings is None:
        raise FilterError("NOT_IMPLEMENTED")
    if isinstance(fld, datetime):
        t = fld
    else:
        try:
            t = parse_time_detect(iface_as_string(fld), ctx.now)
        except ConversionError as exc:
            raise FilterError(str(exc)) from None
    for v, _ in _values(rule, dp):
        timing = ctx.timings.get(iface_as_string(v))
        if timing is not None and timing.contains(t):
            return True
    return False
