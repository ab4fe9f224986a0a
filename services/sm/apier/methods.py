"""CGRateS method name -> handler. Each handler reads the CGRateS argument, calls the gRPC
service(s) that own the data, and returns the CGRateS v0.10 reply shape. No business logic."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import platform
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from cgrates.v1 import (
    attributes_pb2,
    cdre_pb2,
    chargers_pb2,
    common_pb2,
    rals_pb2,
    stats_pb2,
    suppliers_pb2,
    thresholds_pb2,
)
from cgrpy.config import Settings
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent, loads_exact
from cgrpy.security import PathRefused, export_roots, folder_under_roots, path_under_roots, roots_of
from cgrpy.units import round_money, to_unix_nano
from cgrpy.wire import event_to_pb
from services.sm.apier import shapes
from services.sm.apier.args import Args, cgr_event
from services.sm.apier.backends import Backends
from services.sm.opensips import messages as m
from services.sm.sessions.core import SessionManager

Handler = Callable[["Context", Args], Awaitable[Any]]


@dataclass
class Context:
    settings: Settings
    backends: Backends
    sessions: SessionManager | None = None
    engine: Callable[[], Engine] | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def tenant(self) -> str:
        return self.settings.default_tenant

    def event(self, a: Args) -> common_pb2.Event:
        return event_to_pb(cgr_event(a, self.tenant))


METHODS: dict[str, Handler] = {}


def method(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for n in names:
            METHODS[n] = fn
        return fn
    return register


# --- ping / status ------------------------------------------------------------------------

# *Sv1.Ping -> the service whose health decides the answer (None: answered by SM itself).
PINGS: dict[str, str | None] = {
    "CoreSv1.Ping": None, "APIerSv1.Ping": None, "APIerSv2.Ping": None,
    "SessionSv1.Ping": None, "RALsV1.Ping": "rals", "ResponderSv1.Ping": "rals",
    "AttributeSv1.Ping": "attributes", "ChargerSv1.Ping": "chargers", "CDRsV1.Ping": "cdre",
    "CDRsV2.Ping": "cdre", "SupplierSv1.Ping": "suppliers", "StatSv1.Ping": "stats",
    "ThresholdSv1.Ping": "thresholds",
}


def _ping(service: str | None) -> Handler:
    async def ping(ctx: Context, a: Args) -> Any:
        if service is not None:
            status = await ctx.backends.health(service)
            if status != "SERVING":
                raise CGRError("SERVER_ERROR", f"{service} {status}")
        return "Pong"
    return ping


for _name, _svc in PINGS.items():
    METHODS[_name] = _ping(_svc)


def _size(nbytes: int) -> str:
    """CGRateS ``utils.SizeFmt``: 1024-based with one decimal, e.g. ``12.3MiB``."""
    value = Decimal(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value.quantize(Decimal('0.1'))}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


@method("CoreSv1.Status")
async def core_status(ctx: Context, a: Args) -> Any:
    """CGRateS's keys (NodeID, MemoryUsage, ActiveGoroutines, Footprint, Version, RunningSince,
    GoVersion) with Python's equivalents, plus ``Services``: the gRPC health of each service."""
    names = list(shapes_services())
    states = await asyncio.gather(*(ctx.backends.health(n) for n in names))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "NodeID": platform.node(),
        "MemoryUsage": _size(rss),
        "ActiveGoroutines": len(asyncio.all_tasks()),
        "Footprint": _size(rss),
        "Version": "cgrpy (CGRateS v0.10 API)",
        "RunningSince": shapes.go_time(ctx.started, nano=False),
        "GoVersion": f"python{sys.version.split()[0]}",
        "PID": os.getpid(),
        "Services": dict(zip(names, states, strict=True)),
    }


def shapes_services() -> tuple[str, ...]:
    return ("attributes", "chargers", "rals", "suppliers", "stats", "thresholds", "cdre")


# --- rating and accounts ------------------------------------------------------------------


