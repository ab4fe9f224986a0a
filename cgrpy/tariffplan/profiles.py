"""One provisioned object (a CGRateS v0.10 ``APIerSv1.Set*`` argument) as the CSV rows it has in
its tariff-plan file, and back.

Runtime provisioning stores a profile exactly as a CSV folder would have carried it, so the
loader's validation and every service's compile step see the same thing either way. The JSON
side uses the CGRateS names (``Tenant``, ``ID``, ``FilterIDs``, ``ActivationInterval``, ...;
matched case-insensitively like Go's ``encoding/json``); numbers are exact (``Decimal``/int,
never float). A field of the wrong JSON type raises :class:`ProfileError` naming it; a cell with
a bad value (weight ``abc``, an unknown attribute type) is left to the loader's validation so
the message is the one a CSV file would get.

Kinds and their files: Filter (Filters), Attribute (Attributes), Charger (Chargers), Supplier
(Suppliers), StatQueue (Stats), Threshold (Thresholds), Resource (Resources), Actions (Actions), ActionPlan
(ActionPlans, plus one Timings row per non-builtin timing), ActionTriggers (ActionTriggers) and
AccountActions (AccountActions: an account's plans, trigger groups and flags).
The rating kinds of the TP API (TPTiming, TPDestination, TPRate, TPDestinationRate,
TPRatingPlan, TPRatingProfile) are in :mod:`cgrpy.tariffplan.rating_kinds`; :func:`kind` finds both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cgrpy.gotime import GO_ZERO_TIME, go_time
from cgrpy.tariffplan.columns import EXTRA_COLUMNS, FILE_COLUMNS, TariffPlanRows
from cgrpy.tariffplan.validate import check_number
from cgrpy.units import UnitError, parse_duration, parse_time

Row = dict[str, str]
PROFILE_SERVICES = ("attributes", "chargers", "suppliers", "stats", "thresholds", "resources")


class ProfileError(ValueError):
    """A provisioning argument that cannot become CSV rows; ``field`` is the JSON field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


# ----------------------------------------------------------------------------- JSON -> cells
class _Obj:
    """A JSON object read the Go way: names match case-insensitively, absent = zero value."""

    def __init__(self, raw: Any, where: str = "") -> None:
        if not isinstance(raw, Mapping):
            raise ProfileError(where or "profile", f"expected a JSON object, got {_kind(raw)}")
        self.raw = raw
        self.where = where
        self._keys = {str(k).lower(): k for k in raw}

    def name(self, field: str) -> str:
        return f"{self.where}.{field}" if self.where else field

    def get(self, *fields: str) -> Any:
        for f in fields:
            key = self._keys.get(f.lower())
            if key is not None and self.raw[key] is not None:
                return self.raw[key]
        return None

    def text(self, *fields: str) -> str:
        v = self.get(*fields)
        if v is None:
            return ""
        if isinstance(v, bool) or not isinstance(v, str | int | Decimal):
            raise ProfileError(self.name(fields[0]), f"expected text, got {_kind(v)}")
        return str(v)

    def number(self, field: str) -> str:
        """A number cell (weights, values): JSON number or text, left for the validator."""
        v = self.get(field)
        if v is None:
            return ""
        if isinstance(v, bool) or isinstance(v, float):
            raise ProfileError(self.name(field), f"expected an exact number, got {_kind(v)}")
        if isinstance(v, Decimal):
            return format(v, "f")
        if isinstance(v, int | str):
            return str(v)
        raise ProfileError(self.name(field), f"expected a number, got {_kind(v)}")

    def flag(self, field: str) -> str:
        v = self.get(field)
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return v
        raise ProfileError(self.name(field), f"expected true/false, got {_kind(v)}")

    def duration(self, field: str) -> str:
        """Go time.Duration: a JSON number is nanoseconds (a bare number cell is too)."""
        v = self.get(field)
        if v is None:
            return ""
        if isinstance(v, bool) or isinstance(v, float):
            raise ProfileError(self.name(field), f"expected a duration, got {_kind(v)}")
        if isinstance(v, Decimal):
            if v != v.to_integral_value():
                raise ProfileError(self.name(field), "expected whole nanoseconds")
            return str(int(v))
        if isinstance(v, int | str):
            return str(v)
        raise ProfileError(self.name(field), f"expected a duration, got {_kind(v)}")

    def ids(self, field: str) -> str:
        """A []string as a ``;``-list cell (a single string is taken as written)."""
        v = self.get(field)
        if v is None:
            return ""
        if isinstance(v, str):
            return v
        if isinstance(v, Mapping):  # utils.StringMap {"id": true}
            return ";".join(str(k) if on else f"!{k}" for k, on in v.items())
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ProfileError(self.name(field), f"expected a list of strings, got {_kind(v)}")
        for x in v:
            if ";" in x:
                raise ProfileError(self.name(field), f"item {x!r} contains ';' (the CSV list separator)")
        return ";".join(v)

    def items(self, field: str) -> list[_Obj]:
        v = self.get(field)
        if v is None:
            return []
        if not isinstance(v, list):
            raise ProfileError(self.name(field), f"expected a list, got {_kind(v)}")
        return [_Obj(x, f"{self.name(field)}[{i}]") for i, x in enumerate(v)]

    def interval(self, field: str = "ActivationInterval") -> str:
        v = self.get(field)
        if v is None or v == "":
            return ""
        if isinstance(v, str):
            return v  # the CSV form start[;end]
        ai = _Obj(v, self.name(field))
        start, end = ai.text("ActivationTime"), ai.text("ExpiryTime")
        start = "" if start == GO_ZERO_TIME else start
        end = "" if end == GO_ZERO_TIME else end
        return f"{start};{end}" if end else start


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return f"text {v!r}"
    if isinstance(v, int | Decimal | float):
        return f"the number {v}"
    if isinstance(v, list):
        return "a list"
    return "an object"


