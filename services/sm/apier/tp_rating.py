"""CGRateS v0.10's API for rating data at runtime, over JSON-RPC: the TP API
(``APIerSv1.SetTP<X>``/``GetTP<X>``/``RemoveTP<X>``/``GetTP<X>Ids`` for Timing, Destination, Rate,
DestinationRate, RatingPlan and RatingProfile), the loads from the StorDB
(``LoadTariffPlanFromStorDb``, ``LoadRatingProfile``, ``LoadRatingPlan``, ``LoadDestination``)
and the live rating profiles (``SetRatingProfile``, ``GetRatingProfile``, ``RemoveRatingProfile``).

Every call goes to the TariffPlanService of the RALs process: a TP object is stored as the CSV
rows it has in its file in the tp_* tables of its TPid, validated like `cgr load`; a load merges a
TPid into the configured TPID (the live plan) and reloads. This module only maps shapes.

Differences from CGRateS v0.10: a TP object is validated against the rest of its TPid when it is
set (a rate refusing ``Rate: abc``, a destination rate naming a rate the TPid lacks), answering
``INVALID_ARGUMENT:<problems>`` naming the field, where v0.10 stores anything and fails at load;
so a TPid is built in dependency order (destinations and rates before destination rates...) and
taken apart in reverse. A TP object set in the configured TPID is live at once (RALs reloads),
as every provisioning call is. ``TPRatingProfile.LoadId`` is stored with the profile (one per
Tenant:Category:Subject, where v0.10 keeps a profile per LoadId); a folder's profiles get the
load's (``CSVLOAD``), as v0.10's import gives them.
"""

from __future__ import annotations

from typing import Any

from cgrates.v1 import tariffplan_pb2
from cgrpy.errors import CGRError
from cgrpy.event import loads_exact
from cgrpy.gotime import go_time
from cgrpy.units import UnitError, parse_time
from services.sm.apier.args import Args
from services.sm.apier.core import METHODS, Context, Handler, method
from services.sm.apier.provisioning import _call, _obj

# API name -> (TariffPlanService kind, the fields v0.10 requires besides TPid and ID)
_TP_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Timing": ("TPTiming", ("Years", "Months", "MonthDays", "WeekDays", "Time")),
    "Destination": ("TPDestination", ("Prefixes",)),
    "Rate": ("TPRate", ("RateSlots",)),
    "DestinationRate": ("TPDestinationRate", ("DestinationRates",)),
    "RatingPlan": ("TPRatingPlan", ("RatingPlanBindings",)),
}
_PROFILE = "TPRatingProfile"


def _page(a: Args, ids: list[str]) -> list[str]:
    """utils.Paginator {Offset, Limit}; an empty page is NOT_FOUND as in v0.10."""
    offset, limit = a.int("Offset") or 0, a.int("Limit") or 0
    ids = ids[offset:offset + limit] if limit else ids[offset:]
    if not ids:
        raise CGRError("NOT_FOUND")
    return ids


def _request(kind: str, tpid: str, obj: dict[str, Any], **kw: Any) -> tariffplan_pb2.ProfileRequest:
    return tariffplan_pb2.ProfileRequest(kind=kind, tpid=tpid, object=_obj(obj), **kw)


async def _get(ctx: Context, kind: str, tpid: str, key: dict[str, Any]) -> dict[str, Any]:
    return loads_exact((await _call(ctx, "GetProfile", _request(kind, tpid, key))).json)


def _tp_methods(name: str, kind: str, required: tuple[str, ...]) -> None:
    async def set_tp(ctx: Context, a: Args) -> Any:
        a.require("TPid", "ID", *required)
        obj = {k: v for k, v in a.raw.items() if k.lower() != "tpid"}
        await _call(ctx, "SetProfile", _request(kind, a.str("TPid"), obj))
        return "OK"

    async def get_tp(ctx: Context, a: Args) -> Any:
        a.require("TPid", "ID")
        return {"TPid": a.str("TPid"), **await _get(ctx, kind, a.str("TPid"), {"ID": a.str("ID")})}

    async def remove_tp(ctx: Context, a: Args) -> Any:
        a.require("TPid", "ID")
        await _call(ctx, "RemoveProfile", _request(kind, a.str("TPid"), {"ID": a.str("ID")}))
        return "OK"

    async def tp_ids(ctx: Context, a: Args) -> Any:
        a.require("TPid")
        req = tariffplan_pb2.ProfileIDsRequest(kind=kind, tpid=a.str("TPid"))
        return _page(a, list((await _call(ctx, "GetProfileIDs", req)).ids))

    handlers: dict[str, Handler] = {
        f"SetTP{name}": set_tp, f"GetTP{name}": get_tp, f"RemoveTP{name}": remove_tp, f"RemTP{name}": remove_tp,
        f"GetTP{name}Ids": tp_ids, f"GetTP{name}IDs": tp_ids,
    }
    for n, fn in handlers.items():
        METHODS[f"APIerSv1.{n}"] = fn