@method("APIerSv1.GetCost")
async def get_cost(ctx: Context, a: Args) -> Any:
    """AttrGetCost -> EventCost (its Cost is the EventCost one, rating-and-accounts §2.6).
    Difference: an empty AnswerTime means now (CGRateS rates at Go's zero time, year 1)."""
    usage = a.duration("Usage")
    start = a.time("AnswerTime") or datetime.now(UTC)
    subject = a.str("Subject")
    cd = rals_pb2.CallDescriptor(
        tenant=a.str("Tenant") or ctx.tenant, category=a.str("Category") or "call",
        subject=subject, account=subject, destination=a.str("Destination"), tor="*voice",
        time_start_unix_ns=to_unix_nano(start), usage_ns=usage, duration_index_ns=usage,
    )
    try:
        res = await ctx.backends.call("rals", "GetCost", cd)
    except CGRError as exc:
        if exc.word in ("SERVER_ERROR", "NOT_IMPLEMENTED"):
            raise
        # utils.NewErrServerError(err) around RALs's bare word, as CGRateS prints it
        raise CGRError("SERVER_ERROR", exc.word) from None
    return loads_exact(res.cost_details_json)


async def _account(ctx: Context, tenant: str, account: str) -> Any:
    try:
        acc = await ctx.backends.call("rals", "GetAccount", rals_pb2.AccountRequest(tenant=tenant, account=account))
    except CGRError as exc:
        if exc.word in ("ACCOUNT_NOT_FOUND", "NOT_FOUND"):  # CGRateS: the bare utils.ErrNotFound
            raise CGRError("NOT_FOUND") from None
        raise
    return loads_exact(acc.json)


@method("APIerSv1.GetAccount", "APIerSv2.GetAccount")
async def get_account(ctx: Context, a: Args) -> Any:
    """The account as APIerSv2.GetAccount shows it. Difference: APIerSv1.GetAccount answers with
    the same (v2) shape, not CGRateS's legacy ``AsOldStructure`` one."""
    a.require("Account")
    return await _account(ctx, a.str("Tenant") or ctx.tenant, a.str("Account"))


def _set_account_request(a: Args, tenant: str, allow_negative: bool | None, disabled: bool | None) -> rals_pb2.SetAccountRequest:
    req = rals_pb2.SetAccountRequest(tenant=tenant, account=a.str("Account"))
    if allow_negative is not None:
        req.allow_negative = allow_negative
    if disabled is not None:
        req.disabled = disabled
    return req


@method("APIerSv1.SetAccount")
async def set_account_v1(ctx: Context, a: Args) -> Any:
    a.require("Account")
    for name in ("ActionPlanId", "ActionPlanID", "ActionTriggersId", "ActionTriggersID"):
        if a.str(name):  # RALs attaches plans/triggers only from AccountActions.csv
            raise CGRError("NOT_IMPLEMENTED", name)
    req = _set_account_request(a, a.str("Tenant") or ctx.tenant, a.bool("AllowNegative"), a.bool("Disabled"))
    await ctx.backends.call("rals", "SetAccount", req)
    return "OK"


@method("APIerSv2.SetAccount")
async def set_account_v2(ctx: Context, a: Args) -> Any:
    a.require("Account")
    for name in ("ActionPlanIDs", "ActionTriggerIDs"):
        if a.strs(name):
            raise CGRError("NOT_IMPLEMENTED", name)
    opts = a.sub("ExtraOptions")
    req = _set_account_request(a, a.str("Tenant") or ctx.tenant, opts.bool("AllowNegative"), opts.bool("Disabled"))
    await ctx.backends.call("rals", "SetAccount", req)
    return "OK"