def _row(file: str, cells: Mapping[str, str]) -> Row:
    return {c: cells.get(c, "") for c in FILE_COLUMNS[file]}


# ----------------------------------------------------------------------------- cells -> JSON
def _split(cell: str) -> list[str]:
    return [x for x in cell.split(";") if x] if cell else []


def _json_number(cell: str) -> Decimal | int:
    if cell == "":
        return 0
    value = Decimal(cell)
    return int(value) if value == value.to_integral_value() and "." not in cell and "e" not in cell.lower() else value


def _json_bool(cell: str) -> bool:
    return cell in ("1", "t", "T", "TRUE", "true", "True")


def _json_duration(cell: str) -> int:
    try:
        return parse_duration(cell)
    except UnitError:
        return 0


def _json_time(cell: str) -> str:
    if not cell:
        return GO_ZERO_TIME
    try:
        t = parse_time(cell)
    except (UnitError, ValueError):
        return cell
    return go_time(t)


def _json_interval(cell: str) -> dict[str, str] | None:
    if not cell:
        return None
    start, _, end = cell.partition(";")
    return {"ActivationTime": _json_time(start), "ExpiryTime": _json_time(end)}


def _merge_ids(out: list[str], cell: str) -> None:
    for x in _split(cell):
        if x not in out:
            out.append(x)


def _first(rows: Iterable[Row], col: str) -> str:
    return next((r[col] for r in rows if r[col] != ""), "")


def _last(rows: Iterable[Row], col: str) -> str:
    found = ""
    for r in rows:
        if r[col] != "":
            found = r[col]
    return found


# ----------------------------------------------------------------------------- the kinds
@dataclass(frozen=True)
class Kind:
    name: str  # the API name (Attribute, StatQueue, ...)
    file: str  # its tariff-plan file
    tenant_col: str | None  # None: keyed by ID only (the rating/account files)
    id_col: str
    to_rows: Callable[[_Obj, str, str], list[Row]]  # (profile, tenant, id) -> rows
    from_rows: Callable[[list[Row], str, str], dict[str, Any]]  # (rows, tenant, id) -> JSON
    services: tuple[str, ...]  # whose compiled data it changes (ReloadCache)
    # A composite ID (a rating profile is Category and Subject within its tenant): the ID is
    # these columns' cells joined by ':', each read from the same-named JSON field.
    id_cols: tuple[str, ...] = ()
    # The column telling apart the rows of one object when rows are added to it instead of
    # replacing it (a rating profile's ActivationTime); None: the kind cannot be added to.
    append_col: str | None = None

    def key(self, obj: Any, default_tenant: str) -> tuple[str, str]:
        """(tenant, id) named by a profile or a TenantID argument."""
        o = _Obj(obj)
        if self.id_cols:
            parts = [o.text(c) for c in self.id_cols]
            for col, part in zip(self.id_cols, parts, strict=True):
                if not part:
                    raise ProfileError(col, "missing")
            ident = ":".join(parts)
        else:
            ident = o.text(self.id_col, "ID", "ActionsId", "GroupID")
        if not ident:
            raise ProfileError(self.id_col if self.tenant_col is None else "ID", "missing")
        tenant = (o.text("Tenant") or default_tenant) if self.tenant_col else ""
        return tenant, ident

    def row_ident(self, row: Mapping[str, str]) -> str:
        return ":".join(row[c] for c in self.id_cols) if self.id_cols else row[self.id_col]

    def matches(self, row: Mapping[str, str], tenant: str, ident: str) -> bool:
        if self.row_ident(row) != ident:
            return False
        return self.tenant_col is None or row[self.tenant_col] == tenant

    def match_cells(self, tenant: str, ident: str) -> dict[str, str]:
        if self.id_cols:
            cells = dict(zip(self.id_cols, ident.split(":", len(self.id_cols) - 1), strict=False))
        else:
            cells = {self.id_col: ident}
        if self.tenant_col:
            cells[self.tenant_col] = tenant
        return cells


