"""CDRs over JSON-RPC: processing, reading, counting, rerating and exporting CDRs, all
answered by the cdre service over gRPC."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cgrates.v1 import cdre_pb2
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.security import PathRefused, export_roots, path_under_roots
from cgrpy.units import round_money
from cgrpy.wire import event_to_pb
from services.sm.apier import shapes
from services.sm.apier.args import Args, cgr_event
from services.sm.apier.core import Context, method


async def _process_cdr(ctx: Context, event: CGREvent, flags: list[str]) -> Any:
    req = cdre_pb2.ProcessCDRRequest(event=event_to_pb(event), flags=flags)
    res = await ctx.backends.call("cdre", "ProcessCDR", req, timeout=max(ctx.backends.timeout, 30.0))
    if res.duplicate:
        raise CGRError("EXISTS")  # this CGRID:RunID was processed before
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


@method("APIerSv2.GetCDRs", "CDRsV1.GetCDRs")
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
    """ArgExportCDRs -> RplExportedCDRs. ``ExportID`` names the file ``cdre_<ExportID>.csv``
    (default: the unix time), ``ExportFileName`` replaces the whole name (no directory),
    ``FieldSeparator`` replaces the template's (one character)."""
    opts = a.sub("ExportArgs") if isinstance(a.get("ExportArgs"), dict) else a
    file_name = opts.str("ExportFileName")
    if "/" in file_name or "\\" in file_name or file_name in (".", ".."):
        raise CGRError("SERVER_ERROR", f"ExportFileName: {file_name!r} must be a plain file name")
    for name in ("RoundingDecimals", "CostMultiplyFactor"):
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
        format=_EXPORT_FORMATS[fmt], export_id=opts.str("ExportID"), file_name=file_name,
        field_separator=opts.str("FieldSeparator"),
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