for _name, (_kind, _required) in _TP_KINDS.items():
    _tp_methods(_name, _kind, _required)


# --- TP rating profiles: keyed [LoadId:]Tenant:Category:Subject ------------------------------


def _profile_id(a: Args) -> tuple[str, dict[str, str]]:
    """(LoadId, {Tenant, Category, Subject}) of AttrGetTPRatingProfile's RatingProfileID."""
    a.require("TPid", "RatingProfileID")
    parts = a.str("RatingProfileID").split(":")
    if len(parts) not in (3, 4) or not all(parts[-3:]):
        raise CGRError("SERVER_ERROR", "RatingProfileID: expected [LoadId:]Tenant:Category:Subject")
    tenant, category, subject = parts[-3:]
    return (parts[0] if len(parts) == 4 else ""), {"Tenant": tenant, "Category": category, "Subject": subject}


@method("APIerSv1.SetTPRatingProfile")
async def set_tp_rating_profile(ctx: Context, a: Args) -> Any:
    """utils.TPRatingProfile {TPid, LoadId, Tenant, Category, Subject, RatingPlanActivations:
    [{ActivationTime, RatingPlanId, FallbackSubjects}]}; the LoadId is stored with the profile
    (one per Tenant:Category:Subject: setting it again replaces the profile and its LoadId)."""
    a.require("TPid", "Category", "Subject", "RatingPlanActivations")
    obj = {k: v for k, v in a.raw.items() if k.lower() != "tpid"}
    obj["Tenant"] = a.str("Tenant") or ctx.tenant
    await _call(ctx, "SetProfile", _request(_PROFILE, a.str("TPid"), obj))
    return "OK"


async def _stored_profile(ctx: Context, a: Args) -> tuple[dict[str, str], dict[str, Any]]:
    """(key, profile) of the RatingProfileID asked; NOT_FOUND when a LoadId is named and the
    profile's is another (v0.10 filters on every part of the ID that is not empty)."""
    load_id, key = _profile_id(a)
    prof = await _get(ctx, _PROFILE, a.str("TPid"), key)
    if load_id and prof.get("LoadId", "") != load_id:
        raise CGRError("NOT_FOUND")
    return key, prof


@method("APIerSv1.GetTPRatingProfile")
async def get_tp_rating_profile(ctx: Context, a: Args) -> Any:
    _, prof = await _stored_profile(ctx, a)
    return {"TPid": a.str("TPid"), **prof}


@method("APIerSv1.RemoveTPRatingProfile", "APIerSv1.RemTPRatingProfile")
async def remove_tp_rating_profile(ctx: Context, a: Args) -> Any:
    key, _ = await _stored_profile(ctx, a)
    await _call(ctx, "RemoveProfile", _request(_PROFILE, a.str("TPid"), key))
    return "OK"


async def _tp_profile_rows(ctx: Context, a: Args) -> list[dict[str, Any]]:
    """The TPid's rating-profile rows (with their LoadId), narrowed by whichever of Tenant,
    Category, Subject is given; none when the TPid has no rating profile."""
    req = tariffplan_pb2.TPRowsRequest(tpid=a.str("TPid"), file="RatingProfiles")
    try:
        rows = [loads_exact(r.json) for r in (await _call(ctx, "GetTPRows", req)).rows]
    except CGRError as exc:
        if exc.word != "NOT_FOUND":
            raise
        return []
    want = (a.str("Tenant"), a.str("Category"), a.str("Subject"))
    return [r for r in rows
            if all(not w or w == r[f] for w, f in zip(want, ("Tenant", "Category", "Subject"), strict=True))]