def _filter_rows(p: _Obj, tenant: str, ident: str) -> list[Row]:
    rules = p.items("Rules")
    if not rules:
        raise ProfileError("Rules", "a filter needs at least one rule")
    interval = p.interval()
    rows = []
    for i, r in enumerate(rules):
        rows.append(_row("Filters", {
            "Tenant": tenant, "ID": ident, "Type": r.text("Type"), "Element": r.text("Element", "FieldName"),
            "Values": r.ids("Values"), "ActivationInterval": interval if i == 0 else "",
        }))
    return rows


def _filter_json(rows: list[Row], tenant: str, ident: str) -> dict[str, Any]:
    return {
        "Tenant": tenant, "ID": ident,
        "Rules": [{"Type": r["Type"], "Element": r["Element"], "Values": _split(r["Values"])} for r in rows],
        "ActivationInterval": _json_interval(_first(rows, "ActivationInterval")),
    }


def _attribute_rows(p: _Obj, tenant: str, ident: str) -> list[Row]:
    attrs = p.items("Attributes")
    if not attrs:
        raise ProfileError("Attributes", "an attribute profile needs at least one attribute")
    head = {
        "Tenant": tenant, "ID": ident, "Contexts": p.ids("Contexts"), "FilterIDs": p.ids("FilterIDs"),
        "ActivationInterval": p.interval(), "Blocker": p.flag("Blocker"), "Weight": p.number("Weight"),
    }
    rows = []
    for i, a in enumerate(attrs):
        path = a.text("Path") or (f"*req.{a.text('FieldName')}" if a.text("FieldName") else "")
        if not path:
            raise ProfileError(a.name("Path"), "missing")
        value = a.get("Value", "Substitute")
        if isinstance(value, list):  # RSRParsers as [{"Rules": "..."}]
            value = ";".join(_Obj(x, a.name("Value")).text("Rules") for x in value)
        cells = {
            **(head if i == 0 else {"Tenant": tenant, "ID": ident}),
            "AttributeFilterIDs": a.ids("FilterIDs"), "Path": path, "Type": a.text("Type") or "*constant",
            "Value": _Obj({"v": value}, a.name("Value")).text("v") if value is not None else "",
        }
        rows.append(_row("Attributes", cells))
    return rows


def _attribute_json(rows: list[Row], tenant: str, ident: str) -> dict[str, Any]:
    contexts: list[str] = []
    filters: list[str] = []
    for r in rows:
        _merge_ids(contexts, r["Contexts"])
        _merge_ids(filters, r["FilterIDs"])
    return {
        "Tenant": tenant, "ID": ident, "Contexts": contexts or ["*any"], "FilterIDs": filters,
        "ActivationInterval": _json_interval(_first(rows, "ActivationInterval")),
        "Attributes": [
            {"FilterIDs": _split(r["AttributeFilterIDs"]), "Path": r["Path"], "Type": r["Type"],
             "Value": [{"Rules": v, "AllFiltersMatch": False} for v in r["Value"].split(";")] if r["Value"] else []}
            for r in rows if r["Path"]
        ],
        "Blocker": _json_bool(_last(rows, "Blocker")), "Weight": _json_number(_last(rows, "Weight")),
    }


def _charger_rows(p: _Obj, tenant: str, ident: str) -> list[Row]:
    return [_row("Chargers", {
        "Tenant": tenant, "ID": ident, "FilterIDs": p.ids("FilterIDs"), "ActivationInterval": p.interval(),
        "RunID": p.text("RunID"), "AttributeIDs": p.ids("AttributeIDs"), "Weight": p.number("Weight"),
    })]


def _charger_json(rows: list[Row], tenant: str, ident: str) -> dict[str, Any]:
    filters: list[str] = []
    attrs: list[str] = []
    for r in rows:
        _merge_ids(filters, r["FilterIDs"])
        _merge_ids(attrs, r["AttributeIDs"])
    return {
        "Tenant": tenant, "ID": ident, "FilterIDs": filters,
        "ActivationInterval": _json_interval(_first(rows, "ActivationInterval")),
        "RunID": _last(rows, "RunID"), "AttributeIDs": attrs, "Weight": _json_number(_last(rows, "Weight")),
    }


