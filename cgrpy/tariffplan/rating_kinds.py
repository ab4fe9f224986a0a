"""The rating objects of CGRateS v0.10's TP API (``APIerSv1.SetTPTiming``, ``SetTPDestination``,
``SetTPRate``, ``SetTPDestinationRate``, ``SetTPRatingPlan``, ``SetTPRatingProfile``,
``SetTPSharedGroups``) as the CSV
rows they have in their tariff-plan files, and back: the same :class:`Kind` machinery as the
profiles, so a TP object set over the API is validated, stored and read exactly like the same
rows of a CSV folder.

JSON shapes are v0.10's ``utils.TP*`` without ``TPid`` (the caller's envelope): durations stay
the text the row holds (``"60s"``; a JSON number is nanoseconds), money is exact. The ID field is
``ID``; a rating profile is keyed by ``Tenant`` plus ``Category:Subject``. v0.10's
``TPRatingProfile.LoadId`` has no CSV column: it is kept in the rows' extra ``LoadId`` cell
(:data:`cgrpy.tariffplan.columns.EXTRA_COLUMNS`), one per profile (the last set wins).
"""

from __future__ import annotations

from typing import Any

from cgrpy.tariffplan.profiles import (
    ALL_RELOADABLE,
    Kind,
    ProfileError,
    Row,
    _json_number,
    _Obj,
    _row,
)

RALS = ("rals",)
# Destinations are read by RALs and by every service's FilterS (``*destinations`` rules).
DESTINATION_SERVICES = ALL_RELOADABLE


def _timing_rows(p: _Obj, _tenant: str, ident: str) -> list[Row]:
    cells = {f: p.ids(f) for f in ("Years", "Months", "MonthDays", "WeekDays")}
    return [_row("Timings", {"Tag": ident, **cells, "Time": p.text("Time")})]


def _timing_json(rows: list[Row], _tenant: str, ident: str) -> dict[str, Any]:
    r = rows[-1]
    return {"ID": ident, "Years": r["Years"], "Months": r["Months"], "MonthDays": r["MonthDays"],
            "WeekDays": r["WeekDays"], "Time": r["Time"]}


def _destination_rows(p: _Obj, _tenant: str, ident: str) -> list[Row]:
    prefixes = p.get("Prefixes")
    if not isinstance(prefixes, list) or not prefixes:
        raise ProfileError("Prefixes", "a destination needs a list of at least one prefix")
    out = []
    for i, prefix in enumerate(prefixes):
        if not isinstance(prefix, str) or not prefix:
            raise ProfileError(f"Prefixes[{i}]", "expected a non-empty text")
        out.append(_row("Destinations", {"Id": ident, "Prefix": prefix}))
    return out


def _destination_json(rows: list[Row], _tenant: str, ident: str) -> dict[str, Any]:
    return {"ID": ident, "Prefixes": [r["Prefix"] for r in rows]}


def _needs(p: _Obj, field: str, what: str) -> list[_Obj]:
    items = p.items(field)
    if not items:
        raise ProfileError(field, f"{what} needs at least one entry")
    return items


def _rate_rows(p: _Obj, _tenant: str, ident: str) -> list[Row]:
    return [_row("Rates", {
        "Id": ident, "ConnectFee": s.number("ConnectFee"), "Rate": s.number("Rate"),
        "RateUnit": s.duration("RateUnit"), "RateIncrement": s.duration("RateIncrement"),
        "GroupIntervalStart": s.duration("GroupIntervalStart"),
    }) for s in _needs(p, "RateSlots", "a rate")]


def _rate_json(rows: list[Row], _tenant: str, ident: str) -> dict[str, Any]:
    return {"ID": ident, "RateSlots": [
        {"ConnectFee": _json_number(r["ConnectFee"]), "Rate": _json_number(r["Rate"]), "RateUnit": r["RateUnit"],
         "RateIncrement": r["RateIncrement"], "GroupIntervalStart": r["GroupIntervalStart"]} for r in rows]}


def _destination_rate_rows(p: _Obj, _tenant: str, ident: str) -> list[Row]:
    return [_row("DestinationRates", {
        "Id": ident, "DestinationId": d.text("DestinationId"), "RatesTag": d.text("RateId"),
        "RoundingMethod": d.text("RoundingMethod"), "RoundingDecimals": d.number("RoundingDecimals"),
        "MaxCost": d.number("MaxCost"), "MaxCostStrategy": d.text("MaxCostStrategy"),
    }) for d in _needs(p, "DestinationRates", "a destination rate")]