@method("APIerSv1.GetTPRatingProfileIds", "APIerSv1.GetTPRatingProfileIDs")
async def get_tp_rating_profile_ids(ctx: Context, a: Args) -> Any:
    """AttrGetTPRatingProfileIds {TPid, Offset, Limit} -> ``LoadId:Tenant:Category:Subject`` of
    each profile, as v0.10's distinct (loadid, tenant, category, subject)."""
    a.require("TPid")
    rows = await _tp_profile_rows(ctx, Args({"TPid": a.str("TPid")}))
    ids = dict.fromkeys(f"{r.get('LoadId', '')}:{r['Tenant']}:{r['Category']}:{r['Subject']}" for r in rows)
    return _page(a, list(ids))


@method("APIerSv1.GetTPRatingProfilesByLoadID", "APIerSv1.GetTPRatingProfilesByLoadId")
async def get_tp_rating_profiles_by_load_id(ctx: Context, a: Args) -> Any:
    """utils.TPRatingProfile {TPid, LoadId[, Tenant, Category, Subject]} -> [utils.TPRatingProfile]
    of that LoadId. v0.10 makes Tenant, Category and Subject mandatory once Subject is given."""
    a.require("TPid", "LoadId", *(("Tenant", "Category", "Subject") if a.str("Subject") else ()))
    rows = [r for r in await _tp_profile_rows(ctx, a) if r.get("LoadId", "") == a.str("LoadId")]
    keys = dict.fromkeys((r["Tenant"], r["Category"], r["Subject"]) for r in rows)
    if not keys:
        raise CGRError("NOT_FOUND")
    return [{"TPid": a.str("TPid"),
             **await _get(ctx, _PROFILE, a.str("TPid"), {"Tenant": t, "Category": c, "Subject": s})}
            for t, c, s in keys]


@method("APIerSv1.GetTPRatingProfileLoadIds", "APIerSv1.GetTPRatingProfileLoadIDs")
async def get_tp_rating_profile_load_ids(ctx: Context, a: Args) -> Any:
    """utils.AttrTPRatingProfileIds {TPid, Tenant, Category, Subject} -> the distinct LoadIds of
    the matching profiles; NOT_FOUND when no profile matches."""
    a.require("TPid")
    load_ids = list(dict.fromkeys(r.get("LoadId", "") for r in await _tp_profile_rows(ctx, a)))
    if not load_ids:
        raise CGRError("NOT_FOUND")
    return load_ids


# --- loads from the StorDB into the live plan -------------------------------------------------


async def _load(ctx: Context, a: Args, kind: str = "", ident: str = "") -> str:
    req = tariffplan_pb2.LoadTariffPlanRequest(
        tpid=a.str("TPid"), flush=bool(a.bool("FlushDb")), dry_run=bool(a.bool("DryRun") or a.bool("Validate")),
        kind=kind, id=ident)
    await _call(ctx, "LoadTariffPlan", req)
    return "OK"


@method("APIerSv1.LoadTariffPlanFromStorDb")
async def load_tariff_plan_from_stordb(ctx: Context, a: Args) -> Any:
    """AttrLoadTpFromStorDb {TPid, FlushDb, DryRun, Validate}: every object of the TPid replaces
    the live one of the same key (FlushDb: the live plan becomes the TPid), validated as a whole
    like `cgr load`; then every service reloads. Nothing changes when it is refused."""
    a.require("TPid")
    return await _load(ctx, a)


@method("APIerSv1.LoadRatingProfile")
async def load_rating_profile(ctx: Context, a: Args) -> Any:
    """AttrLoadRatingProfile {TPid, RatingProfileID}: the profile and the rating plans it
    activates (with their destination rates, rates, destinations and timings in the TPid)."""
    _, key = _profile_id(a)
    return await _load(ctx, a, "RatingProfile", f"{key['Tenant']}:{key['Category']}:{key['Subject']}")


@method("APIerSv1.LoadRatingPlan")
async def load_rating_plan(ctx: Context, a: Args) -> Any:
    """AttrLoadRatingPlan {TPid, RatingPlanId}."""
    a.require("TPid", "RatingPlanId")
    return await _load(ctx, a, "RatingPlan", a.str("RatingPlanId"))