def _supplier_rows(p: _Obj, tenant: str, ident: str) -> list[Row]:
    head = {
        "Tenant": tenant, "ID": ident, "FilterIDs": p.ids("FilterIDs"), "ActivationInterval": p.interval(),
        "Sorting": p.text("Sorting"), "SortingParameters": p.ids("SortingParameters"), "Weight": p.number("Weight"),
    }
    sups = p.items("Suppliers")
    if not sups:
        return [_row("Suppliers", head)]
    rows = []
    for i, s in enumerate(sups):
        if not s.text("ID"):
            raise ProfileError(s.name("ID"), "missing")
        rows.append(_row("Suppliers", {
            **(head if i == 0 else {"Tenant": tenant, "ID": ident}),
            "SupplierID": s.text("ID"), "SupplierFilterIDs": s.ids("FilterIDs"),
            "SupplierAccountIDs": s.ids("AccountIDs"), "SupplierRatingPlanIDs": s.ids("RatingPlanIDs"),
            "SupplierResourceIDs": s.ids("ResourceIDs"), "SupplierStatIDs": s.ids("StatIDs"),
            "SupplierWeight": s.number("Weight"), "SupplierBlocker": s.flag("Blocker"),
            "SupplierParameters": s.text("SupplierParameters"),
        }))
    return rows


def _supplier_json(rows: list[Row], tenant: str, ident: str) -> dict[str, Any]:
    filters: list[str] = []
    params: list[str] = []
    for r in rows:
        _merge_ids(filters, r["FilterIDs"])
        _merge_ids(params, r["SortingParameters"])
    return {
        "Tenant": tenant, "ID": ident, "FilterIDs": filters,
        "ActivationInterval": _json_interval(_first(rows, "ActivationInterval")),
        "Sorting": _last(rows, "Sorting"), "SortingParameters": params,
        "Suppliers": [
            {"ID": r["SupplierID"], "FilterIDs": _split(r["SupplierFilterIDs"]),
             "AccountIDs": _split(r["SupplierAccountIDs"]), "RatingPlanIDs": _split(r["SupplierRatingPlanIDs"]),
             "ResourceIDs": _split(r["SupplierResourceIDs"]), "StatIDs": _split(r["SupplierStatIDs"]),
             "Weight": _json_number(r["SupplierWeight"]), "Blocker": _json_bool(r["SupplierBlocker"]),
             "SupplierParameters": r["SupplierParameters"]}
            for r in rows if r["SupplierID"]
        ],
        "Weight": _json_number(_last(rows, "Weight")),
    }


def _stat_rows(p: _Obj, tenant: str, ident: str) -> list[Row]:
    head = {
        "Tenant": tenant, "Id": ident, "FilterIDs": p.ids("FilterIDs"), "ActivationInterval": p.interval(),
        "QueueLength": p.number("QueueLength"), "TTL": p.duration("TTL"), "MinItems": p.number("MinItems"),
        "Stored": p.flag("Stored"), "Blocker": p.flag("Blocker"), "Weight": p.number("Weight"),
        "ThresholdIDs": p.ids("ThresholdIDs"),
    }
    # One row per distinct metric filter list: MetricFilterIDs apply to every metric of a row.
    groups: dict[str, list[str]] = {}
    for m in p.items("Metrics"):
        mid = m.text("MetricID")
        if not mid:
            raise ProfileError(m.name("MetricID"), "missing")
        groups.setdefault(m.ids("FilterIDs"), []).append(mid)
    if not groups:
        return [_row("Stats", head)]
    return [
        _row("Stats", {**(head if i == 0 else {"Tenant": tenant, "Id": ident}),
                       "Metrics": ";".join(mids), "MetricFilterIDs": fids})
        for i, (fids, mids) in enumerate(groups.items())
    ]


def _stat_json(rows: list[Row], tenant: str, ident: str) -> dict[str, Any]:
    filters: list[str] = []
    thresholds: list[str] = []
    metrics: list[dict[str, Any]] = []
    for r in rows:
        _merge_ids(filters, r["FilterIDs"])
        _merge_ids(thresholds, r["ThresholdIDs"])
        metrics += [{"MetricID": m, "FilterIDs": _split(r["MetricFilterIDs"])} for m in _split(r["Metrics"])]
    return {
        "Tenant": tenant, "ID": ident, "FilterIDs": filters,
        "ActivationInterval": _json_interval(_first(rows, "ActivationInterval")),
        "QueueLength": int(_json_number(_last(rows, "QueueLength"))), "TTL": _json_duration(_last(rows, "TTL")),
        "MinItems": int(_json_number(_last(rows, "MinItems"))), "Metrics": metrics,
        "Stored": _json_bool(_last(rows, "Stored")), "Blocker": _json_bool(_last(rows, "Blocker")),
        "Weight": _json_number(_last(rows, "Weight")), "ThresholdIDs": thresholds,
    }


def _threshold_rows(p: _Obj, tenant: str, ident: str) -> list[Row]:
    return [_row("Thresholds", {
        "Tenant": tenant, "Id": ident, "FilterIDs": p.ids("FilterIDs"), "ActivationInterval": p.interval(),
        "MaxHits": p.number("MaxHits"), "MinHits": p.number("MinHits"), "MinSleep": p.duration("MinSleep"),
        "Blocker": p.flag("Blocker"), "Weight": p.number("Weight"), "ActionIDs": p.ids("ActionIDs"),
        "Async": p.flag("Async"),
    })]


