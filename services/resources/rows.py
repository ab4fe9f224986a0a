"""ResourceProfiles from the ``Resources`` rows of a tariff plan (``Resources.csv`` or runtime
provisioning, which stores the same rows).

Several rows may carry one profile (CGRateS's loader): FilterIDs and ThresholdIDs accumulate, the
other columns take the last non-empty cell. The loader has validated every cell already; a bad one
here still gives a clear error naming the profile and the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

from cgrpy.errors import CGRError
from cgrpy.filters.activation import ActivationInterval
from cgrpy.filters.errors import FilterError
from cgrpy.units import UnitError, parse_duration
from services.resources.logic import ResourceProfile

_TRUE = ("true", "1", "yes")


def _ids(cell: str) -> list[str]:
    return [x.strip() for x in (cell or "").split(";") if x.strip()]


def _fail(tenant: str, rid: str, column: str, value: str, why: str) -> CGRError:
    return CGRError("SERVER_ERROR", f"resource profile {tenant}:{rid}: column {column}: {why} (got {value!r})")


def _profile(tenant: str, rid: str, rows: list[Mapping[str, str]]) -> ResourceProfile:
    filters: list[str] = []
    thresholds: list[str] = []
    last: dict[str, str] = {}
    for r in rows:
        filters += [f for f in _ids(r.get("FilterIDs", "")) if f not in filters]
        thresholds += [t for t in _ids(r.get("ThresholdIDs", "")) if t not in thresholds]
        for col, cell in r.items():
            if cell is not None and str(cell).strip() != "":
                last[col] = str(cell).strip()
    try:
        activation = ActivationInterval.parse(last.get("ActivationInterval", ""))
    except FilterError as exc:
        raise _fail(tenant, rid, "ActivationInterval", last.get("ActivationInterval", ""), str(exc)) from None
    try:
        ttl = parse_duration(last.get("TTL", "0"))
    except UnitError as exc:
        raise _fail(tenant, rid, "TTL", last.get("TTL", ""), str(exc)) from None
    try:
        limit = float(last.get("Limit", "0"))
    except ValueError:
        raise _fail(tenant, rid, "Limit", last.get("Limit", ""), "not a number") from None
    try:
        weight = Decimal(last.get("Weight", "0"))
    except InvalidOperation:
        raise _fail(tenant, rid, "Weight", last.get("Weight", ""), "not a number") from None
    return ResourceProfile(
        tenant=tenant, id=rid, filter_ids=tuple(filters), activation=activation, usage_ttl_ns=ttl,
        limit=limit, allocation_message=last.get("AllocationMessage", ""),
        blocker=last.get("Blocker", "").lower() in _TRUE, stored=last.get("Stored", "").lower() in _TRUE,
        weight=weight, threshold_ids=tuple(thresholds),
    )


def profiles_from_rows(rows: Iterable[Mapping[str, str]], default_tenant: str) -> list[ResourceProfile]:
    grouped: dict[tuple[str, str], list[Mapping[str, str]]] = {}
    for r in rows:
        rid = (r.get("Id") or r.get("ID") or "").strip()
        if not rid:
            continue
        tenant = (r.get("Tenant") or "").strip() or default_tenant
        grouped.setdefault((tenant, rid), []).append(r)
    return [_profile(t, rid, rs) for (t, rid), rs in grouped.items()]
