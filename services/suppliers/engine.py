"""SupplierS engine: picks the best SupplierProfile for an event, collects each supplier's
sorting data (cost from RALs, metrics from StatS, resource usage) and sorts.

External data comes through injected callables, so this module does no I/O:

* ``cost_of(supplier, event) -> Decimal | (Decimal, RatingPlanID) | None``; raising (or returning
  an Exception) is a cost error. ``event`` already has ``Usage`` defaulted; the rating subject is
  the event's Account (v0.10 behaviour).
* ``metrics_of(tenant, stat_ids) -> dict[metricID, Decimal]``: StatS float metrics; called with
  one stat ID at a time. Raising = the queue is unavailable (logged, skipped).
* ``resource_usage_of(tenant, resource_ids) -> Decimal`` (optional; 0 when not given).
* ``event_cost_of(event) -> Decimal`` for ``MaxCost *event_cost`` (optional).

Differences from CGRateS v0.10, on purpose:

* A supplier whose cost lookup returns no data is dropped (v0.10 keeps it without Cost and the
  cost sorters then crash).
* ``*qos`` gives missing metrics their defaults (``-1``, ``*pdd`` 10000000) for every supplier,
  also one without StatIDs (v0.10 crashes while sorting).
* ``*load`` works: ratios are integers and the key is Load/Ratio (v0.10 panics on a type assertion).
* After AttributeS (done by the caller) nothing is dereferenced: not applicable here.

Kept as v0.10: Supplier.Blocker is ignored; account bundles do not influence costs (the caller's
``cost_of`` decides how to price); Offset larger than the list leaves the list unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cgrpy.errors import CGRError, MandatoryIEMissingError, NotFoundError, ServerError
from cgrpy.event import CGREvent, validate_event
from cgrpy.filters.activation import ActivationInterval
from cgrpy.filters.selection import CandidateIDs, Passes, select_profiles
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.tariffplan.rows import (
    ProfileError,
    group_rows,
    parse_activation,
    parse_bool,
    parse_weight,
    split_list,
)
from cgrpy.units import MINUTE, UnitError, parse_decimal
from services.suppliers.digest import suppliers_digest
from services.suppliers.sorting import (
    HC,
    LC,
    LOAD,
    PDD,
    QOS,
    QOS_MISSING,
    QOS_MISSING_PDD,
    REAS,
    REDS,
    SORTERS,
    Candidate,
    SortingData,
    parse_ratios,
)

log = logging.getLogger(__name__)

EVENT_COST = "*event_cost"
DEFAULT_USAGE_NS = MINUTE
COST_FIELDS = ("Account", "Destination", "SetupTime")


@dataclass
class Supplier:
    id: str
    filter_ids: list[str] = field(default_factory=list)
    account_ids: list[str] = field(default_factory=list)
    rating_plan_ids: list[str] = field(default_factory=list)
    resource_ids: list[str] = field(default_factory=list)
    stat_ids: list[str] = field(default_factory=list)
    weight: Decimal = Decimal(0)
    blocker: bool = False  # parsed, ignored as in v0.10
    parameters: str = ""


@dataclass
class SupplierProfile:
    tenant: str
    id: str
    filter_ids: list[str] = field(default_factory=list)
    activation: ActivationInterval | None = None
    sorting: str = ""
    sorting_parameters: list[str] = field(default_factory=list)
    suppliers: list[Supplier] = field(default_factory=list)
    weight: Decimal = Decimal(0)
    blocker: bool = False  # profiles have no blocker; present for the shared selection

    @classmethod
    def from_rows(cls, tenant: str, pid: str, rows: list[dict[str, str]]) -> SupplierProfile:
        p = cls(tenant, pid)
        where = f"Suppliers {tenant}:{pid}"
        by_id: dict[str, Supplier] = {}
        for row in rows:
            p.filter_ids += [f for f in split_list(row.get("FilterIDs")) if f not in p.filter_ids]
            if (row.get("ActivationInterval") or "").strip():
                p.activation = parse_activation(row["ActivationInterval"], where=where)
            if (row.get("Sorting") or "").strip():
                p.sorting = row["Sorting"].strip()
            p.sorting_parameters += split_list(row.get("SortingParameters"))
            if (row.get("Weight") or "").strip():
                p.weight = parse_weight(row["Weight"], where=f"{where} Weight")
            sid = (row.get("SupplierID") or "").strip()
            if not sid:
                continue
            s = by_id.get(sid)
            if s is None:
                s = by_id[sid] = Supplier(sid)
                p.suppliers.append(s)
            s.filter_ids += split_list(row.get("SupplierFilterIDs"))
            s.account_ids += split_list(row.get("SupplierAccountIDs"))
            s.rating_plan_ids += split_list(row.get("SupplierRatingPlanIDs"))
            s.resource_ids += split_list(row.get("SupplierResourceIDs"))
            s.stat_ids += split_list(row.get("SupplierStatIDs"))
            sw = f"{where} supplier {sid}"
            if (row.get("SupplierWeight") or "").strip():
                s.weight = parse_weight(row["SupplierWeight"], where=f"{sw} SupplierWeight")
            if (row.get("SupplierBlocker") or "").strip():
                s.blocker = parse_bool(row["SupplierBlocker"], where=f"{sw} SupplierBlocker")
            if (row.get("SupplierParameters") or "").strip():
                s.parameters = row["SupplierParameters"].strip()
        # An unknown Sorting loads (v0.10 stores it too); asking the profile for suppliers
        # answers ``unsupported sorting strategy: <name>`` (see _sort).
        if p.sorting == LOAD:
            try:
                parse_ratios(p.sorting_parameters, 1)
            except ValueError as exc:
                raise ProfileError(f"{where} SortingParameters: {exc}") from None
        return p


@dataclass
class SortedSupplier:
    supplier_id: str
    supplier_parameters: str
    sorting_data: SortingData


@dataclass
class SortedSuppliers:
    profile_id: str
    sorting: str
    sorted_suppliers: list[SortedSupplier]

    @property
    def count(self) -> int:
        return len(self.sorted_suppliers)

    def digest(self) -> str:
        return suppliers_digest(
            (s.supplier_id, s.supplier_parameters) for s in self.sorted_suppliers
        )


CostOf = Callable[[Supplier, CGREvent], Any]
MetricsOf = Callable[[str, list[str]], Mapping[str, Decimal]]
ResourceUsageOf = Callable[[str, list[str]], Decimal]
EventCostOf = Callable[[CGREvent], Decimal]


class _Dropped(Exception):
    """The supplier leaves the result (filters, MaxCost, or an error under IgnoreErrors)."""


class SupplierEngine:
    def __init__(
        self,
        profiles: list[SupplierProfile],
        passes: Passes,
        cost_of: CostOf,
        metrics_of: MetricsOf,
        *,
        resource_usage_of: ResourceUsageOf | None = None,
        event_cost_of: EventCostOf | None = None,
        default_ratio: int = 1,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        candidate_ids: CandidateIDs | None = None,
    ) -> None:
        self.candidate_ids = candidate_ids
        self.profiles = {(p.tenant, p.id): p for p in profiles}
        self.passes = passes
        self.cost_of = cost_of
        self.metrics_of = metrics_of
        self.resource_usage_of = resource_usage_of
        self.event_cost_of = event_cost_of
        self.default_ratio = default_ratio
        self.clock = clock

    @classmethod
    def from_rows(
        cls,
        rows: TariffPlanRows,
        passes: Passes,
        cost_of: CostOf,
        metrics_of: MetricsOf,
        **kw: Any,
    ) -> SupplierEngine:
        profiles = [
            SupplierProfile.from_rows(tenant, pid, prow)
            for (tenant, pid), prow in group_rows(rows.get("Suppliers", []), "ID").items()
        ]
        return cls(profiles, passes, cost_of, metrics_of, **kw)

    # --- profile selection ----------------------------------------------------------------------

    @staticmethod
    def _with_default_usage(event: CGREvent) -> CGREvent:
        if "Usage" in event.event:
            return event
        ev = CGREvent(event.tenant, event.id, event.time, dict(event.event))
        ev.event["Usage"] = DEFAULT_USAGE_NS
        return ev

    def profiles_for_event(
        self, event: CGREvent, *, now: datetime | None = None
    ) -> list[SupplierProfile]:
        """``GetSupplierProfilesForEvent``: matching profiles, best first; NOT_FOUND if none."""
        validate_event(event)
        event = self._with_default_usage(event)
        ids = self.candidate_ids(event.tenant, event) if self.candidate_ids else None
        cands = [p for (t, pid), p in self.profiles.items()
                 if t == event.tenant and (ids is None or pid in ids)]
        found = select_profiles(cands, event, self.passes, now=now or self.clock(),
                                use_blocker=False)
        if not found:
            raise NotFoundError()
        return found

    # --- GetSuppliers ----------------------------------------------------------------------------

    def get_suppliers(
        self,
        event: CGREvent,
        *,
        max_cost: str | Decimal | None = None,
        limit: int | None = None,
        offset: int | None = None,
        ignore_errors: bool = False,
        now: datetime | None = None,
    ) -> SortedSuppliers:
        validate_event(event)
        now = now or self.clock()
        event = self._with_default_usage(event)
        profile = self.profiles_for_event(event, now=now)[0]
        try:
            limit_cost = self._max_cost(max_cost, event)
            ranked = self._sort(profile, event, limit_cost, ignore_errors, now)
        except NotFoundError:
            raise
        except CGRError as exc:
            raise ServerError(str(exc)) from None
        if offset is not None and offset <= len(ranked):
            ranked = ranked[offset:]
        if limit is not None and limit <= len(ranked):
            ranked = ranked[:limit]
        return SortedSuppliers(
            profile.id,
            profile.sorting,
            [SortedSupplier(c.supplier_id, c.parameters, c.data) for c in ranked],
        )

    def _max_cost(self, max_cost: str | Decimal | None, event: CGREvent) -> Decimal | None:
        if max_cost is None or max_cost == "":
            return None
        if max_cost == EVENT_COST:
            missing = [f for f in (*COST_FIELDS, "Usage") if f not in event.event]
            if missing:
                raise MandatoryIEMissingError(*missing)
            if self.event_cost_of is None:
                raise CGRError("MaxCost *event_cost needs the rating engine (no event_cost_of)")
            value = Decimal(self.event_cost_of(event))
        else:
            try:
                value = parse_decimal(max_cost, empty=None)
            except (UnitError, InvalidOperation) as exc:
                raise CGRError(f"MaxCost: {exc}") from None
        return None if value == 0 else value

    def _sort(
        self,
        profile: SupplierProfile,
        event: CGREvent,
        max_cost: Decimal | None,
        ignore_errors: bool,
        now: datetime,
    ) -> list[Candidate]:
        if profile.sorting not in SORTERS:
            raise CGRError(f"unsupported sorting strategy: {profile.sorting}")
        required = {LC: "rating_plan_ids", HC: "rating_plan_ids", REAS: "resource_ids",
                    REDS: "resource_ids", LOAD: "stat_ids"}.get(profile.sorting)
        if required:
            label = {"rating_plan_ids": "RatingPlanIDs", "resource_ids": "ResourceIDs",
                     "stat_ids": "StatIDs"}[required]
            if any(not getattr(s, required) for s in profile.suppliers):
                raise MandatoryIEMissingError(label)
        cands: list[Candidate] = []
        for s in profile.suppliers:
            try:
                data = self._collect(profile, s, event, max_cost, now)
            except _Dropped:
                continue
            except NotFoundError as exc:
                if ignore_errors:
                    log.warning("supplier %s of %s dropped: %s", s.id, profile.id, exc)
                    continue
                raise CGRError(str(exc)) from None
            except CGRError as exc:
                if ignore_errors:
                    log.warning("supplier %s of %s dropped: %s", s.id, profile.id, exc)
                    continue
                raise
            cands.append(Candidate(s.id, s.parameters, data))
        return SORTERS[profile.sorting](cands, profile.sorting_parameters)

    # --- per-supplier data ------------------------------------------------------------

    def _collect(
        self,
        profile: SupplierProfile,
        s: Supplier,
        event: CGREvent,
        max_cost: Decimal | None,
        now: datetime,
    ) -> SortingData:
        data: SortingData = {"Weight": s.weight}
        if s.account_ids or s.rating_plan_ids:
            self._add_cost(s, event, data, max_cost)
        if profile.sorting == LOAD:
            self._add_load(profile, s, event.tenant, data)
        elif s.stat_ids:
            self._add_metrics(s, event.tenant, data)
        if profile.sorting == QOS:
            for m in profile.sorting_parameters:
                data.setdefault(m, QOS_MISSING_PDD if m == PDD else QOS_MISSING)
        if s.resource_ids:
            data["ResourceUsage"] = (
                Decimal(self.resource_usage_of(event.tenant, list(s.resource_ids)))
                if self.resource_usage_of is not None
                else Decimal(0)
            )
        if s.filter_ids and not self.passes(
            event.tenant, list(s.filter_ids), event, now=now, extra_roots={"*vars": data}
        ):
            raise _Dropped()
        return data

    def _add_cost(
        self, s: Supplier, event: CGREvent, data: SortingData, max_cost: Decimal | None
    ) -> None:
        missing = [f for f in COST_FIELDS if f not in event.event]
        if missing:
            raise MandatoryIEMissingError(*missing)
        try:
            got = self.cost_of(s, event)
        except CGRError:
            raise
        except Exception as exc:  # noqa: BLE001 - RALs errors arrive as any exception
            raise CGRError(str(exc) or type(exc).__name__) from None
        if isinstance(got, Exception):
            raise CGRError(str(got) or type(got).__name__)
        if got is None:
            log.warning("supplier %s: no cost data, dropped", s.id)
            raise _Dropped()
        if isinstance(got, tuple):
            cost, plan = got
            data["Cost"] = Decimal(cost)
            if plan:
                data["RatingPlanID"] = plan
        else:
            data["Cost"] = Decimal(got)
        if max_cost is not None and data["Cost"] > max_cost:
            raise _Dropped()

    def _add_metrics(self, s: Supplier, tenant: str, data: SortingData) -> None:
        """Mean of each metric over the supplier's queues (-1 of an N/A queue counts)."""
        collected: dict[str, list[Decimal]] = {}
        for sid in s.stat_ids:
            try:
                metrics = self.metrics_of(tenant, [sid])
            except Exception as exc:  # noqa: BLE001 - v0.10 only logs StatS errors here
                log.warning("supplier %s: stats %s unavailable: %s", s.id, sid, exc)
                continue
            for mid, v in metrics.items():
                collected.setdefault(mid, []).append(Decimal(v))
        for mid, values in collected.items():
            data[mid] = sum(values, Decimal(0)) / len(values)

    def _add_load(
        self, profile: SupplierProfile, s: Supplier, tenant: str, data: SortingData
    ) -> None:
        ratios, default = parse_ratios(profile.sorting_parameters, self.default_ratio)
        load = Decimal(0)
        for entry in s.stat_ids:
            sid, sep, metric = entry.partition(":")
            try:
                metrics = self.metrics_of(tenant, [sid])
            except Exception as exc:  # noqa: BLE001
                raise CGRError(f"<SupplierS> error: {exc} for statID: {sid}") from None
            if sep:
                if metric not in metrics:
                    raise CGRError(f"<SupplierS> error: NOT_FOUND metric {metric} for statID: {sid}")
                load += Decimal(metrics[metric])
            else:
                load += sum((Decimal(v) for v in metrics.values()), Decimal(0))
        data["Load"] = load
        data["Ratio"] = Decimal(ratios.get(s.id, default))


def sorted_suppliers_to_dict(result: SortedSuppliers) -> dict[str, Any]:
    """The CGRateS JSON shape of the reply (ProfileID, Sorting, Count, SortedSuppliers)."""
    return {
        "ProfileID": result.profile_id,
        "Sorting": result.sorting,
        "Count": result.count,
        "SortedSuppliers": [
            {"SupplierID": s.supplier_id, "SupplierParameters": s.supplier_parameters,
             "SortingData": dict(s.sorting_data)}
            for s in result.sorted_suppliers
        ],
    }


__all__: Sequence[str] = (
    "SortedSupplier", "SortedSuppliers", "Supplier", "SupplierEngine", "SupplierProfile",
    "sorted_suppliers_to_dict",
)