def _threshold_json(rows: list[Row], tenant: str, ident: str) -> dict[str, Any]:
    filters: list[str] = []
    actions: list[str] = []
    for r in rows:
        _merge_ids(filters, r["FilterIDs"])
        _merge_ids(actions, r["ActionIDs"])
    return {
        "Tenant": tenant, "ID": ident, "FilterIDs": filters,
        "ActivationInterval": _json_interval(_first(rows, "ActivationInterval")),
        "MaxHits": int(_json_number(_last(rows, "MaxHits"))), "MinHits": int(_json_number(_last(rows, "MinHits"))),
        "MinSleep": _json_duration(_last(rows, "MinSleep")), "Blocker": _json_bool(_last(rows, "Blocker")),
        "Weight": _json_number(_last(rows, "Weight")), "ActionIDs": actions, "Async": _json_bool(_last(rows, "Async")),
    }


def _resource_rows(p: _Obj, tenant: str, ident: str) -> list[Row]:
    """v0.10 ResourceProfile; ``UsageTTL`` is the CSV's TTL column (-1 = until released)."""
    return [_row("Resources", {
        "Tenant": tenant, "Id": ident, "FilterIDs": p.ids("FilterIDs"), "ActivationInterval": p.interval(),
        "TTL": p.duration("UsageTTL"), "Limit": p.number("Limit"),
        "AllocationMessage": p.text("AllocationMessage"), "Blocker": p.flag("Blocker"),
        "Stored": p.flag("Stored"), "Weight": p.number("Weight"), "ThresholdIDs": p.ids("ThresholdIDs"),
    })]


def _resource_json(rows: list[Row], tenant: str, ident: str) -> dict[str, Any]:
    filters: list[str] = []
    thresholds: list[str] = []
    for r in rows:
        _merge_ids(filters, r["FilterIDs"])
        _merge_ids(thresholds, r["ThresholdIDs"])
    return {
        "Tenant": tenant, "ID": ident, "FilterIDs": filters,
        "ActivationInterval": _json_interval(_first(rows, "ActivationInterval")),
        "UsageTTL": _json_duration(_last(rows, "TTL")), "Limit": _json_number(_last(rows, "Limit")),
        "AllocationMessage": _last(rows, "AllocationMessage"), "Blocker": _json_bool(_last(rows, "Blocker")),
        "Stored": _json_bool(_last(rows, "Stored")), "Weight": _json_number(_last(rows, "Weight")),
        "ThresholdIDs": thresholds,
    }


# Actions: the v1.V1TPAction fields of APIerSv1.SetActions (Identifier = the action type).
_ACTION_FIELDS = (
    ("Action", "Identifier"), ("ExtraParameters", "ExtraParameters"), ("Filter", "Filter"),
    ("BalanceId", "BalanceId"), ("BalanceType", "BalanceType"), ("Categories", "Categories"),
    ("DestinationIds", "DestinationIds"), ("RatingSubject", "RatingSubject"),
    ("SharedGroup", "SharedGroups"), ("ExpiryTime", "ExpiryTime"), ("TimingIds", "TimingTags"),
    ("Units", "Units"), ("BalanceWeight", "BalanceWeight"), ("BalanceBlocker", "BalanceBlocker"),
    ("BalanceDisabled", "BalanceDisabled"), ("Weight", "Weight"),
)
_NUMERIC_ACTION = {"Units", "BalanceWeight", "Weight"}


def _actions_rows(p: _Obj, _tenant: str, ident: str) -> list[Row]:
    acts = p.items("Actions")
    if not acts:
        raise ProfileError("Actions", "an action set needs at least one action")
    rows = []
    for a in acts:
        cells = {"ActionsId": ident}
        for col, field in _ACTION_FIELDS:
            if col in _NUMERIC_ACTION:
                cells[col] = a.number(field)
            elif col in ("BalanceBlocker", "BalanceDisabled"):
                cells[col] = a.flag(field)
            elif col in ("Categories", "DestinationIds", "SharedGroup", "TimingIds"):
                cells[col] = a.ids(field) if not isinstance(a.get(field), str) else a.text(field)
            else:
                cells[col] = a.text(field, col)
        rows.append(_row("Actions", cells))
    return rows


def _actions_json(rows: list[Row], _tenant: str, ident: str) -> dict[str, Any]:
    acts = []
    for r in rows:
        act: dict[str, Any] = {}
        for col, field in _ACTION_FIELDS:
            # Units may also be a duration (90s) or a value formula: those stay text
            number = col in _NUMERIC_ACTION and r[col] and check_number(r[col]) is None
            act[field] = _json_number(r[col]) if number else r[col]
        acts.append(act)
    return {"ActionsId": ident, "Actions": acts}


_TIMING_FIELDS = ("Years", "Months", "MonthDays", "WeekDays")


def timing_tag(plan_id: str, index: int) -> str:
    """Tag of the Timings row an action plan's own timing is stored as (removed with the plan)."""
    return f"{plan_id}#{index}"


