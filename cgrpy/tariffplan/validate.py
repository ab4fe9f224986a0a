"""Validate a tariff-plan folder before anything is written (docs/rating.md,
docs/profiles.md for the profile files).

Every problem becomes a :class:`Problem` rendered ``FILE:LINE: column NAME: what is wrong (got
"VALUE")``; all problems of a folder are collected (up to ``limit``) rather than stopping at the
first. Files are streamed row by row in dependency order (referenced files first), so cross-file
references are checked as each row is read and only the ID sets are kept in memory — a
million-row folder validates in bounded memory.

Where the four shared CGRateS folders contain something CGRateS accepts, it is accepted here too
(each such case says so in a comment). Where CGRateS silently drops data (non-numeric items in
Timings lists, for instance) we report an error instead: the operator should know.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from cgrpy.cgrrpc import CgrRpcError, parse_cgr_rpc
from cgrpy.tariffplan.columns import FILE_COLUMNS
from cgrpy.tariffplan.csvread import CsvRow, CsvShapeError, iter_file
from cgrpy.units import UnitError, format_duration, parse_duration, parse_time

DEFAULT_LIMIT = 100

# Referenced files before the files referring to them.
VALIDATION_ORDER: tuple[str, ...] = (
    "Filters", "Timings", "Destinations", "Rates", "DestinationRates", "RatingPlans",
    "RatingProfiles", "SharedGroups", "Actions", "ActionPlans", "ActionTriggers",
    "AccountActions", "Attributes", "Chargers", "Resources", "Stats", "Thresholds", "Suppliers",
    "DispatcherHosts", "DispatcherProfiles",
)
assert set(VALIDATION_ORDER) == set(FILE_COLUMNS)


@dataclass(frozen=True)
class Problem:
    file: str  # "Rates.csv", or the folder for folder-level problems
    line: int | None  # 1-based CSV line; None for file/folder-level problems
    column: str | None
    message: str
    value: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        col = f" column {self.column}:" if self.column else ""
        got = "" if self.value is None else f" (got {json.dumps(self.value, ensure_ascii=False)})"
        return f"{where}:{col} {self.message}{got}"


@dataclass
class ValidationResult:
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # valid data rows per file
    truncated: bool = False  # more problems existed than the limit
    # References CGRateS resolves lazily (at execution time) and that the shared CGRateS folders
    # leave dangling: reported, but they do not fail the load (see _LAZY_REFERENCES).
    warnings: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # known files present in the folder

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out = [str(p) for p in self.problems]
        if self.truncated:
            out.append(f"... stopped after {len(self.problems)} problems")
        return out


class _TooMany(Exception):
    pass


# ----------------------------------------------------------------------------- cell checks
# A check takes the cell text and returns what is wrong with it, or None.
Check = Callable[[str], str | None]

_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?")
_INT = re.compile(r"[+-]?[0-9]{1,18}")
_BOOLS = {"", "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
_TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")
_TIME_WORDS = re.compile(r"\*(daily|weekly|monthly|monthly_estimated|yearly|month_end|mo)(\+.+)?")
# Built-in timing IDs usable without a Timings.csv row.
BUILTIN_TIMINGS = {
    "*any", "*asap", "*every_minute", "*hourly", "*daily", "*weekly", "*monthly",
    "*monthly_estimated", "*month_end", "*yearly",
}
ROUNDING_METHODS = {"*up", "*down", "*middle"}
MAX_COST_STRATEGIES = {"", "*free", "*disconnect"}
BALANCE_TYPES = {"", "*any", "*monetary", "*voice", "*data", "*sms", "*mms", "*generic"}
SHARED_GROUP_STRATEGIES = {
    "", "*lowest", "*highest", "*random", "*mine_lowest", "*mine_highest", "*mine_random",
}
THRESHOLD_TYPES = {
    "*min_balance", "*max_balance", "*balance_expired", "*min_event_counter",
    "*max_event_counter", "*min_balance_counter", "*max_balance_counter",
}
ATTRIBUTE_TYPES = {
    "", "*constant", "*variable", "*composed", "*usage_difference", "*sum", "*value_exponent",
    "*sipcid",
}


def check_text(_cell: str) -> str | None:
    return None


def check_required(cell: str) -> str | None:
    return "must not be empty" if cell == "" else None


def check_number(cell: str) -> str | None:
    if cell == "":
        return None  # CGRateS: empty numeric cell = 0
    if not _NUMBER.fullmatch(cell):
        return "not a number"
    try:
        Decimal(cell)
    except InvalidOperation:  # pragma: no cover - the regex already refuses these
        return "not a number"
    return None


def check_int(cell: str) -> str | None:
    if cell == "":
        return None
    return None if _INT.fullmatch(cell) else "not an integer"


def check_bool(cell: str) -> str | None:
    return None if cell in _BOOLS else "not a boolean (use true or false)"


# Big plans repeat the same few duration texts ("60s", "1s", "0s") millions of times.
_duration_ns = lru_cache(maxsize=65536)(parse_duration)


def check_duration(cell: str) -> str | None:
    try:
        _duration_ns(cell)
    except UnitError:
        return "not a duration (use e.g. 60s, 1m30s, 500ms, or a bare number of nanoseconds)"
    return None


def check_time(cell: str) -> str | None:
    if cell in ("", "*unlimited") or _TIME_WORDS.fullmatch(cell):
        return None
    try:
        parse_time(cell)
    except (UnitError, ValueError, OverflowError):
        return "not a time (use RFC3339 like 2014-07-29T15:00:00Z, *unlimited, *monthly, +24h)"
    return None


def check_activation_interval(cell: str) -> str | None:
    """``start[;end]``, each a time."""
    if cell == "":
        return None
    parts = cell.split(";")
    if len(parts) > 2:
        return "activation interval is start[;end]"
    for part in parts:
        if check_time(part) is not None:
            return "not an activation interval (use RFC3339 start[;end])"
    return None


def one_of(allowed: set[str], what: str) -> Check:
    shown = ", ".join(sorted(a for a in allowed if a))

    def check(cell: str) -> str | None:
        return None if cell in allowed else f"unknown {what} (use one of {shown})"

    return check


def check_json(cell: str) -> str | None:
    if cell == "":
        return None
    try:
        json.loads(cell)
    except ValueError:
        return "not valid JSON"
    return None


def int_list(low: int, high: int) -> Check:
    """Timings Years/Months/MonthDays/WeekDays: ``*any``/empty or ``;``-separated integers.

    CGRateS silently drops non-numeric items; we report them (the timing would otherwise be
    broader than the operator wrote)."""

    def check(cell: str) -> str | None:
        if cell in ("", "*any"):
            return None
        for item in cell.split(";"):
            if not item.isdigit():
                return "not *any or a ;-separated list of integers"
            if not low <= int(item) <= high:
                return f"item {item} outside {low}..{high}"
        return None

    return check


def check_time_of_day(cell: str) -> str | None:
    if _TIME_OF_DAY.fullmatch(cell) or cell in ("*asap", "*every_minute", "*hourly"):
        return None
    return "not a time of day (use hh:mm:ss, *asap, *every_minute or *hourly)"


def check_filter_list(cell: str) -> str | None:
    """``;``-separated filter IDs; entries starting with ``*`` are inline filters
    ``type:element:values`` (at least three ``:``-parts)."""
    if cell == "":
        return None
    for item in cell.split(";"):
        if item == "":
            return "empty entry in ;-separated filter list"
        if item.startswith("*") and len(item.split(":")) < 3:
            return f"inline filter {item!r} is not type:element:values"
    return None


def check_metrics(cell: str) -> str | None:
    if cell == "":
        return None
    for item in cell.split(";"):
        if not item.startswith("*"):
            return f"metric {item!r} does not start with *"
    return None


def check_units(cell: str) -> str | None:
    """Actions Units: a number, a duration (for *voice) or a JSON value formula."""
    if cell.startswith("{"):
        return check_json(cell)
    if check_number(cell) is None:
        return None
    return check_duration(cell)


def both(*checks: Check) -> Check:
    def check(cell: str) -> str | None:
        for c in checks:
            problem = c(cell)
            if problem:
                return problem
        return None

    return check


REQ = check_required
_PROFILE_KEY = {"Tenant": REQ}

# Per file: column -> check (columns not listed are free text).
COLUMN_CHECKS: dict[str, dict[str, Check]] = {
    "Timings": {
        "Tag": REQ, "Years": int_list(0, 9999), "Months": int_list(1, 12),
        "MonthDays": int_list(1, 31), "WeekDays": int_list(0, 7),
        "Time": both(REQ, check_time_of_day),
    },
    "Destinations": {"Id": REQ, "Prefix": REQ},
    "Rates": {
        "Id": REQ, "ConnectFee": check_number, "Rate": check_number,
        "RateUnit": check_duration, "RateIncrement": check_duration,
        "GroupIntervalStart": check_duration,
    },
    "DestinationRates": {
        "Id": REQ, "DestinationId": REQ, "RatesTag": REQ,
        # An empty method is tolerated: CGRateS then does not round the final cost.
        "RoundingMethod": one_of(ROUNDING_METHODS | {""}, "rounding method"),
        "RoundingDecimals": check_int, "MaxCost": check_number,
        "MaxCostStrategy": one_of(MAX_COST_STRATEGIES, "MaxCostStrategy"),
    },
    "RatingPlans": {
        "Id": REQ, "DestinationRatesId": REQ, "TimingTag": REQ, "Weight": check_number,
    },
    "RatingProfiles": {
        "Tenant": REQ, "Category": REQ, "Subject": REQ, "ActivationTime": check_time,
        "RatingPlanId": REQ,
    },
    "SharedGroups": {
        "Id": REQ, "Account": REQ,
        "Strategy": one_of(SHARED_GROUP_STRATEGIES, "shared group strategy"),
    },
    "Actions": {
        "ActionsId": REQ, "Action": both(REQ, lambda c: None if c.startswith("*") else
                                         "action name must start with *"),
        "Filter": check_json, "BalanceType": one_of(BALANCE_TYPES, "balance type"),
        "ExpiryTime": check_time, "Units": check_units, "BalanceWeight": check_number,
        "BalanceBlocker": check_bool, "BalanceDisabled": check_bool, "Weight": check_number,
    },
    "ActionPlans": {"Id": REQ, "ActionsId": REQ, "TimingId": REQ, "Weight": check_number},
    "ActionTriggers": {
        "Tag": REQ, "ThresholdType": one_of(THRESHOLD_TYPES, "threshold type"),
        "ThresholdValue": check_number, "Recurrent": check_bool, "MinSleep": check_duration,
        "ExpiryTime": check_time, "ActivationTime": check_time,
        "BalanceType": one_of(BALANCE_TYPES, "balance type"), "BalanceExpiryTime": check_time,
        "BalanceWeight": check_number, "BalanceBlocker": check_bool,
        "BalanceDisabled": check_bool, "ActionsId": REQ, "Weight": check_number,
    },
    "AccountActions": {
        "Tenant": REQ, "Account": REQ, "AllowNegative": check_bool, "Disabled": check_bool,
    },
    "Resources": {
        **_PROFILE_KEY, "Id": REQ, "FilterIDs": check_filter_list,
        "ActivationInterval": check_activation_interval, "TTL": check_duration,
        "Limit": check_number, "Blocker": check_bool, "Stored": check_bool,
        "Weight": check_number,
    },
    "Stats": {
        **_PROFILE_KEY, "Id": REQ, "FilterIDs": check_filter_list,
        "ActivationInterval": check_activation_interval, "QueueLength": check_int,
        "TTL": check_duration, "MinItems": check_int, "Metrics": check_metrics,
        "MetricFilterIDs": check_filter_list, "Stored": check_bool, "Blocker": check_bool,
        "Weight": check_number,
    },
    "Thresholds": {
        **_PROFILE_KEY, "Id": REQ, "FilterIDs": check_filter_list,
        "ActivationInterval": check_activation_interval, "MaxHits": check_int,
        "MinHits": check_int, "MinSleep": check_duration, "Blocker": check_bool,
        "Weight": check_number, "Async": check_bool,
    },
    "Filters": {
        **_PROFILE_KEY, "ID": REQ, "Type": both(REQ, lambda c: None if c.startswith("*") else
                                                 "filter type must start with *"),
        "ActivationInterval": check_activation_interval,
    },
    "Suppliers": {
        # Sorting is not checked: unknown strategies fail at use time in CGRateS, and the shared
        # testtp folder carries the pre-v0.10 name *least_cost.
        **_PROFILE_KEY, "ID": REQ, "FilterIDs": check_filter_list,
        "ActivationInterval": check_activation_interval,
        "SupplierFilterIDs": check_filter_list, "SupplierWeight": check_number,
        "SupplierBlocker": check_bool, "Weight": check_number,
    },
    "Attributes": {
        **_PROFILE_KEY, "ID": REQ, "FilterIDs": check_filter_list,
        "ActivationInterval": check_activation_interval,
        "AttributeFilterIDs": check_filter_list,
        "Type": one_of(ATTRIBUTE_TYPES, "attribute type"), "Blocker": check_bool,
        "Weight": check_number,
    },
    "Chargers": {
        **_PROFILE_KEY, "ID": REQ, "FilterIDs": check_filter_list,
        "ActivationInterval": check_activation_interval, "Weight": check_number,
    },
    "DispatcherProfiles": {
        **_PROFILE_KEY, "ID": REQ, "FilterIDs": check_filter_list,
        "ActivationInterval": check_activation_interval, "ConnFilterIDs": check_filter_list,
        "ConnWeight": check_number, "ConnBlocker": check_bool, "Weight": check_number,
    },
    "DispatcherHosts": {**_PROFILE_KEY, "ID": REQ, "Address": REQ, "TLS": check_bool},
}

# Profile files: (tenant, id) columns; their FilterIDs-like columns reference Filters.csv.
_PROFILE_FILES: dict[str, tuple[str, str]] = {
    "Resources": ("Tenant", "Id"), "Stats": ("Tenant", "Id"), "Thresholds": ("Tenant", "Id"),
    "Suppliers": ("Tenant", "ID"), "Attributes": ("Tenant", "ID"), "Chargers": ("Tenant", "ID"),
    "DispatcherProfiles": ("Tenant", "ID"), "DispatcherHosts": ("Tenant", "ID"),
    "Filters": ("Tenant", "ID"),
}
_FILTER_COLUMNS: dict[str, tuple[str, ...]] = {
    "Resources": ("FilterIDs",), "Stats": ("FilterIDs", "MetricFilterIDs"),
    "Thresholds": ("FilterIDs",), "Suppliers": ("FilterIDs", "SupplierFilterIDs"),
    "Attributes": ("FilterIDs", "AttributeFilterIDs"), "Chargers": ("FilterIDs",),
    "DispatcherProfiles": ("FilterIDs", "ConnFilterIDs"),
}


# Column holding the referenced ID of each non-profile file.
_ID_COLUMN = {
    "Timings": "Tag", "Destinations": "Id", "Rates": "Id", "DestinationRates": "Id",
    "RatingPlans": "Id", "SharedGroups": "Id", "Actions": "ActionsId", "ActionPlans": "Id",
    "ActionTriggers": "Tag",
}

# References that CGRateS v0.10 does not check at load time but resolves when the trigger,
# threshold or charger runs (a missing one is then an execution-time error). The shared CGRateS
# folders rely on this: engine_libtest's ActionTriggers name actions SOME_1/LOG_WARNING and its
# charger names ATTR_1001_SIMPLEAUTH, testtp's and engine_libtest's thresholds name action THRESH1,
# none of which exist in those folders. We report them as warnings instead of refusing the plan.
_LAZY_REFERENCES = {
    ("ActionTriggers.csv", "ActionsId"),
    ("Thresholds.csv", "ActionIDs"),
    ("Chargers.csv", "AttributeIDs"),
}


# ----------------------------------------------------------------------------- the validator
class TariffPlanValidator:
    """Feed files in :data:`VALIDATION_ORDER` with :meth:`validate_file`; read ``result``."""

    def __init__(self, limit: int = DEFAULT_LIMIT, *, strict_actions: bool = False) -> None:
        self.limit = limit
        # An action cgrpy cannot run (a *cgr_rpc over *gob, or with templates) is a problem for
        # a set made over the API, a warning in a folder (v0.10 loads it and fails when it runs;
        # the shared CGRateS folders hold such actions).
        self.strict_actions = strict_actions
        self.result = ValidationResult()
        # IDs defined so far, per file (profiles: "tenant:id").
        self.ids: dict[str, set[str]] = {name: set() for name in FILE_COLUMNS}
        self._dest_prefixes: set[str] = set()
        self._account_lines: dict[str, int] = {}
        self._timing_lines: dict[str, int] = {}
        self._dr_lines: dict[str, int] = {}
        self._rp_lines: dict[str, int] = {}
        # rate id -> flat (gis, increment, line, gis, increment, line, ...) of its slots
        self._rate_slots: dict[str, tuple[int, ...]] = {}

    # -- reporting
    def problem(
        self, file: str, line: int | None, column: str | None, message: str,
        value: str | None = None,
    ) -> None:
        if len(self.result.problems) >= self.limit:
            self.result.truncated = True
            raise _TooMany
        self.result.problems.append(Problem(file, line, column, message, value))

    # -- entry points
    def validate_file(self, name: str, items: Iterable[CsvRow | CsvShapeError]) -> None:
        checks = list(COLUMN_CHECKS[name].items())
        row_hook = getattr(self, f"_row_{name}", None)
        fname = f"{name}.csv"
        count = 0
        for item in items:
            if isinstance(item, CsvShapeError):
                self.problem(item.file, item.line, None, item.message)
                continue
            cells = item.cells
            bad = False
            for col, check in checks:
                what = check(cells[col])
                if what:
                    self.problem(fname, item.line, col, what, cells[col])
                    bad = True
            if bad:
                # Still define its ID, so one bad cell does not cascade into "unknown ID"
                # problems in every file that references it.
                self._define_only(name, cells)
                continue
            count += 1
            if row_hook is not None:
                row_hook(item)
            profile = _PROFILE_FILES.get(name)
            if profile:
                self._profile_row(name, item, *profile)
        self.result.counts[name] = count
        done = getattr(self, f"_done_{name}", None)
        if done is not None:
            done()

    def _define_only(self, name: str, cells: Mapping[str, str]) -> None:
        profile = _PROFILE_FILES.get(name)
        if profile:
            self.ids[name].add(f"{cells[profile[0]]}:{cells[profile[1]]}")
        elif name in _ID_COLUMN and cells[_ID_COLUMN[name]]:
            self.ids[name].add(cells[_ID_COLUMN[name]])

    def warn(self, problem: Problem) -> None:
        if len(self.result.warnings) < self.limit:
            self.result.warnings.append(problem)

    # -- helpers
    def _ref(
        self, row: CsvRow, column: str, target: str, value: str, key: str | None = None,
    ) -> None:
        if (key if key is not None else value) in self.ids[target]:
            return
        msg = f"unknown {target} ID {value!r}"
        if (row.file, column) in _LAZY_REFERENCES:
            self.warn(Problem(row.file, row.line, column, msg, row.cells[column]))
        else:
            self.problem(row.file, row.line, column, msg, row.cells[column])

    def _dup(
        self, seen: dict[str, int], key: str, row: CsvRow, column: str, what: str,
    ) -> None:
        first = seen.get(key)
        if first is not None:
            self.problem(
                row.file, row.line, column, f"duplicate {what} (first on line {first})",
                row.cells[column],
            )
        else:
            seen[key] = row.line

    def _profile_row(self, name: str, row: CsvRow, tcol: str, icol: str) -> None:
        tenant = row.cells[tcol]
        self.ids[name].add(f"{tenant}:{row.cells[icol]}")
        for col in _FILTER_COLUMNS.get(name, ()):
            cell = row.cells[col]
            if not cell:
                continue
            for fid in cell.split(";"):
                if not fid.startswith("*"):  # inline filters are not references
                    self._ref(row, col, "Filters", fid, f"{tenant}:{fid}")

    # -- per-file row rules
    def _row_Timings(self, row: CsvRow) -> None:  # noqa: N802 - named after the file
        self._dup(self._timing_lines, row.cells["Tag"], row, "Tag", "timing Tag")
        self.ids["Timings"].add(row.cells["Tag"])

    def _row_Destinations(self, row: CsvRow) -> None:  # noqa: N802
        c = row.cells
        key = f"{c['Id']}\x00{c['Prefix']}"
        if key in self._dest_prefixes:
            self.problem(
                row.file, row.line, "Prefix", f"duplicate prefix in destination {c['Id']!r}",
                c["Prefix"],
            )
        self._dest_prefixes.add(key)
        self.ids["Destinations"].add(c["Id"])

    def _row_Rates(self, row: CsvRow) -> None:  # noqa: N802
        c = row.cells
        rid = c["Id"]
        unit, incr = _duration_ns(c["RateUnit"]), _duration_ns(c["RateIncrement"])
        if unit <= 0:
            self.problem(row.file, row.line, "RateUnit", "must be greater than zero",
                         c["RateUnit"])
        if incr <= 0:
            self.problem(row.file, row.line, "RateIncrement", "must be greater than zero",
                         c["RateIncrement"])
        slot = (_duration_ns(c["GroupIntervalStart"]), incr, row.line)
        self._rate_slots[rid] = self._rate_slots.get(rid, ()) + slot
        self.ids["Rates"].add(rid)

    def _done_Rates(self) -> None:  # noqa: N802
        """Rate sanity: strictly increasing GIS, each GIS a multiple of the previous
        slot's increment."""
        for rid, flat in self._rate_slots.items():
            if len(flat) == 3:
                continue
            # by start, then file order, so a clash is reported on the later line
            slots = sorted(
                zip(flat[0::3], flat[1::3], flat[2::3], strict=True), key=lambda s: (s[0], s[2])
            )
            for (gis0, incr0, _l0), (gis, _incr, line) in zip(slots, slots[1:], strict=False):
                if gis == gis0:
                    self.problem("Rates.csv", line, "GroupIntervalStart",
                                 f"rate {rid!r} has two slots starting at the same offset",
                                 format_duration(gis))
                elif incr0 > 0 and gis % incr0:
                    self.problem("Rates.csv", line, "GroupIntervalStart",
                                 f"rate {rid!r}: start is not a multiple of the previous "
                                 f"slot's increment {format_duration(incr0)}",
                                 format_duration(gis))
        self._rate_slots.clear()

    def _row_DestinationRates(self, row: CsvRow) -> None:  # noqa: N802
        c = row.cells
        if c["DestinationId"] != "*any":
            self._ref(row, "DestinationId", "Destinations", c["DestinationId"])
        self._ref(row, "RatesTag", "Rates", c["RatesTag"])
        self._dup(self._dr_lines, f"{c['Id']}\x00{c['DestinationId']}", row, "DestinationId",
                  f"destination in destination rate {c['Id']!r}")
        self.ids["DestinationRates"].add(c["Id"])

    def _row_RatingPlans(self, row: CsvRow) -> None:  # noqa: N802
        c = row.cells
        self._ref(row, "DestinationRatesId", "DestinationRates", c["DestinationRatesId"])
        if c["TimingTag"] not in BUILTIN_TIMINGS:
            self._ref(row, "TimingTag", "Timings", c["TimingTag"])
        self.ids["RatingPlans"].add(c["Id"])

    def _row_RatingProfiles(self, row: CsvRow) -> None:  # noqa: N802
        c = row.cells
        self._ref(row, "RatingPlanId", "RatingPlans", c["RatingPlanId"])
        key = "\x00".join((c["Tenant"], c["Category"], c["Subject"], c["ActivationTime"]))
        self._dup(self._rp_lines, key, row, "ActivationTime",
                  f"rating profile {c['Tenant']}:{c['Category']}:{c['Subject']} activation")

    def _row_SharedGroups(self, row: CsvRow) -> None:  # noqa: N802
        self.ids["SharedGroups"].add(row.cells["Id"])

    def _row_Actions(self, row: CsvRow) -> None:  # noqa: N802
        c = row.cells
        if c["Action"] == "*cgr_rpc":
            try:
                parse_cgr_rpc(c["ExtraParameters"])
            except CgrRpcError as exc:
                if exc.unsupported and not self.strict_actions:
                    self.warn(Problem(row.file, row.line, "ExtraParameters",
                                      f"*cgr_rpc {exc}; the action fails when it runs",
                                      c["ExtraParameters"]))
                else:
                    self.problem(row.file, row.line, "ExtraParameters", f"*cgr_rpc {exc}",
                                 c["ExtraParameters"])
        elif c["Action"] == "*cdrlog" and c["ExtraParameters"]:
            if check_json(c["ExtraParameters"]):
                self.problem(row.file, row.line, "ExtraParameters",
                             f"{c['Action']} parameters must be JSON", c["ExtraParameters"])
        elif c["ExtraParameters"][:1] in ("{", "["):
            if check_json(c["ExtraParameters"]):
                self.problem(row.file, row.line, "ExtraParameters", "not valid JSON",
                             c["ExtraParameters"])
        if c["BalanceType"] == "*voice" and not c["Units"].startswith("{"):
            if check_duration(c["Units"]):
                self.problem(row.file, row.line, "Units", "not a duration for a *voice balance",
                             c["Units"])
        self.ids["Actions"].add(c["ActionsId"])

    def _row_ActionPlans(self, row: CsvRow) -> None:  # noqa: N802
        c = row.cells
        self._ref(row, "ActionsId", "Actions", c["ActionsId"])
        if c["TimingId"] not in BUILTIN_TIMINGS:
            self._ref(row, "TimingId", "Timings", c["TimingId"])
        self.ids["ActionPlans"].add(c["Id"])

    def _row_ActionTriggers(self, row: CsvRow) -> None:  # noqa: N802
        self._ref(row, "ActionsId", "Actions", row.cells["ActionsId"])
        self.ids["ActionTriggers"].add(row.cells["Tag"])

    def _row_AccountActions(self, row: CsvRow) -> None:  # noqa: N802
        c = row.cells
        self._dup(self._account_lines, f"{c['Tenant']}:{c['Account']}", row, "Account",
                  f"account {c['Tenant']}:{c['Account']}")
        # ';' lists: an account in several plans / trigger groups (APIerSv2.SetAccount)
        for plan_id in filter(None, c["ActionPlanId"].split(";")):
            self._ref(row, "ActionPlanId", "ActionPlans", plan_id)
        for group_id in filter(None, c["ActionTriggersId"].split(";")):
            self._ref(row, "ActionTriggersId", "ActionTriggers", group_id)

    def _row_Chargers(self, row: CsvRow) -> None:  # noqa: N802
        c = row.cells
        for aid in c["AttributeIDs"].split(";") if c["AttributeIDs"] else ():
            if aid == "*none":
                continue
            if aid.startswith("*"):
                if len(aid.split(":")) < 3:
                    self.problem(row.file, row.line, "AttributeIDs",
                                 f"inline attribute {aid!r} is not type:path:value",
                                 c["AttributeIDs"])
                continue
            self._ref(row, "AttributeIDs", "Attributes", aid, f"{c['Tenant']}:{aid}")

    def _row_Thresholds(self, row: CsvRow) -> None:  # noqa: N802
        c = row.cells
        for aid in c["ActionIDs"].split(";") if c["ActionIDs"] else ():
            if aid != "*none":
                self._ref(row, "ActionIDs", "Actions", aid)