@method("APIerSv1.LoadDestination")
async def load_destination(ctx: Context, a: Args) -> Any:
    """AttrLoadDestination {TPid, ID}."""
    a.require("TPid", "ID")
    return await _load(ctx, a, "Destination", a.str("ID"))


# --- live rating profiles (the configured TPID) -----------------------------------------------


def _live_key(ctx: Context, a: Args) -> dict[str, str]:
    a.require("Category", "Subject")
    return {"Tenant": a.str("Tenant") or ctx.tenant, "Category": a.str("Category"), "Subject": a.str("Subject")}


async def _activations(ctx: Context, a: Args) -> list[dict[str, str]]:
    """AttrSetRatingProfile's RatingPlanActivations, each plan known to the live plan (v0.10's
    ``NOT_FOUND:RatingPlanId:<id>`` otherwise)."""
    acts = a.get("RatingPlanActivations")
    if not isinstance(acts, list):
        raise CGRError("SERVER_ERROR", "RatingPlanActivations: expected a list")
    out = []
    for i, raw in enumerate(acts):
        if not isinstance(raw, dict):
            raise CGRError("SERVER_ERROR", f"RatingPlanActivations[{i}]: expected a JSON object")
        act = Args(raw)
        act.require("ActivationTime", "RatingPlanId")
        plan = act.str("RatingPlanId")
        try:
            await _call(ctx, "GetTPRows", tariffplan_pb2.TPRowsRequest(tpid=ctx.settings.tpid, file="RatingPlans",
                                                                       id=plan))
        except CGRError as exc:
            raise CGRError("NOT_FOUND", f"RatingPlanId:{plan}") if exc.word == "NOT_FOUND" else exc from None
        out.append({"ActivationTime": act.str("ActivationTime"), "RatingPlanId": plan,
                    "FallbackSubjects": act.str("FallbackSubjects")})
    return out


@method("APIerSv1.SetRatingProfile")
async def set_rating_profile(ctx: Context, a: Args) -> Any:
    """AttrSetRatingProfile {Tenant, Category, Subject, Overwrite, RatingPlanActivations:
    [{ActivationTime, RatingPlanId, FallbackSubjects}]} on the live plan; RALs reloads. Without
    Overwrite the activations are added to the profile's (one at the same ActivationTime is
    replaced: two activations at one time are refused by the loader)."""
    key = _live_key(ctx, a)
    a.require("RatingPlanActivations")
    obj = {**key, "RatingPlanActivations": await _activations(ctx, a)}
    await _call(ctx, "SetProfile", _request(_PROFILE, ctx.settings.tpid, obj, append=not a.bool("Overwrite")))
    return "OK"


def _go_time_text(cell: str) -> str:
    try:
        return go_time(parse_time(cell))
    except (UnitError, ValueError):
        return cell


@method("APIerSv1.GetRatingProfile")
async def get_rating_profile(ctx: Context, a: Args) -> Any:
    """AttrGetRatingProfile {Tenant, Category, Subject} -> engine.RatingProfile {Id,
    RatingPlanActivations: [{ActivationTime, RatingPlanId, FallbackKeys}]}."""
    key = _live_key(ctx, a)
    prof = await _get(ctx, _PROFILE, ctx.settings.tpid, key)
    prefix = f"*out:{key['Tenant']}:{key['Category']}"
    return {"Id": f"{prefix}:{key['Subject']}", "RatingPlanActivations": [
        {"ActivationTime": _go_time_text(act["ActivationTime"]), "RatingPlanId": act["RatingPlanId"],
         "FallbackKeys": [f"{prefix}:{s}" for s in act["FallbackSubjects"].split(";") if s] or None}
        for act in prof["RatingPlanActivations"]]}


@method("APIerSv1.RemoveRatingProfile")
async def remove_rating_profile(ctx: Context, a: Args) -> Any:
    """AttrRemoveRatingProfile {Tenant, Category, Subject}: NOT_FOUND when there is none (v0.10
    also removes every profile of a tenant or category named without Subject: refused here)."""
    await _call(ctx, "RemoveProfile", _request(_PROFILE, ctx.settings.tpid, _live_key(ctx, a)))
    return "OK"