def _plan_rows(p: _Obj, _tenant: str, ident: str) -> list[Row]:
    """ActionPlans rows; each non-builtin timing also gives a Timings row (file ``Timings``),
    returned in the same list and told apart by its columns (see :func:`split_plan_rows`)."""
    items = p.items("ActionPlan")
    if not items:
        raise ProfileError("ActionPlan", "an action plan needs at least one entry")
    rows: list[Row] = []
    for i, it in enumerate(items):
        timing = it.text("TimingId", "TimingID")
        if not timing:
            cycle = {f: it.ids(f) for f in _TIMING_FIELDS}
            time = it.text("Time") or "*asap"
            if all(v in ("", "*any") for v in cycle.values()) and time in ("*asap", "*every_minute", "*hourly"):
                timing = time
            else:
                timing = timing_tag(ident, i)
                rows.append({"__file__": "Timings", **_row("Timings", {"Tag": timing, **cycle, "Time": time})})
        rows.append(_row("ActionPlans", {"Id": ident, "ActionsId": it.text("ActionsId"), "TimingId": timing,
                                         "Weight": it.number("Weight")}))
    return rows


def _plan_json(rows: list[Row], _tenant: str, ident: str) -> dict[str, Any]:
    return {"Id": ident, "ActionPlan": [
        {"ActionsId": r["ActionsId"], "TimingId": r["TimingId"], "Weight": _json_number(r["Weight"])} for r in rows
    ]}


_TRIGGER_FIELDS = (
    ("UniqueId", "UniqueID"), ("ThresholdType", "ThresholdType"), ("ThresholdValue", "ThresholdValue"),
    ("Recurrent", "Recurrent"), ("MinSleep", "MinSleep"), ("ExpiryTime", "ExpiryTime"),
    ("ActivationTime", "ActivationTime"), ("BalanceTag", "BalanceID"), ("BalanceType", "BalanceType"),
    ("BalanceCategories", "BalanceCategories"), ("BalanceDestinationIds", "BalanceDestinationIds"),
    ("BalanceRatingSubject", "BalanceRatingSubject"), ("BalanceSharedGroup", "BalanceSharedGroups"),
    ("BalanceExpiryTime", "BalanceExpirationDate"), ("BalanceTimingIds", "BalanceTimingTags"),
    ("BalanceWeight", "BalanceWeight"), ("BalanceBlocker", "BalanceBlocker"),
    ("BalanceDisabled", "BalanceDisabled"), ("ActionsId", "ActionsId"), ("Weight", "Weight"),
)
_NUMERIC_TRIGGER = {"ThresholdValue", "BalanceWeight", "Weight"}
# Balance-filter cells: empty = no filter (the loader's reading), so null in JSON, never the 0 or
# false that would become a filter when stored back (a balance of weight 10 would not match).
_FILTER_TRIGGER = {"BalanceWeight", "BalanceBlocker", "BalanceDisabled"}
_BOOL_TRIGGER = {"Recurrent", "BalanceBlocker", "BalanceDisabled"}
_LIST_TRIGGER = {"BalanceCategories", "BalanceDestinationIds", "BalanceSharedGroup", "BalanceTimingIds"}


def _triggers_rows(p: _Obj, _tenant: str, ident: str) -> list[Row]:
    """v1.AttrSetActionTriggers-like: ``{GroupID, ActionTriggers: [{UniqueID, ThresholdType, ...}]}``."""
    items = p.items("ActionTriggers")
    if not items:
        raise ProfileError("ActionTriggers", "at least one trigger is needed")
    rows = []
    for t in items:
        cells = {"Tag": ident}
        for col, field in _TRIGGER_FIELDS:
            if col in _NUMERIC_TRIGGER:
                cells[col] = t.number(field)
            elif col in _BOOL_TRIGGER:
                cells[col] = t.flag(field)
            elif col in _LIST_TRIGGER:
                cells[col] = t.ids(field)
            elif col == "MinSleep":
                cells[col] = t.duration(field)
            else:
                cells[col] = t.text(field, col)
        rows.append(_row("ActionTriggers", cells))
    return rows


def _triggers_json(rows: list[Row], _tenant: str, ident: str) -> dict[str, Any]:
    out = []
    for r in rows:
        t: dict[str, Any] = {}
        for col, field in _TRIGGER_FIELDS:
            if col in _FILTER_TRIGGER and r[col] == "":
                t[field] = None
            elif col in _NUMERIC_TRIGGER:
                t[field] = _json_number(r[col])
            elif col in _BOOL_TRIGGER:
                t[field] = _json_bool(r[col])
            elif col in _LIST_TRIGGER:
                t[field] = _split(r[col])
            elif col == "MinSleep":
                t[field] = _json_duration(r[col])
            else:
                t[field] = r[col]
        out.append(t)
    return {"GroupID": ident, "ActionTriggers": out}


