"""CGRateS v0.10 reply shapes built from the gRPC messages (exact numbers, Go time/duration text)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from cgrates.v1 import cdre_pb2, common_pb2
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent, loads_exact
from cgrpy.gotime import GO_ZERO_TIME, go_rfc3339, go_time  # noqa: F401 - apier modules use them
from cgrpy.units import parse_decimal, to_unix_nano
from cgrpy.wire import event_from_pb, external_cdr  # noqa: F401 - the GetCDRs shape
from services.sm.apier.args import Args

VOICE = "*voice"


def json_object(pb: common_pb2.JsonObject) -> Any:
    return loads_exact(pb.json) if pb.json else None


def event_json(ev: CGREvent) -> dict[str, Any]:
    """``utils.CGREvent`` as Go marshals it."""
    return {"Tenant": ev.tenant, "ID": ev.id, "Time": go_time(ev.time) if ev.time else None,
            "Event": ev.event}


def pb_event_json(pb: common_pb2.Event, default_tenant: str) -> dict[str, Any]:
    return event_json(event_from_pb(pb, default_tenant))


def decimal_or_minus_one(text: str) -> Decimal:
    """StatSv1.GetQueueFloatMetrics: a metric without enough data is -1 in CGRateS."""
    try:
        return parse_decimal(text)
    except (ValueError, InvalidOperation):
        return Decimal(-1)


# --- CDRs -----------------------------------------------------------------------------------


# RPCCDRsFilter (APIerSv2.GetCDRs, CountCDRs, ExportCDRs, RateCDRs) -> CDRFilter list fields.
_FILTER_LISTS = {
    "CGRIDs": "cgrids", "RunIDs": "run_ids", "OriginIDs": "origin_ids",
    "RequestTypes": "request_types", "Tenants": "tenants", "Accounts": "accounts",
    "Subjects": "subjects", "DestinationPrefixes": "destination_prefixes",
}
_FILTER_TIMES = {
    "SetupTimeStart": "setup_time_start_unix_ns", "SetupTimeEnd": "setup_time_end_unix_ns",
    "AnswerTimeStart": "answer_time_start_unix_ns", "AnswerTimeEnd": "answer_time_end_unix_ns",
}
# AttrGetCdrs (APIerSv1.GetCDRs), the older vocabulary.
_V1_LISTS = {
    "CgrIds": "cgrids", "MediationRunIds": "run_ids", "ReqTypes": "request_types",
    "Tenants": "tenants", "Accounts": "accounts", "Subjects": "subjects",
    "DestinationPrefixes": "destination_prefixes",
}
# Filter fields CGRateS knows but the CDR store cannot filter on: refused rather than ignored,
# so an export or a count never silently covers more CDRs than the caller asked for.
_UNSUPPORTED = (
    "NotCGRIDs", "NotRunIDs", "OriginHosts", "NotOriginHosts", "NotOriginIDs", "Sources",
    "NotSources", "ToRs", "NotToRs", "NotRequestTypes", "NotTenants", "Categories",
    "NotCategories", "NotAccounts", "NotSubjects", "NotDestinationPrefixes", "Costs",
    "NotCosts", "ExtraFields", "NotExtraFields", "MinUsage", "MaxUsage", "CreatedAtStart",
    "CreatedAtEnd", "UpdatedAtStart", "UpdatedAtEnd", "OrderIDStart", "OrderIDEnd", "MinPDD",
    "MaxPDD", "Unscoped", "TORs", "CdrHosts", "CdrSources", "OrderIdStart", "OrderIdEnd",
    "SkipRated",
)


def cdr_filter(a: Args, *, v1: bool = False) -> cdre_pb2.CDRFilter:
    flt = cdre_pb2.CDRFilter()
    for name in _UNSUPPORTED:
        v = a.get(name)
        if v not in (None, "", [], {}, False):
            raise CGRError("NOT_IMPLEMENTED", f"CDR filter field {name}")
    for name, attr in (_V1_LISTS if v1 else _FILTER_LISTS).items():
        getattr(flt, attr).extend(a.strs(name))
    if v1:
        start, end = a.time("TimeStart"), a.time("TimeEnd")
        flt.answer_time_start_unix_ns = to_unix_nano(start)
        flt.answer_time_end_unix_ns = to_unix_nano(end)
        if a.bool("SkipErrors"):
            flt.min_cost = "0"  # rating errors leave Cost -1
    else:
        for name, attr in _FILTER_TIMES.items():
            setattr(flt, attr, to_unix_nano(a.time(name)))
        for name, attr in (("MinCost", "min_cost"), ("MaxCost", "max_cost")):
            d = a.decimal(name)
            if d is not None:
                setattr(flt, attr, format(d, "f"))
        flt.order_by = a.str("OrderBy")
    pag = a.sub("Paginator") if isinstance(a.get("Paginator"), dict) else a
    limit, offset = pag.int("Limit"), pag.int("Offset")
    if (limit or 0) < 0 or (offset or 0) < 0:
        raise CGRError("SERVER_ERROR", "Limit/Offset: must not be negative")
    flt.limit, flt.offset = limit or 0, offset or 0
    return flt


_CDR_MAIN = ("CGRID", "RunID", "OriginHost", "Source", "OriginID", "ToR", "RequestType", "Tenant",
             "Category", "Account", "Subject", "Destination", "SetupTime", "AnswerTime", "Usage",
             "CostSource", "ExtraInfo", "Partial", "PreRated")


def cdr_to_event_fields(a: Args) -> tuple[str, dict[str, Any]]:
    """``engine.CDR`` (CDRsV1.ProcessCDR) -> (tenant, event fields): Go zero values are
    "not given", ExtraFields are flattened, Cost/CostDetails only kept for a PreRated CDR."""
    fields: dict[str, Any] = {}
    extra = a.get("ExtraFields") or {}
    if not isinstance(extra, dict):
        raise CGRError("SERVER_ERROR", "ExtraFields: expected a JSON object")
    fields.update({str(k): v for k, v in extra.items()})
    for name in _CDR_MAIN:
        v = a.get(name)
        if v in (None, "", GO_ZERO_TIME, False):
            continue
        fields[name] = v
    if a.bool("PreRated"):
        for name in ("Cost", "CostDetails"):
            if a.get(name) is not None:
                fields[name] = a.get(name)
    return a.str("Tenant"), fields
