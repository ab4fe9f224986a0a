"""ResourceProfiles from the ``Resources`` rows of a tariff plan (``Resources.csv`` or runtime
provisioning, which stores the same rows), with the shared cell parsers of
:mod:`cgrpy.tariffplan.rows`.

Several rows may carry one profile (CGRateS's loader): FilterIDs and ThresholdIDs accumulate, the
other columns take the last non-empty cell. The loader has validated every cell already; a bad one
here still gives a clear error naming the profile and the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cgrpy.errors import CGRError
from cgrpy.tariffplan.rows import (
    ProfileError,
    group_rows,
    parse_activation,
    parse_bool,
    parse_weight,
    split_list,
)
from cgrpy.units import UnitError, parse_duration
from services.resources.logic import ResourceProfile


def _profile(tenant: str, rid: str, rows: list[dict[str, str]]) -> ResourceProfile:
    filters: list[str] = []
    thresholds: list[str] = []
    last: dict[str, str] = {}
    for r in rows:
        filters += [f for f in split_list(r.get("FilterIDs")) if f not in filters]
        thresholds += [t for t in split_list(r.get("ThresholdIDs")) if t not in thresholds]
        last.update({col: str(cell).strip() for col, cell in r.items() if cell is not None and str(cell).strip()})

    def where(col: str) -> str:
        return f"Resources {tenant}:{rid} column {col}"

    try:
        ttl = parse_duration(last.get("TTL", "0"))
    except UnitError as exc:
        raise ProfileError(f"{where('TTL')}: {exc}") from None
    try:
        limit = float(last.get("Limit", "0"))
    except ValueError:
        raise ProfileError(f"{where('Limit')}: not a number: {last.get('Limit')!r}") from None
    return ResourceProfile(
        tenant=tenant, id=rid, filter_ids=tuple(filters),
        activation=parse_activation(last.get("ActivationInterval"), where=where("ActivationInterval")),
        usage_ttl_ns=ttl, limit=limit, allocation_message=last.get("AllocationMessage", ""),
        blocker=parse_bool(last.get("Blocker"), where=where("Blocker")),
        stored=parse_bool(last.get("Stored"), where=where("Stored")),
        weight=parse_weight(last.get("Weight"), where=where("Weight")), threshold_ids=tuple(thresholds),
    )


def profiles_from_rows(rows: Iterable[Mapping[str, str]], default_tenant: str) -> list[ResourceProfile]:
    """Every profile of the rows; a bad cell raises SERVER_ERROR naming profile and column."""
    filled = [{**r, "Tenant": (r.get("Tenant") or "").strip() or default_tenant} for r in rows]
    try:
        return [_profile(t, rid, rs) for (t, rid), rs in group_rows(filled, "Id").items()]
    except ProfileError as exc:
        raise CGRError("SERVER_ERROR", str(exc)) from None