def _destination_rate_json(rows: list[Row], _tenant: str, ident: str) -> dict[str, Any]:
    return {"ID": ident, "DestinationRates": [
        {"DestinationId": r["DestinationId"], "RateId": r["RatesTag"], "Rate": None,
         "RoundingMethod": r["RoundingMethod"], "RoundingDecimals": _json_number(r["RoundingDecimals"]),
         "MaxCost": _json_number(r["MaxCost"]), "MaxCostStrategy": r["MaxCostStrategy"]} for r in rows]}


def _rating_plan_rows(p: _Obj, _tenant: str, ident: str) -> list[Row]:
    return [_row("RatingPlans", {
        "Id": ident, "DestinationRatesId": b.text("DestinationRatesId"), "TimingTag": b.text("TimingId"),
        "Weight": b.number("Weight"),
    }) for b in _needs(p, "RatingPlanBindings", "a rating plan")]


def _rating_plan_json(rows: list[Row], _tenant: str, ident: str) -> dict[str, Any]:
    return {"ID": ident, "RatingPlanBindings": [
        {"DestinationRatesId": r["DestinationRatesId"], "TimingId": r["TimingTag"],
         "Weight": _json_number(r["Weight"])} for r in rows]}


def _load_id(p: _Obj) -> str:
    """The profile's LoadId: its ID is ``LoadId:Tenant:Category:Subject``, so no ``:``."""
    load_id = p.text("LoadId")
    if ":" in load_id:
        raise ProfileError("LoadId", "must not contain ':' (a rating profile ID is LoadId:Tenant:Category:Subject)")
    return load_id


def _rating_profile_rows(p: _Obj, tenant: str, ident: str) -> list[Row]:
    category, subject = ident.split(":", 1)
    load_id = _load_id(p)
    return [{**_row("RatingProfiles", {
        "Tenant": tenant, "Category": category, "Subject": subject, "ActivationTime": a.text("ActivationTime"),
        "RatingPlanId": a.text("RatingPlanId"), "RatesFallbackSubject": a.text("FallbackSubjects"),
    }), "LoadId": load_id} for a in _needs(p, "RatingPlanActivations", "a rating profile")]


def _rating_profile_json(rows: list[Row], tenant: str, ident: str) -> dict[str, Any]:
    category, subject = ident.split(":", 1)
    activations = [{"ActivationTime": r["ActivationTime"], "RatingPlanId": r["RatingPlanId"],
                    "FallbackSubjects": r["RatesFallbackSubject"]} for r in rows]
    return {"LoadId": rows[-1].get("LoadId", ""), "Tenant": tenant, "Category": category, "Subject": subject,
            "RatingPlanActivations": activations}


def _shared_group_rows(p: _Obj, _tenant: str, ident: str) -> list[Row]:
    return [_row("SharedGroups", {
        "Id": ident, "Account": g.text("Account"), "Strategy": g.text("Strategy"),
        "RatingSubject": g.text("RatingSubject"),
    }) for g in _needs(p, "SharedGroups", "a shared group")]


def _shared_group_json(rows: list[Row], _tenant: str, ident: str) -> dict[str, Any]:
    return {"ID": ident, "SharedGroups": [
        {"Account": r["Account"], "Strategy": r["Strategy"], "RatingSubject": r["RatingSubject"]}
        for r in rows]}


RATING_KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("TPTiming", "Timings", None, "Tag", _timing_rows, _timing_json, RALS),
    Kind("TPDestination", "Destinations", None, "Id", _destination_rows, _destination_json, DESTINATION_SERVICES),
    Kind("TPRate", "Rates", None, "Id", _rate_rows, _rate_json, RALS),
    Kind("TPDestinationRate", "DestinationRates", None, "Id", _destination_rate_rows, _destination_rate_json, RALS),
    Kind("TPRatingPlan", "RatingPlans", None, "Id", _rating_plan_rows, _rating_plan_json, RALS),
    Kind("TPRatingProfile", "RatingProfiles", "Tenant", "Subject", _rating_profile_rows, _rating_profile_json,
         RALS, id_cols=("Category", "Subject"), append_col="ActivationTime"),
    Kind("TPSharedGroups", "SharedGroups", None, "Id", _shared_group_rows, _shared_group_json, RALS),
)}