def _account_actions_rows(p: _Obj, tenant: str, ident: str) -> list[Row]:
    """An AccountActions row; ``ActionPlanIds``/``ActionTriggerIds`` may name several ids
    (``;``-joined in the cell: an account in several action plans, APIerSv2.SetAccount)."""
    return [_row("AccountActions", {
        "Tenant": tenant, "Account": ident, "ActionPlanId": p.ids("ActionPlanIds"),
        "ActionTriggersId": p.ids("ActionTriggerIds"), "AllowNegative": p.flag("AllowNegative"),
        "Disabled": p.flag("Disabled"),
    })]


def _account_actions_json(rows: list[Row], tenant: str, ident: str) -> dict[str, Any]:
    r = rows[-1]
    return {"Tenant": tenant, "Account": ident, "ActionPlanIds": _split(r["ActionPlanId"]),
            "ActionTriggerIds": _split(r["ActionTriggersId"]), "AllowNegative": _json_bool(r["AllowNegative"]),
            "Disabled": _json_bool(r["Disabled"])}


ALL_RELOADABLE = ("rals", *PROFILE_SERVICES)

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("Filter", "Filters", "Tenant", "ID", _filter_rows, _filter_json, ALL_RELOADABLE),
    Kind("Attribute", "Attributes", "Tenant", "ID", _attribute_rows, _attribute_json, ("attributes", "chargers")),
    Kind("Charger", "Chargers", "Tenant", "ID", _charger_rows, _charger_json, ("chargers",)),
    Kind("Supplier", "Suppliers", "Tenant", "ID", _supplier_rows, _supplier_json, ("suppliers",)),
    Kind("StatQueue", "Stats", "Tenant", "Id", _stat_rows, _stat_json, ("stats",)),
    Kind("Threshold", "Thresholds", "Tenant", "Id", _threshold_rows, _threshold_json, ("thresholds",)),
    Kind("Resource", "Resources", "Tenant", "Id", _resource_rows, _resource_json, ("resources",)),
    Kind("Actions", "Actions", None, "ActionsId", _actions_rows, _actions_json, ("rals",)),
    Kind("ActionPlan", "ActionPlans", None, "Id", _plan_rows, _plan_json, ("rals",)),
    Kind("ActionTriggers", "ActionTriggers", None, "Tag", _triggers_rows, _triggers_json, ("rals",)),
    Kind("AccountActions", "AccountActions", "Tenant", "Account", _account_actions_rows, _account_actions_json,
         ("rals",)),
)}

# Accepted spellings of a kind (API names, file names, CLI words), lower case.
_ALIASES = {
    **{k.lower(): k for k in KINDS}, **{v.file.lower(): k for k, v in KINDS.items()},
    "stat": "StatQueue", "statqueueprofile": "StatQueue", "attributeprofile": "Attribute",
    "chargerprofile": "Charger", "supplierprofile": "Supplier", "thresholdprofile": "Threshold",
    "resourceprofile": "Resource",
    "action": "Actions", "actiontrigger": "ActionTriggers", "accountaction": "AccountActions",
}


def kind(name: str) -> Kind:
    # imported here: the rating kinds build on this module's helpers (an import cycle otherwise)
    from cgrpy.tariffplan.rating_kinds import RATING_KINDS

    found = _ALIASES.get(name.lower())
    if found is not None:
        return KINDS[found]
    rating = {n.lower(): k for n, k in RATING_KINDS.items()}.get(name.lower())
    if rating is None:
        known = ", ".join([*KINDS, *RATING_KINDS])
        raise ProfileError("kind", f"unknown kind {name!r} (use one of {known})")
    return rating


# ----------------------------------------------------------------------------- public API
@dataclass(frozen=True)
class RowChange:
    """Replace the rows of ``file`` whose cells equal ``match`` by ``rows`` (may be empty)."""

    file: str
    match: dict[str, str]
    rows: list[Row]


def to_changes(k: Kind, profile: Any, default_tenant: str) -> tuple[str, str, list[RowChange]]:
    """(tenant, id, changes) storing ``profile`` in place of whatever that key held."""
    tenant, ident = k.key(profile, default_tenant)
    rows = k.to_rows(_Obj(profile), tenant, ident)
    own = [r for r in rows if "__file__" not in r]
    changes = [RowChange(k.file, k.match_cells(tenant, ident), own)]
    if k.name == "ActionPlan":
        timings = [{c: v for c, v in r.items() if c != "__file__"} for r in rows if "__file__" in r]
        changes += [RowChange("Timings", {"Tag": t["Tag"]}, [t]) for t in timings]
    return tenant, ident, changes