@method("APIerSv1.RemoveAccount")
async def remove_account(ctx: Context, a: Args) -> Any:
    a.require("Account")
    req = rals_pb2.AccountRequest(tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"))
    await ctx.backends.call("rals", "RemoveAccount", req)
    return "OK"


class _Balance:
    """A balance description: fields of ``Balance`` (map form) or flat on the args (v0.10's
    older AttrSetBalance: BalanceID, BalanceUUID, Weight, ...)."""

    def __init__(self, a: Args) -> None:
        self.a = a
        self.b = a.sub("Balance") if isinstance(a.get("Balance"), dict) else Args({})

    def get(self, *names: str) -> Any:
        for n in names:
            if self.b.has(n):
                return self.b.get(n)
        for n in names:
            if self.a.has(n):
                return self.a.get(n)
        return None

    def str(self, *names: str) -> str:
        v = self.get(*names)
        return "" if v is None else str(v)

    def strs(self, *names: str) -> list[str]:
        v = self.get(*names)
        if v in (None, ""):
            return []
        if isinstance(v, str):
            return [x for x in v.split(";") if x]
        if isinstance(v, dict):
            return [k if on else f"!{k}" for k, on in v.items()]
        return [str(x) for x in v]


def _value(a: Args) -> Decimal:
    v = a.decimal("Value")
    return abs(v) if v is not None else Decimal(0)  # CGRateS uses math.Abs(Value)


@method("APIerSv1.SetBalance")
async def set_balance(ctx: Context, a: Args) -> Any:
    a.require("Account", "BalanceType")
    bal = _Balance(a)
    bid, uuid = bal.str("ID", "BalanceID"), bal.str("Uuid", "UUID", "BalanceUUID")
    if not bid and not uuid:
        raise CGRError("MANDATORY_IE_MISSING", "[BalanceID or BalanceUUID]")
    for name in ("SharedGroups", "TimingIDs", "TimingIds"):
        if bal.strs(name):
            raise CGRError("NOT_IMPLEMENTED", f"Balance {name}")
    if a.bool("Cdrlog"):
        raise CGRError("NOT_IMPLEMENTED", "Cdrlog")
    pb = rals_pb2.Balance(id=bid, uuid=uuid, type=a.str("BalanceType"))
    weight = bal.get("Weight")
    if weight is not None:
        pb.weight = format(Args({"w": weight}).decimal("w") or Decimal(0), "f")
    expiry = bal.get("ExpiryTime", "ExpirationDate")
    if expiry not in (None, "", "*unlimited"):
        pb.expiry_unix_ns = to_unix_nano(Args({"ExpiryTime": expiry}).time("ExpiryTime"))
    pb.destination_ids.extend(bal.strs("DestinationIDs", "DestinationIds"))
    pb.categories.extend(bal.strs("Categories"))
    pb.rating_subject = bal.str("RatingSubject")
    pb.blocker = bool(bal.get("Blocker"))
    pb.disabled = bool(bal.get("Disabled"))
    req = rals_pb2.SetBalanceRequest(
        tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"),
        balance_type=a.str("BalanceType"), value=format(_value(a), "f"), balance=pb,
    )
    await ctx.backends.call("rals", "SetBalance", req)
    return "OK"


async def _add(ctx: Context, a: Args, sign: int) -> Any:
    a.require("Account", "BalanceType", "Value")
    bal = _Balance(a)
    extra = [k for k in bal.b.raw if k.lower() not in ("id", "balanceid")]
    if extra:  # RALs's AddBalance matches by ID only
        raise CGRError("NOT_IMPLEMENTED", f"Balance {', '.join(sorted(extra))}")
    if a.bool("Cdrlog"):
        raise CGRError("NOT_IMPLEMENTED", "Cdrlog")
    req = rals_pb2.SetBalanceRequest(
        tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"),
        balance_type=a.str("BalanceType"), value=format(sign * _value(a), "f"),
        balance=rals_pb2.Balance(id=bal.str("ID", "BalanceID")), overwrite=bool(a.bool("Overwrite")),
    )
    await ctx.backends.call("rals", "AddBalance", req)
    return "OK"


@method("APIerSv1.AddBalance")
async def add_balance(ctx: Context, a: Args) -> Any:
    """*topup (``Overwrite``: *topup_reset). Difference: without ``Balance.ID`` the ``*default``
    balance is topped up, where CGRateS tops up every balance of that type."""
    return await _add(ctx, a, 1)


@method("APIerSv1.DebitBalance")
async def debit_balance(ctx: Context, a: Args) -> Any:
    """*debit: AddBalance with the negated value (``Overwrite``: *debit_reset)."""
    return await _add(ctx, a, -1)


@method("APIerSv1.ExecuteAction")
async def execute_action(ctx: Context, a: Args) -> Any:
    a.require("ActionsId")
    req = rals_pb2.ExecuteActionsRequest(
        tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"), actions_id=a.str("ActionsId"),
    )
    await ctx.backends.call("rals", "ExecuteActions", req)
    return "OK"


@method("APIerSv1.LoadTariffPlanFromFolder")
async def load_tariff_plan(ctx: Context, a: Args) -> Any:
    """Validate + store the folder as the configured TPID in the StorDB, then ReloadCache on
    every service (what `cgr load` does). ``DryRun``/``Validate`` only validate."""
    from cgrpy.runtime.reload import reload_all
    from cgrpy.tariffplan.loader import LoadAbortedError, load_folder

    a.require("FolderPath")
    try:  # only under the configured roots, symlinks and .. resolved: nothing else is read
        folder = str(folder_under_roots(a.str("FolderPath"), roots_of(ctx.settings.api_tariffplan_roots),
                                        "FolderPath"))
    except PathRefused as exc:
        raise CGRError("SERVER_ERROR", str(exc)) from None
    if not os.path.isdir(folder):
        raise CGRError("SERVER_ERROR", f"FolderPath: {a.str('FolderPath')} is not a folder")
    if ctx.engine is None:
        raise CGRError("NOT_IMPLEMENTED", "no StorDB")
    engine = await asyncio.to_thread(ctx.engine)
    dry = bool(a.bool("DryRun") or a.bool("Validate"))
    try:
        result = await asyncio.to_thread(load_folder, folder, engine=engine, tpid=ctx.settings.tpid, dry_run=dry)
    except LoadAbortedError as exc:
        raise CGRError("SERVER_ERROR", str(exc)) from None
    if not result.ok:
        # where and what, never the cell's text: an error must not hand a file's content out
        problems = "; ".join(str(dataclasses.replace(p, value=None)) for p in result.problems[:5])
        raise CGRError("SERVER_ERROR", f"{len(result.problems)} problem(s), nothing loaded: {problems}")
    if dry:
        return "OK"
    outcome = await asyncio.to_thread(reload_all, ctx.settings, ctx.settings.tpid)
    failed = {k: v for k, v in outcome.items() if v not in ("reloaded", "not running")}
    if failed:
        raise CGRError("SERVER_ERROR", "reload failed: " + ", ".join(f"{k}: {v}" for k, v in failed.items()))
    return "OK"


# --- AttributeS / ChargerS ------------------------------------------------------------------


def _attr_request(ctx: Context, a: Args) -> attributes_pb2.AttributesProcessEventRequest:
    return attributes_pb2.AttributesProcessEventRequest(
        event=ctx.event(a), context=a.str("Context"), attribute_ids=a.strs("AttributeIDs"),
        process_runs=a.int("ProcessRuns") or 0,
    )


@method("AttributeSv1.ProcessEvent")
async def attributes_process(ctx: Context, a: Args) -> Any:
    res = await ctx.backends.call("attributes", "ProcessEvent", _attr_request(ctx, a))
    return {
        "MatchedProfiles": list(res.matched_profiles),
        "AlteredFields": list(res.altered_fields),
        "CGREvent": shapes.pb_event_json(res.event, ctx.tenant),
    }


@method("AttributeSv1.GetAttributeForEvent")
async def attributes_for_event(ctx: Context, a: Args) -> Any:
    return shapes.json_object(await ctx.backends.call("attributes", "GetAttributeForEvent", _attr_request(ctx, a)))


@method("ChargerSv1.ProcessEvent")
async def chargers_process(ctx: Context, a: Args) -> Any:
    res = await ctx.backends.call("chargers", "ProcessEvent", chargers_pb2.ChargersProcessEventRequest(event=ctx.event(a)))
    return [
        {"ChargerSProfile": r.charger_profile, "AttributeSProfiles": list(r.attribute_profiles) or None,
         "AlteredFields": list(r.altered_fields), "CGREvent": shapes.pb_event_json(r.event, ctx.tenant)}
        for r in res.runs
    ]


@method("ChargerSv1.GetChargersForEvent")
async def chargers_for_event(ctx: Context, a: Args) -> Any:
    req = chargers_pb2.ChargersProcessEventRequest(event=ctx.event(a))
    return shapes.json_object(await ctx.backends.call("chargers", "GetChargersForEvent", req))


# --- SupplierS / StatS / ThresholdS ---------------------------------------------------------


@method("SupplierSv1.GetSuppliers")
async def get_suppliers(ctx: Context, a: Args) -> Any:
    max_cost = a.get("MaxCost")
    req = suppliers_pb2.GetSuppliersRequest(
        event=ctx.event(a), max_cost="" if max_cost in (None, "") else str(max_cost),
        ignore_errors=bool(a.bool("IgnoreErrors")), limit=a.int("Limit") or 0, offset=a.int("Offset") or 0,
    )
    res = await ctx.backends.call("suppliers", "GetSuppliers", req)
    return loads_exact(res.json)


def _tenant_id(ctx: Context, a: Args) -> common_pb2.TenantID:
    a.require("ID")
    return common_pb2.TenantID(tenant=a.str("Tenant") or ctx.tenant, id=a.str("ID"))


def _tenant(ctx: Context, a: Args) -> common_pb2.TenantRequest:
    return common_pb2.TenantRequest(tenant=a.str("Tenant") or ctx.tenant)


@method("StatSv1.ProcessEvent")
async def stats_process(ctx: Context, a: Args) -> Any:
    req = stats_pb2.StatsProcessEventRequest(event=ctx.event(a), stat_ids=a.strs("StatIDs"))
    return list((await ctx.backends.call("stats", "ProcessEvent", req)).ids)


@method("StatSv1.GetQueueStringMetrics")
async def stats_string_metrics(ctx: Context, a: Args) -> Any:
    return dict((await ctx.backends.call("stats", "GetQueueStringMetrics", _tenant_id(ctx, a))).metrics)


@method("StatSv1.GetQueueFloatMetrics")
async def stats_float_metrics(ctx: Context, a: Args) -> Any:
    res = await ctx.backends.call("stats", "GetQueueFloatMetrics", _tenant_id(ctx, a))
    return {k: shapes.decimal_or_minus_one(v) for k, v in res.metrics.items()}


@method("StatSv1.GetQueueIDs")
async def stats_queue_ids(ctx: Context, a: Args) -> Any:
    return list((await ctx.backends.call("stats", "GetQueueIDs", _tenant(ctx, a))).ids)


@method("ThresholdSv1.ProcessEvent")
async def thresholds_process(ctx: Context, a: Args) -> Any:
    req = thresholds_pb2.ThresholdsProcessEventRequest(event=ctx.event(a), threshold_ids=a.strs("ThresholdIDs"))
    return list((await ctx.backends.call("thresholds", "ProcessEvent", req)).ids)


@method("ThresholdSv1.GetThreshold")
async def thresholds_get(ctx: Context, a: Args) -> Any:
    return shapes.json_object(await ctx.backends.call("thresholds", "GetThreshold", _tenant_id(ctx, a)))


@method("ThresholdSv1.GetThresholdIDs")
async def thresholds_ids(ctx: Context, a: Args) -> Any:
    return list((await ctx.backends.call("thresholds", "GetThresholdIDs", _tenant(ctx, a))).ids)


@method("ThresholdSv1.GetThresholdsForEvent")
async def thresholds_for_event(ctx: Context, a: Args) -> Any:
    req = thresholds_pb2.ThresholdsProcessEventRequest(event=ctx.event(a), threshold_ids=a.strs("ThresholdIDs"))
    return shapes.json_object(await ctx.backends.call("thresholds", "GetThresholdsForEvent", req))


# --- CDRs -----------------------------------------------------------------------------------


async def _process_cdr(ctx: Context, event: CGREvent, flags: list[str]) -> Any:
    req = cdre_pb2.ProcessCDRRequest(event=event_to_pb(event), flags=flags)
    res = await ctx.backends.call("cdre", "ProcessCDR", req, timeout=max(ctx.backends.timeout, 30.0))
    if res.duplicate:
        raise CGRError("EXISTS")  # rating-and-accounts §6.2 step 3
    return "OK"


@method("CDRsV1.ProcessEvent")
async def cdrs_process_event(ctx: Context, a: Args) -> Any:
    return await _process_cdr(ctx, cgr_event(a, ctx.tenant), a.strs("Flags"))


@method("CDRsV1.ProcessCDR")
async def cdrs_process_cdr(ctx: Context, a: Args) -> Any:
    """engine.CDR; like V1ProcessCDR, *rals is forced on unless the CDR is PreRated."""
    tenant, fields = shapes.cdr_to_event_fields(a)
    if not fields:
        raise CGRError("MANDATORY_IE_MISSING", "[CDR]")
    flags = [] if a.bool("PreRated") else ["*rals"]
    return await _process_cdr(ctx, CGREvent(tenant=tenant or ctx.tenant, event=fields), flags)


async def _get_cdrs(ctx: Context, flt: cdre_pb2.CDRFilter) -> list[cdre_pb2.CDR]:
    res = await ctx.backends.call("cdre", "GetCDRs", flt)
    if not res.cdrs:
        raise CGRError("NOT_FOUND")
    return list(res.cdrs)


@method("APIerSv1.GetCDRs")
async def get_cdrs_v1(ctx: Context, a: Args) -> Any:
    return [shapes.external_cdr(c) for c in await _get_cdrs(ctx, shapes.cdr_filter(a, v1=True))]


@method("APIerSv2.GetCDRs")
async def get_cdrs_v2(ctx: Context, a: Args) -> Any:
    return [shapes.external_cdr(c) for c in await _get_cdrs(ctx, shapes.cdr_filter(a))]


@method("APIerSv1.CountCDRs", "APIerSv2.CountCDRs", "CDRsV1.CountCDRs")
async def count_cdrs(ctx: Context, a: Args) -> Any:
    return (await ctx.backends.call("cdre", "CountCDRs", shapes.cdr_filter(a))).count


@method("CDRsV1.RateCDRs")
async def rate_cdrs(ctx: Context, a: Args) -> Any:
    """ArgRateCDRs {Flags, RPCCDRsFilter}: rerate the matching CDRs (refund + debit anew)."""
    unknown = [f for f in a.strs("Flags") if f.split(":")[0] not in ("*rerate", "*rals", "*store", "*refund")]
    if unknown:
        raise CGRError("NOT_IMPLEMENTED", f"flags {', '.join(unknown)}")
    req = cdre_pb2.RateCDRsRequest(filter=shapes.cdr_filter(a))
    await ctx.backends.call("cdre", "RateCDRs", req, timeout=max(ctx.backends.timeout, 60.0))
    return "OK"


_EXPORT_FORMATS = {"": "", "*file_csv": "csv", "*file_fwv": "fwv", "*dry_run": "*dry_run",
                   "dry_run": "*dry_run", "csv": "csv", "fwv": "fwv"}


@method("APIerSv1.ExportCDRs")
async def export_cdrs(ctx: Context, a: Args) -> Any:
    """ArgExportCDRs -> RplExportedCDRs. The export ID is chosen by cdre (unix time)."""
    opts = a.sub("ExportArgs") if isinstance(a.get("ExportArgs"), dict) else a
    for name in ("ExportID", "ExportFileName", "FieldSeparator", "RoundingDecimals", "CostMultiplyFactor"):
        if opts.get(name) not in (None, ""):
            raise CGRError("NOT_IMPLEMENTED", name)
    fmt = opts.str("ExportFormat")
    if fmt not in _EXPORT_FORMATS:
        raise CGRError("SERVER_ERROR", f"ExportFormat: {fmt} not supported (*file_csv, *file_fwv)")
    flt = shapes.cdr_filter(a)
    try:
        selected = await _get_cdrs(ctx, flt)
    except CGRError as exc:
        if exc.word != "NOT_FOUND":
            raise
        selected = []
    export_path = opts.str("ExportPath")
    if export_path:
        try:  # refused here, before any CDR is read; cdre checks again (its gRPC API is an entry too)
            export_path = str(path_under_roots(export_path, export_roots(ctx.settings), "ExportPath"))
        except PathRefused as exc:
            raise CGRError("SERVER_ERROR", str(exc)) from None
    req = cdre_pb2.ExportCDRsRequest(
        filter=flt, export_profile=opts.str("ExportTemplate"), export_path=export_path,
        format=_EXPORT_FORMATS[fmt],
    )
    res = await ctx.backends.call("cdre", "ExportCDRs", req, timeout=max(ctx.backends.timeout, 60.0))
    failed = set(res.failed_cgrids)
    done = [c for c in selected if c.cgrid not in failed]
    total = sum((Decimal(c.cost) for c in done if c.cost and Decimal(c.cost) > 0), Decimal(0))
    verbose = bool(a.bool("Verbose"))
    return {
        "ExportedPath": res.file,
        "TotalRecords": len(selected),
        "TotalCost": round_money(total, ctx.settings.rounding_decimals),
        "FirstOrderID": min((c.order_id for c in done), default=0),
        "LastOrderID": max((c.order_id for c in done), default=0),
        "ExportedCGRIDs": sorted({c.cgrid for c in done}) if verbose else None,
        "UnexportedCGRIDs": {c: "failed" for c in sorted(failed)} if verbose else None,
    }


# --- SessionS (the session core of this same process) -------------------------------------


def _sm(ctx: Context) -> SessionManager:
    if ctx.sessions is None:
        raise CGRError("NOT_IMPLEMENTED", "SessionS")
    return ctx.sessions


def _session_request(method_name: str, a: Args) -> m.SessionRequest:
    try:
        return m.parse_request(method_name, a.raw)
    except m.RequestError as exc:
        raise CGRError.from_message(str(exc)) from None


@method("SessionSv1.AuthorizeEvent")
async def sessions_authorize(ctx: Context, a: Args) -> Any:
    sr = _session_request("SessionSv1.AuthorizeEvent", a)
    res = await _sm(ctx).authorize(sr.event, sr.flags)
    if res.error:
        raise CGRError.from_message(res.error)
    return m.authorize_reply(res)


@method("SessionSv1.InitiateSession")
async def sessions_initiate(ctx: Context, a: Args) -> Any:
    sr = _session_request("SessionSv1.InitiateSession", a)
    res = await _sm(ctx).initiate(sr.event, sr.flags)
    if res.error:
        raise CGRError.from_message(res.error)
    return m.initiate_reply(res)


@method("SessionSv1.UpdateSession")
async def sessions_update(ctx: Context, a: Args) -> Any:
    sr = _session_request("SessionSv1.UpdateSession", a)
    res = await _sm(ctx).update(sr.event, sr.flags)
    if res.error:
        raise CGRError.from_message(res.error)
    return m.update_reply(res)


@method("SessionSv1.TerminateSession")
async def sessions_terminate(ctx: Context, a: Args) -> Any:
    sr = _session_request("SessionSv1.TerminateSession", a)
    err = await _sm(ctx).terminate(sr.event)
    if err:
        raise CGRError.from_message(err)
    return "OK"


@method("SessionSv1.ProcessCDR")
async def sessions_process_cdr(ctx: Context, a: Args) -> Any:
    sr = _session_request("SessionSv1.ProcessCDR", a)
    err = await _sm(ctx).process_cdr(sr.event)
    if err:
        raise CGRError.from_message(err)
    return "OK"


def _session_filter(a: Args) -> Callable[[dict[str, Any]], bool]:
    """utils.SessionFilter ``Filters``: only ``*string:~[*req.]Field:Value[;Value]`` inline
    filters are understood; anything else is refused rather than ignored."""
    checks: list[tuple[str, set[str]]] = []
    for f in a.strs("Filters"):
        parts = f.split(":", 2)
        if len(parts) != 3 or parts[0] != "*string" or not parts[1].startswith("~"):
            raise CGRError("NOT_IMPLEMENTED", f"session filter {f}")
        field_name = parts[1][1:].removeprefix("*req.")
        checks.append((field_name, set(parts[2].split(";"))))
    tenant = a.str("Tenant")

    def ok(row: dict[str, Any]) -> bool:
        if tenant and row.get("Tenant") != tenant:
            return False
        return all(str(row.get(name, "")) in values for name, values in checks)
    return ok


def _external_sessions(ctx: Context, a: Args) -> list[dict[str, Any]]:
    sm = _sm(ctx)
    keep = _session_filter(a)
    now = time.monotonic()
    rows: list[dict[str, Any]] = []
    for s in sm.active_sessions():
        for run in s.runs:
            ev = run.event
            row = {
                "CGRID": s.cgrid, "RunID": run.run_id, "ToR": ev.get("ToR") or "*voice",
                "OriginID": s.origin_id, "OriginHost": s.origin_host, "Source": ev.get("Source") or "",
                "RequestType": run.request_type, "Tenant": ev.tenant, "Category": ev.get("Category") or "call",
                "Account": ev.get("Account") or "", "Subject": ev.get("Subject") or ev.get("Account") or "",
                "Destination": ev.get("Destination") or "",
                "SetupTime": ev.get("SetupTime") or shapes.GO_ZERO_TIME,
                "AnswerTime": ev.get("AnswerTime") or shapes.GO_ZERO_TIME,
                "Usage": int((now - s.started) * 1_000_000_000),
                "ExtraFields": {}, "NodeID": platform.node(), "LoopIndex": run.loop_index,
                "DurationIndex": run.duration_index, "MaxRate": 0, "MaxRateUnit": 0,
                "MaxCostSoFar": run.cost, "DebitInterval": ctx.settings.debit_interval,
                "NextAutoDebit": shapes.GO_ZERO_TIME,
            }
            if keep(row):
                rows.append(row)
    limit = a.int("Limit")
    return rows[:limit] if limit else rows


@method("SessionSv1.GetActiveSessions")
async def sessions_active(ctx: Context, a: Args) -> Any:
    rows = _external_sessions(ctx, a)
    if not rows:
        raise CGRError("NOT_FOUND")
    return rows


@method("SessionSv1.GetActiveSessionsCount")
async def sessions_active_count(ctx: Context, a: Args) -> Any:
    return len(_external_sessions(ctx, a))


@method("SessionSv1.ForceDisconnect")
async def sessions_force_disconnect(ctx: Context, a: Args) -> Any:
    rows = _external_sessions(ctx, a)
    cgrids = list(dict.fromkeys(r["CGRID"] for r in rows))
    if not cgrids:
        raise CGRError("NOT_FOUND")
    sm = _sm(ctx)
    results = await asyncio.gather(*(sm.disconnect(c, "FORCED_DISCONNECT") for c in cgrids))
    if not any(results):
        raise CGRError("NOT_FOUND")
    return "OK"

