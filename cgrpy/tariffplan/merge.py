"""Loading a tariff plan of the StorDB (a TPid) into the live one (the configured TPID), the way
CGRateS v0.10's ``APIerSv1.LoadTariffPlanFromStorDb``, ``LoadRatingProfile``, ``LoadRatingPlan``
and ``LoadDestination`` write a TPid into the DataDB: every object the TPid holds replaces the live
object of the same key, objects it does not hold stay (unless flushed). The caller validates the
result with the loader's own validation before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping

from cgrpy.tariffplan.columns import FILE_COLUMNS, TariffPlanRows
from cgrpy.tariffplan.validate import Problem

# The columns naming the object a row belongs to, per file (the DataDB key in CGRateS).
OBJECT_KEY: dict[str, tuple[str, ...]] = {
    "Timings": ("Tag",), "Destinations": ("Id",), "Rates": ("Id",), "DestinationRates": ("Id",),
    "RatingPlans": ("Id",), "RatingProfiles": ("Tenant", "Category", "Subject"), "SharedGroups": ("Id",),
    "Actions": ("ActionsId",), "ActionPlans": ("Id",), "ActionTriggers": ("Tag",),
    "AccountActions": ("Tenant", "Account"), "Resources": ("Tenant", "Id"), "Stats": ("Tenant", "Id"),
    "Thresholds": ("Tenant", "Id"), "Filters": ("Tenant", "ID"), "Suppliers": ("Tenant", "ID"),
    "Attributes": ("Tenant", "ID"), "Chargers": ("Tenant", "ID"), "DispatcherProfiles": ("Tenant", "ID"),
    "DispatcherHosts": ("Tenant", "ID"),
}
assert set(OBJECT_KEY) == set(FILE_COLUMNS)

# What LoadRatingProfile / LoadRatingPlan / LoadDestination name, and how the ID is spelled.
SELECTABLE = ("RatingProfile", "RatingPlan", "Destination")


def object_key(file: str, row: Mapping[str, str]) -> str:
    return ":".join(row.get(c, "") for c in OBJECT_KEY[file])


def merge(live: TariffPlanRows, src: TariffPlanRows) -> TariffPlanRows:
    """``live`` with every object of ``src`` in place of the live object of the same key."""
    out = {f: list(live.get(f, [])) for f in FILE_COLUMNS}
    for file, rows in src.items():
        if not rows:
            continue
        replaced = {object_key(file, r) for r in rows}
        out[file] = [r for r in out[file] if object_key(file, r) not in replaced] + [dict(r) for r in rows]
    return out


def _rows(src: TariffPlanRows, file: str, keys: set[str]) -> list[dict[str, str]]:
    return [r for r in src.get(file, []) if object_key(file, r) in keys]


def _plan_closure(src: TariffPlanRows, plan_ids: set[str], out: TariffPlanRows) -> None:
    """A rating plan with its destination rates, rates, destinations and timings, as far as
    ``src`` holds them (v0.10 also takes destinations and timings already live)."""
    plans = _rows(src, "RatingPlans", plan_ids)
    drs = _rows(src, "DestinationRates", {r["DestinationRatesId"] for r in plans})
    out["RatingPlans"] += plans
    out["DestinationRates"] += drs
    out["Timings"] += _rows(src, "Timings", {r["TimingTag"] for r in plans})
    out["Rates"] += _rows(src, "Rates", {r["RatesTag"] for r in drs})
    out["Destinations"] += _rows(src, "Destinations", {r["DestinationId"] for r in drs})


def select(src: TariffPlanRows, kind: str, ident: str) -> TariffPlanRows:
    """The part of ``src`` one object needs: a rating profile (``Tenant:Category:Subject``) with
    the rating plans it activates, a rating plan with what it binds, or one destination.
    Raises LookupError when ``src`` does not hold that object."""
    out: TariffPlanRows = {f: [] for f in FILE_COLUMNS}
    if kind == "Destination":
        out["Destinations"] = _rows(src, "Destinations", {ident})
        found = out["Destinations"]
    elif kind == "RatingPlan":
        _plan_closure(src, {ident}, out)
        found = out["RatingPlans"]
    elif kind == "RatingProfile":
        out["RatingProfiles"] = _rows(src, "RatingProfiles", {ident})
        _plan_closure(src, {r["RatingPlanId"] for r in out["RatingProfiles"]}, out)
        found = out["RatingProfiles"]
    else:
        raise ValueError(f"kind: expected one of {', '.join(SELECTABLE)}, got {kind!r}")
    if not found:
        raise LookupError(f"{kind} {ident}")
    return out


def describe(problem: Problem, plan: TariffPlanRows) -> str:
    """A validation problem of a plan held in the StorDB, named by its object rather than by a
    CSV line no file has: ``Rates RT_X: column Rate: not a number (got "abc")``."""
    file = problem.file.removesuffix(".csv")
    rows = plan.get(file)
    if problem.line is None or not rows or not 0 < problem.line <= len(rows):
        return str(problem)
    col = f" column {problem.column}:" if problem.column else ""
    got = "" if problem.value is None else f" (got {problem.value!r})"
    return f"{file} {object_key(file, rows[problem.line - 1])}:{col} {problem.message}{got}"