def appended(k: Kind, plan: TariffPlanRows, tenant: str, ident: str, changes: list[RowChange]) -> list[RowChange]:
    """``changes`` (storing an object) turned into adding its rows to the stored object's: a
    stored row goes only when a new one has the same ``append_col`` cell."""
    if k.append_col is None:
        raise ProfileError("append", f"{k.name} rows cannot be added to, only replaced")
    own = changes[0]
    new = {r[k.append_col] for r in own.rows}
    stored = rows_of(k, plan, tenant, ident)
    kept = [r for r in stored if r[k.append_col] not in new]
    return [RowChange(own.file, own.match, kept + _keep_extras(k.file, stored, own.rows)), *changes[1:]]


def _keep_extras(file: str, stored: list[Row], rows: list[Row]) -> list[Row]:
    """Added rows that bring no extra cell (SetRatingProfile has no LoadId) take the stored
    object's, so the object keeps one LoadId."""
    if not stored:
        return rows
    last = stored[-1]
    return [{**r, **{c: last.get(c, "") for c in EXTRA_COLUMNS.get(file, ()) if not r.get(c)}} for r in rows]


def removal_changes(k: Kind, plan: TariffPlanRows, tenant: str, ident: str) -> list[RowChange]:
    """Changes removing a stored object (and an action plan's own timings)."""
    changes = [RowChange(k.file, k.match_cells(tenant, ident), [])]
    if k.name == "ActionPlan":
        own = {r["TimingId"] for r in plan.get("ActionPlans", []) if r["Id"] == ident}
        changes += [RowChange("Timings", {"Tag": t}, []) for t in sorted(own) if t.startswith(f"{ident}#")]
        changes += _leave_plan(plan, ident)
    return changes


def _leave_plan(plan: TariffPlanRows, ident: str) -> list[RowChange]:
    """Every account attached to a removed plan leaves it (APIerSv1.RemoveActionPlan)."""
    out = []
    for r in plan.get("AccountActions", []):
        ids = _split(r["ActionPlanId"])
        if ident in ids:
            kept = {**r, "ActionPlanId": ";".join(i for i in ids if i != ident)}
            out.append(RowChange("AccountActions", {"Tenant": r["Tenant"], "Account": r["Account"]}, [kept]))
    return out


def apply_changes(plan: TariffPlanRows, changes: Iterable[RowChange]) -> TariffPlanRows:
    """A copy of ``plan`` with the changes applied (new rows appended, as the StorDB does)."""
    out = {f: list(rows) for f, rows in plan.items()}
    for ch in changes:
        kept = [r for r in out.get(ch.file, []) if any(r.get(c) != v for c, v in ch.match.items())]
        out[ch.file] = kept + [dict(r) for r in ch.rows]
    return out


def rows_of(k: Kind, plan: TariffPlanRows, tenant: str, ident: str) -> list[Row]:
    return [r for r in plan.get(k.file, []) if k.matches(r, tenant, ident)]


def from_rows(k: Kind, plan: TariffPlanRows, tenant: str, ident: str) -> dict[str, Any] | None:
    """The stored object in its CGRateS JSON shape, or None when there is none."""
    rows = rows_of(k, plan, tenant, ident)
    return k.from_rows(rows, tenant, ident) if rows else None


def ids_of(k: Kind, plan: TariffPlanRows, tenant: str | None) -> list[str]:
    """IDs stored for ``tenant`` (all tenants when None, or kinds without tenant), in file order."""
    out: dict[str, None] = {}
    for r in plan.get(k.file, []):
        if k.tenant_col and tenant is not None and r[k.tenant_col] != tenant:
            continue
        out[k.row_ident(r)] = None
    return list(out)


class ProvisioningRefused(ValueError):
    """The change would make the tariff plan invalid; ``problems`` say where (nothing stored)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def check_change(
    label: str, changes: list[RowChange], before: TariffPlanRows, after: TariffPlanRows,
) -> None:
    """Validate the whole plan after the change exactly as the loader validates CSV; raise
    :class:`ProvisioningRefused` with the problems the change introduced.

    A problem on one of the new rows is named after the object and its JSON-ish column
    (``Attribute cgrates.org:ATTR_X: column Weight: not a number (got "abc")``); a problem the
    change causes elsewhere (a removed filter still referenced) keeps its ``FILE:LINE`` form.
    """
    from cgrpy.tariffplan.validate import validate_rows

    old = {str(p) for p in validate_rows(before, strict_actions=True).problems}
    new_lines: dict[str, range] = {}
    for ch in changes:
        n = len(after.get(ch.file, []))
        new_lines[f"{ch.file}.csv"] = range(n - len(ch.rows) + 1, n + 1)
    out: list[str] = []
    for p in validate_rows(after, strict_actions=True).problems:
        if str(p) in old:
            continue
        lines = new_lines.get(p.file)
        if lines is not None and p.line in lines:
            got = "" if p.value is None else f" (got {p.value!r})"
            col = f" column {p.column}:" if p.column else ""
            row = f" row {p.line - lines.start + 1}" if len(lines) > 1 else ""
            out.append(f"{label}{row}:{col} {p.message}{got}")
        else:
            out.append(str(p))
    if out:
        raise ProvisioningRefused(out)