# ----------------------------------------------------------------------------- folders
def known_files(folder: Path) -> tuple[list[str], list[Problem]]:
    """Known tariff-plan files present in ``folder``, and problems for unknown ``*.csv``."""
    problems: list[Problem] = []
    if not folder.is_dir():
        return [], [Problem(str(folder), None, None, "not a folder")]
    present = {p.name for p in folder.iterdir() if p.is_file()}
    names = [n for n in FILE_COLUMNS if f"{n}.csv" in present]
    known = {f"{n}.csv" for n in FILE_COLUMNS}
    for extra in sorted(present):
        if extra.lower().endswith(".csv") and extra not in known:
            problems.append(Problem(extra, None, None, "unknown tariff-plan file name "
                                    "(file names are case-sensitive, e.g. Rates.csv)"))
    if not names and not problems:
        problems.append(Problem(str(folder), None, None, "no tariff-plan CSV file found"))
    return names, problems


def validate_folder(folder: str | Path, *, limit: int = DEFAULT_LIMIT) -> ValidationResult:
    """Validate every file of ``folder``, streaming; collect up to ``limit`` problems."""
    base = Path(folder)
    names, folder_problems = known_files(base)
    v = TariffPlanValidator(limit)
    v.result.files = names
    try:
        for p in folder_problems:
            v.problem(p.file, p.line, p.column, p.message, p.value)
        for name in VALIDATION_ORDER:
            if name in names:
                v.validate_file(name, iter_file(base / f"{name}.csv", name))
            else:
                v.result.counts[name] = 0
    except _TooMany:
        pass
    return v.result


def _as_rows(name: str, rows: Iterable[CsvRow | Mapping[str, str]]) -> Iterator[CsvRow]:
    for index, row in enumerate(rows, start=1):
        if isinstance(row, CsvRow):
            yield row
        else:
            cells = {c: row.get(c, "") for c in FILE_COLUMNS[name]}
            yield CsvRow(f"{name}.csv", index, cells)


def validate_rows(
    rows: Mapping[str, Iterable[CsvRow | Mapping[str, str]]], *, limit: int = DEFAULT_LIMIT,
    strict_actions: bool = False,
) -> ValidationResult:
    """Validate an in-memory tariff plan (raw-cell dicts: line = position in the list);
    ``strict_actions``: see :class:`TariffPlanValidator`."""
    v = TariffPlanValidator(limit, strict_actions=strict_actions)
    try:
        for name in VALIDATION_ORDER:
            v.validate_file(name, _as_rows(name, rows.get(name, ())))
    except _TooMany:
        pass
    return v.result
