"""gRPC face of cdre (CdrService): thin handlers around the pipeline, the store, rerating and
export, with :class:`~services.cdre.clients.GrpcBackends` as the other services.

Choices worth knowing (beyond the logic modules' own docstrings):

* ProcessCDR checks the event (flags, every CDR field) *before* calling any service, so a bad
  field is INVALID_ARGUMENT naming the field, with nothing called, charged or stored.
* AttributeS/ChargerS failing (other than NOT_FOUND) answers UNAVAILABLE with the CGRateS text
  (``ATTRIBUTES_ERROR:...``/``CHARGERS_ERROR:...``): nothing was stored, and ProcessCDR is
  idempotent on (CGRID, RunID), so the caller may simply retry.
* ProcessCDR retries a transient RALs failure until shortly before the caller's deadline
  (:meth:`CdreServer._request_config`), then answers UNAVAILABLE with the run left pending.
* GetCDRs answers an empty list when nothing matches (CGRateS APIerSv2.GetCDRs: NOT_FOUND).
  GetCDRs, CountCDRs, RateCDRs and ExportCDRs see a run only once its cost is written, never
  while it is ``pending`` (reserved, its debit in flight or waiting for RALs).
* Start-up (``load``) finishes every CDR row left ``pending`` by a crash between reserving the
  row and writing its cost: one cdre process owns the CDR tables, so any pending
  row at start-up is a crash leftover. The debit reuses the row's idempotency key, so a charge
  that did reach RALs before the crash is not taken twice. If RALs is not SERVING yet (``cgr up``
  starts all services together) it waits for it, bounded, before resuming.
* ExportCDRs: ``export_profile`` is ``*default`` (also when empty) or a whole CDRe profile as a
  JSON object (the shape ``cgr cdrs export --profile-file`` reads); there is no config key for
  named profiles yet. ``format`` (``csv``/``fwv``/``*file_csv``/``*file_fwv``/``*dry_run``)
  overrides the profile's. The directory is the request's, else the profile's, else the
  ``cdre_export_path`` setting; it must be absolute. CDRs already exported with the same
  profile are skipped (export log), as the CLI does without ``--include-exported``.
* Online exports (``cdrs_online_cdr_exports``: profiles of ``cdre_profiles_file`` in an online
  format) are checked at start-up (an unknown id or a file format stops it with one line) and
  posted by :class:`~services.cdre.online.ExportDeliverer`; GetFailedExports/RetryFailedExports
  list the ones that used up their attempts and make them due now.
* Metric ``cgrpy_cdrs_processed_total{result}``: per run, ``duplicate`` for a repeat, ``error``
  for a run stored unrated because rating failed (Cost -1 with the reason in ExtraInfo),
  ``stored`` otherwise; a ProcessCDR refused as a whole (bad input, AttributeS/ChargerS down)
  counts one ``error``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, common_pb2, rals_pb2
from cgrpy.config import ConfigError
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent, loads_exact
from cgrpy.runtime import auth
from cgrpy.runtime.server import BaseService
from cgrpy.runtime.status import status_code
from cgrpy.security import PathRefused, export_roots, path_under_roots
from cgrpy.units import UnitError, from_unix_nano, money_str, parse_decimal, to_unix_nano
from cgrpy.wire import event_from_pb
from services.cdre.cdr import (
    ACCOUNTED,
    CDR,
    NONE,
    NOT_RATED,
    CdrDefaults,
    CdrError,
    cdr_from_event,
    cost_details_json,
)
from services.cdre.clients import GrpcBackends
from services.cdre.export import (
    BUILTIN_PROFILES,
    DEFAULT_PROFILE,
    DRY_RUN,
    EXTENSIONS,
    FILE_CSV,
    FILE_FWV,
    ONLINE_FORMATS,
    ExportError,
    ExportProfile,
    export_cdrs,
    profile_from_dict,
)
from services.cdre.metrics import CDRS_PROCESSED
from services.cdre.online import (
    ExportDeliverer,
    cdr_from_outbox,
    check_exporters,
    exporter_target,
)
from services.cdre.outbox import OutboxDeliverer
from services.cdre.pipeline import (
    PipelineConfig,
    ProcessError,
    ProcessFlags,
    ProcessResult,
    RatingUnavailable,
    process_cdr,
    resume_pending,
)
from services.cdre.rerate import rerate_cdrs
from services.cdre.store import RATED_STATE, CdrFilter, CdrStore, SessionCost, StoredCdr, StoreError

FORMATS = {
    "": None,
    "csv": FILE_CSV,
    FILE_CSV: FILE_CSV,
    "fwv": FILE_FWV,
    FILE_FWV: FILE_FWV,
    "dry_run": DRY_RUN,
    "*dry_run": DRY_RUN,
}
# How long start-up waits for RALs before finishing crash leftovers anyway.
RALS_WAIT_S = 30.0
# Of a ProcessCDR's deadline, what is kept (at most) to write the cost and answer after RALs.
REPLY_MARGIN_S = 0.25


class Unavailable(CGRError):
    """A backend the whole request depends on failed: retry later (nothing was stored)."""

    grpc_code = grpc.StatusCode.UNAVAILABLE

    @property
    def message(self) -> str:
        return self.detail


def invalid(detail: str) -> CGRError:
    return CGRError("INVALID_ARGUMENT", detail)


# --- conversions ----------------------------------------------------------------------------


def cdr_to_pb(cdr: CDR) -> cdre_pb2.CDR:
    return cdre_pb2.CDR(
        cgrid=cdr.cgrid,
        run_id=cdr.run_id,
        origin_host=cdr.origin_host,
        source=cdr.source,
        origin_id=cdr.origin_id,
        tor=cdr.tor,
        request_type=cdr.request_type,
        tenant=cdr.tenant,
        category=cdr.category,
        account=cdr.account,
        subject=cdr.subject,
        destination=cdr.destination,
        setup_time_unix_ns=to_unix_nano(cdr.setup_time),
        answer_time_unix_ns=to_unix_nano(cdr.answer_time),
        usage_ns=cdr.usage_ns,
        extra_fields=dict(cdr.extra_fields),
        cost=money_str(cdr.cost),
        cost_source=cdr.cost_source,
        cost_details_json=cost_details_json(cdr) or "",
        extra_info=cdr.extra_info,
        order_id=cdr.order_id,
        pre_rated=cdr.pre_rated,
        partial=cdr.partial,
    )


def _cost_bound(text: str, name: str) -> Decimal | None:
    if not text:
        return None
    try:
        return parse_decimal(text)
    except UnitError as exc:
        raise invalid(f"{name}: {exc}") from None


def filter_from_pb(pb: cdre_pb2.CDRFilter) -> CdrFilter:
    """The proto filter as a :class:`CdrFilter` (0 times and empty costs = unset, limit 0 = all).

    Only runs whose rating is finished are selected: a run reserved before its RALs debit is
    ``pending`` (Cost -1) until the debit's answer is written, and a reader seeing it would take
    an in-flight charge for an unratable call (and an export would write it at -1 and never
    again). It shows up once rated, by the request itself, the sender's retry or the sweep."""
    if pb.limit < 0 or pb.offset < 0:
        raise invalid("limit and offset must not be negative")
    return CdrFilter(
        cgrids=list(pb.cgrids),
        run_ids=list(pb.run_ids),
        origin_ids=list(pb.origin_ids),
        request_types=list(pb.request_types),
        tenants=list(pb.tenants),
        accounts=list(pb.accounts),
        subjects=list(pb.subjects),
        destination_prefixes=list(pb.destination_prefixes),
        setup_time_start=from_unix_nano(pb.setup_time_start_unix_ns),
        setup_time_end=from_unix_nano(pb.setup_time_end_unix_ns),
        answer_time_start=from_unix_nano(pb.answer_time_start_unix_ns),
        answer_time_end=from_unix_nano(pb.answer_time_end_unix_ns),
        min_cost=_cost_bound(pb.min_cost, "min_cost"),
        max_cost=_cost_bound(pb.max_cost, "max_cost"),
        order_by=pb.order_by or "order_id",
        limit=pb.limit or None,
        offset=pb.offset,
        rating_state=RATED_STATE,
    )


def session_cost_from_pb(pb: cdre_pb2.SessionCost,
                         decoded: dict[str, Any] | None = None) -> SessionCost:
    """``decoded``: filled with {cost_details_json: its object}, so the CDR whose CostDetails
    is the same text takes the object instead of decoding it again."""
    if not pb.cgrid:
        raise CGRError("MANDATORY_IE_MISSING", "[CGRID]")
    if not pb.cost:
        raise CGRError("MANDATORY_IE_MISSING", "[Cost]")
    try:
        cost = parse_decimal(pb.cost)
    except UnitError as exc:
        raise invalid(f"cost: {exc}") from None
    if pb.usage_ns < 0:
        raise invalid(f"usage_ns: negative ({pb.usage_ns})")
    details = None
    if pb.cost_details_json:
        try:
            details = loads_exact(pb.cost_details_json)
        except ValueError as exc:
            raise invalid(f"cost_details_json: not JSON: {exc}") from None
        if not isinstance(details, dict):
            raise invalid("cost_details_json: expected an EventCost object")
        if decoded is not None:
            decoded[pb.cost_details_json] = details
    return SessionCost(
        cgrid=pb.cgrid,
        run_id=pb.run_id or "*default",
        cost=cost,
        usage_ns=pb.usage_ns,
        origin_host=pb.origin_host,
        origin_id=pb.origin_id,
        cost_source=pb.cost_source or "*sessions",
        cost_details=details,
    )


def load_profiles_file(path: str) -> dict[str, ExportProfile]:
    """Named CDRe profiles from ``CGRPY_CDRE_PROFILES_FILE``: a JSON object {name: profile}
    (CGRateS's ``cdre`` config section shape). A bad file stops start-up with one line."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object {profile name: profile}")
        return {str(name): profile_from_dict({"id": name, **body}) for name, body in data.items()}
    except (OSError, ValueError, ExportError) as exc:
        raise ConfigError(f"cdre_profiles_file {path}: {exc}") from None


def export_profile_from_request(
    req: cdre_pb2.ExportCDRsRequest, configured: dict[str, ExportProfile] | None = None
) -> ExportProfile:
    name = req.export_profile.strip()
    known = {**BUILTIN_PROFILES, **(configured or {})}
    try:
        if name.startswith("{"):
            try:
                data = json.loads(name)
            except json.JSONDecodeError as exc:
                raise invalid(f"export_profile: not a JSON object: {exc}") from None
            profile = profile_from_dict(data)
        elif name in ("", DEFAULT_PROFILE):
            profile = BUILTIN_PROFILES[DEFAULT_PROFILE]
        elif name in known:
            profile = known[name]
        else:
            raise invalid(
                f"export_profile: unknown CDRe profile {name!r}; known: "
                f"{', '.join(sorted(known))} (or a profile as a JSON object)"
            )
        fmt_key = req.format.strip().lower()
        if fmt_key not in FORMATS:
            raise invalid(f"format: {req.format!r} not supported (use csv, fwv or *dry_run)")
        fmt = FORMATS[fmt_key]
        if fmt is not None and fmt != profile.export_format:
            profile = ExportProfile(profile.id, fmt, profile.export_path,
                                    profile.field_separator, profile.fields)
        if profile.export_format in ONLINE_FORMATS:
            raise invalid(f"export_profile: {profile.id!r} is an online exporter "
                          f"({profile.export_format}); ExportCDRs writes files: give format "
                          "csv or fwv")
        if req.field_separator:
            if len(req.field_separator) != 1:
                raise invalid(f"field_separator: {req.field_separator!r} must be one character")
            profile = ExportProfile(profile.id, profile.export_format, profile.export_path,
                                    req.field_separator, profile.fields)
        return profile
    except ExportError as exc:
        raise invalid(f"export_profile: {exc}") from None


def export_dir(requested: str, profile: ExportProfile, default: str, roots: list[Path] | None = None) -> Path:
    raw = requested or profile.export_path or default
    path = Path(raw)
    if not path.is_absolute():
        raise invalid(f"export_path: {raw!r} must be an absolute directory")
    if requested and roots is not None:
        try:  # a caller-named directory only under the configured roots (symlinks, .. resolved)
            path = path_under_roots(raw, roots, "export_path")
        except PathRefused as exc:
            raise invalid(str(exc)) from None
    if path.exists() and not path.is_dir():
        raise invalid(f"export_path: {raw!r} is not a directory")
    return path


def free_export_id(directory: Path, profile: ExportProfile) -> str:
    """The unix time in seconds (CGRateS's default ExportID), suffixed ``_2``, ``_3``... when
    a file of that name is already there, so two exports in one second never overwrite."""
    base = str(int(time.time()))
    ext = EXTENSIONS.get(profile.export_format, "")
    eid, n = base, 1
    while ext and (directory / f"cdre_{eid}.{ext}").exists():
        n += 1
        eid = f"{base}_{n}"
    return eid


# --- servicer -------------------------------------------------------------------------------


class CdrServiceServicer(cdre_pb2_grpc.CdrServiceServicer):
    def __init__(self, owner: CdreServer) -> None:
        self.owner = owner

    async def ProcessCDR(
        self, request: cdre_pb2.ProcessCDRRequest, context: grpc.aio.ServicerContext
    ) -> cdre_pb2.ProcessCDRResponse:
        return await self.owner.process_one(request, context)

    async def ProcessCDRs(
        self, request: cdre_pb2.ProcessCDRsRequest, context: grpc.aio.ServicerContext
    ) -> cdre_pb2.ProcessCDRsResponse:
        # concurrently: their writes share group commits, their RALs calls overlap
        outs = await asyncio.gather(*(self._one(r, context) for r in request.cdrs))
        return cdre_pb2.ProcessCDRsResponse(results=outs)

    async def _one(self, request: cdre_pb2.ProcessCDRRequest,
                   context: grpc.aio.ServicerContext) -> cdre_pb2.ProcessCDRResult:
        try:
            return cdre_pb2.ProcessCDRResult(response=await self.owner.process_one(request, context))
        except CGRError as exc:
            return cdre_pb2.ProcessCDRResult(code=status_code(exc).value[0], message=exc.message)
        except Exception as exc:  # noqa: BLE001 - one item's failure (StorDB down...) is its own
            self.owner.log.warning("cdr.batch_item_failed", error=str(exc))
            return cdre_pb2.ProcessCDRResult(code=grpc.StatusCode.UNAVAILABLE.value[0],
                                             message=f"SERVER_ERROR: {exc}")

    async def StoreSessionCost(
        self, request: cdre_pb2.SessionCost, context: grpc.aio.ServicerContext
    ) -> common_pb2.Empty:
        sc = session_cost_from_pb(request)
        await self.owner.store.astore_session_cost(sc)
        return common_pb2.Empty()

    async def GetCDRs(
        self, request: cdre_pb2.CDRFilter, context: grpc.aio.ServicerContext
    ) -> cdre_pb2.GetCDRsResponse:
        flt = filter_from_pb(request)
        try:
            cdrs = await asyncio.to_thread(self.owner.store.get_cdrs, flt)
        except StoreError as exc:
            raise invalid(str(exc)) from None
        return cdre_pb2.GetCDRsResponse(cdrs=[cdr_to_pb(c) for c in cdrs])

    async def CountCDRs(
        self, request: cdre_pb2.CDRFilter, context: grpc.aio.ServicerContext
    ) -> cdre_pb2.CountCDRsResponse:
        flt = filter_from_pb(request)
        try:
            n = await asyncio.to_thread(self.owner.store.count_cdrs, flt)
        except StoreError as exc:
            raise invalid(str(exc)) from None
        return cdre_pb2.CountCDRsResponse(count=n)

    async def RateCDRs(
        self, request: cdre_pb2.RateCDRsRequest, context: grpc.aio.ServicerContext
    ) -> cdre_pb2.RateCDRsResponse:
        flt = filter_from_pb(request.filter)
        try:
            report = await rerate_cdrs(self.owner.store, self.owner.backends, flt,
                                       dry_run=request.dry_run)
        except StoreError as exc:
            raise invalid(str(exc)) from None
        cdrs = []
        for item in report.items:
            cdr = item.cdr if not report.dry_run else item.cdr.copy(cost=item.new_cost)
            if item.error and not cdr.extra_info:
                cdr = cdr.copy(extra_info=item.error)
            cdrs.append(cdr_to_pb(cdr))
        self.owner.log.info("cdrs.rerated", dry_run=report.dry_run, rerated=report.rerated,
                            difference=money_str(report.total_difference))
        return cdre_pb2.RateCDRsResponse(
            rerated=report.rerated,
            cost_difference=money_str(report.total_difference),
            cdrs=cdrs,
        )

    async def ExportCDRs(
        self, request: cdre_pb2.ExportCDRsRequest, context: grpc.aio.ServicerContext
    ) -> cdre_pb2.ExportCDRsResponse:
        o = self.owner
        flt = filter_from_pb(request.filter)
        profile = export_profile_from_request(request, self.owner.export_profiles)
        directory = export_dir(request.export_path, profile, o.settings.cdre_export_path,
                               export_roots(o.settings))
        try:
            async with o.export_lock:
                res = await asyncio.to_thread(
                    export_cdrs, o.store, profile, flt, export_path=directory,
                    export_id=request.export_id or free_export_id(directory, profile),
                    file_name=request.file_name or None,
                    include_exported=request.include_exported,
                )
        except (ExportError, StoreError) as exc:
            raise invalid(str(exc)) from None
        except OSError as exc:
            raise invalid(f"export_path: cannot write to {str(directory)!r}: "
                          f"{exc.strerror or exc}") from None
        o.log.info("cdrs.exported", file=str(res.path or ""), exported=res.exported,
                   failed=len(res.failed))
        return cdre_pb2.ExportCDRsResponse(
            file=str(res.path) if res.path else "",
            exported=res.exported,
            failed_cgrids=sorted(res.failed),
            export_id=res.export_id,
            total_records=res.total_records,
            total_cost=money_str(res.total_cost),
            first_order_id=res.first_order_id,
            last_order_id=res.last_order_id,
            failed=res.failed,
        )

    async def GetFailedExports(
        self, request: cdre_pb2.FailedExportsRequest, context: grpc.aio.ServicerContext
    ) -> cdre_pb2.FailedExportsResponse:
        if request.limit < 0:
            raise invalid("limit must not be negative")
        rows = await asyncio.to_thread(self.owner.store.failed_exports, request.exporter,
                                       request.limit or None)
        return cdre_pb2.FailedExportsResponse(exports=[
            cdre_pb2.FailedExport(exporter=r.exporter, cdr=cdr_to_pb(cdr_from_outbox(r.event)),
                                  attempts=r.attempts, last_error=r.last_error,
                                  next_retry_unix_ns=r.retry_at_ns)
            for r in rows
        ])

    async def RetryFailedExports(
        self, request: cdre_pb2.FailedExportsRequest, context: grpc.aio.ServicerContext
    ) -> cdre_pb2.RetryFailedExportsResponse:
        n = await asyncio.to_thread(self.owner.store.retry_failed_exports, request.exporter)
        self.owner.exports.wake()
        self.owner.log.info("cdrs.export_retry", exporter=request.exporter, retried=n)
        return cdre_pb2.RetryFailedExportsResponse(retried=n)


# Senders use a handful of flag lists (SM: one per request type), each parsed once; the cache is
# bounded (a client sending ever new lists must not make it grow).
_FLAGS: dict[tuple[str, ...], ProcessFlags] = {}
_MAX_FLAG_SETS = 64


def _flags(words: Iterable[str]) -> ProcessFlags:
    """``ProcessFlags.parse(words)``, remembered (ProcessFlags is frozen: shared safely); a bad
    list raises ProcessError each time and is not remembered."""
    key = tuple(words)
    flags = _FLAGS.get(key)
    if flags is None:
        flags = ProcessFlags.parse(key)
        if len(_FLAGS) >= _MAX_FLAG_SETS:
            _FLAGS.clear()
        _FLAGS[key] = flags
    return flags


# the metric's children by label, looked up once (a labels() call per run costs more than inc)
_PROCESSED = {label: CDRS_PROCESSED.labels(result=label)
              for label in ("stored", "duplicate", "error")}


def _count(result: ProcessResult, flags: ProcessFlags) -> None:
    for run in result.runs:
        if run.duplicate:
            label = "duplicate"
        elif not flags.store:
            continue
        elif run.cdr.cost == NOT_RATED and run.cdr.extra_info and flags.rals:
            label = "error"
        else:
            label = "stored"
        _PROCESSED[label].inc()


def _needs_rals(cdr: CDR) -> bool:
    if cdr.pre_rated or cdr.request_type == NONE:
        return False
    return cdr.request_type in ACCOUNTED or cdr.cost == NOT_RATED


class CdreServer(BaseService):
    name = "cdre"

    store: CdrStore
    backends: GrpcBackends
    pipeline_config: PipelineConfig
    export_lock: asyncio.Lock
    # CGRIDs being processed by ProcessCDR calls right now (count per CGRID)
    in_flight: Counter[str]
    outbox: OutboxDeliverer
    exports: ExportDeliverer

    def register(self, server: grpc.aio.Server) -> list[str]:
        cdre_pb2_grpc.add_CdrServiceServicer_to_server(CdrServiceServicer(self), server)
        return [cdre_pb2.DESCRIPTOR.services_by_name["CdrService"].full_name]

    async def load(self) -> None:
        self.export_profiles = load_profiles_file(self.settings.cdre_profiles_file)
        try:
            exporters = check_exporters(self.settings.cdrs_online_cdr_exports or [],
                                        self.export_profiles)
        except ExportError as exc:
            raise ConfigError(str(exc)) from None
        engine = await asyncio.to_thread(lambda: self.engine)  # migrates the StorDB
        self.store = CdrStore(engine)
        self.backends = GrpcBackends(self.settings)
        # One export at a time: the export log is read then written, and file names are free.
        self.export_lock = asyncio.Lock()
        self.in_flight = Counter()
        self.outbox = OutboxDeliverer(self.store, self.backends,
                                      interval_s=self.settings.cdrs_events_interval / 1e9)
        self.exports = ExportDeliverer(
            self.store, exporters, failed_retry_s=self.settings.cdre_export_failed_retry / 1e9)
        self.pipeline_config = PipelineConfig(
            defaults=CdrDefaults(
                tenant=self.settings.default_tenant,
                category=self.settings.default_category,
            ),
            is_abandoned=self._abandoned,
            outbox_written=self.outbox.wake,
            export_targets=tuple(exporter_target(e) for e in exporters),
            exports_written=self.exports.wake,
        )
        await self._resume_crash_leftovers()
        # events and exports of CDRs stored before a crash or restart are delivered now
        self.outbox.start()
        self.exports.start()
        self._sweeper = asyncio.create_task(self._sweep_pending())

    async def process_one(
        self, request: cdre_pb2.ProcessCDRRequest, context: grpc.aio.ServicerContext | None = None
    ) -> cdre_pb2.ProcessCDRResponse:
        """One ProcessCDR (unary or an item of ProcessCDRs); errors are CGRError. ``context``
        gives the caller's deadline, within which RALs is retried (:meth:`_request_config`)."""
        try:
            if not request.HasField("event") or not request.event.fields:
                raise CGRError("MANDATORY_IE_MISSING", "[Event]")
            ev = event_from_pb(request.event, self.settings.default_tenant)
            decoded: dict[str, Any] = {}  # a *prepaid run's EventCost: decoded once, shared
            sc = session_cost_from_pb(request.session_cost, decoded) if request.HasField(
                "session_cost") else None
            try:
                flags = _flags(request.flags)
                parsed = cdr_from_event(ev, self.pipeline_config.defaults, decoded)
            except (ProcessError, CdrError) as exc:
                raise invalid(str(exc)) from None
            result = await self._process_tracked(parsed, ev, flags, sc,
                                                 self._request_config(context))
        except CGRError:
            _PROCESSED["error"].inc()
            raise
        _count(result, flags)
        self.log.info("cdr.processed", runs=len(result.runs), duplicate=result.duplicate,
                      cgrid=result.runs[0].cdr.cgrid if result.runs else "")
        return cdre_pb2.ProcessCDRResponse(
            cdrs=[cdr_to_pb(r.cdr) for r in result.runs], duplicate=result.duplicate
        )

    def _request_config(self, context: grpc.aio.ServicerContext | None) -> PipelineConfig:
        """The pipeline settings of one request: a transient RALs failure is retried until
        shortly before the caller's deadline (time left to write the cost and answer), so a
        RALs restart or a slow answer under load still ends in a rated CDR; without a deadline,
        for ``transient_wait_s``."""
        cfg = self.pipeline_config
        left = context.time_remaining() if context is not None else None
        budget = cfg.transient_wait_s if left is None else min(
            left - min(REPLY_MARGIN_S, left / 4), cfg.transient_wait_s)
        # a shallow copy with its own deadline: dataclasses.replace would run __init__ over
        # every field, a cost paid per CDR
        mine = object.__new__(PipelineConfig)
        mine.__dict__.update(cfg.__dict__)
        mine.deadline = time.monotonic() + max(0.0, budget)
        return mine

    async def _process_tracked(
        self, parsed: CDR, ev: CGREvent, flags: ProcessFlags, sc: SessionCost | None,
        cfg: PipelineConfig,
    ) -> ProcessResult:
        key = parsed.cgrid
        self.in_flight[key] += 1
        try:
            return await process_cdr(ev, flags, self.backends, self.store, cfg, session_cost=sc,
                                     parsed=parsed)
        except RatingUnavailable as exc:
            raise Unavailable("SERVER_ERROR", str(exc)) from None
        except ProcessError as exc:
            if str(exc).startswith(("ATTRIBUTES_ERROR", "CHARGERS_ERROR")):
                raise Unavailable("SERVER_ERROR", str(exc)) from None
            # a field AttributeS/ChargerS wrote is bad: still nothing stored
            raise invalid(str(exc)) from None
        finally:
            self.in_flight[key] -= 1
            if not self.in_flight[key]:
                del self.in_flight[key]

    def _abandoned(self, stored: StoredCdr) -> bool:
        """A pending row is abandoned when no other ProcessCDR of its CGRID is running here (the
        call asking is counted itself): its processing failed before the cost was written, e.g.
        the store went down, and this is the caller's retry. Only this process writes the CDR
        tables, so nothing else can be working on it; resuming reuses the row's
        debit idempotency key, so it never charges twice."""
        return self.in_flight.get(stored.cdr.cgrid, 0) <= 1

    async def _resume_crash_leftovers(self) -> None:
        pending = await asyncio.to_thread(self.store.pending_older_than, timedelta(0))
        if not pending:
            return
        if any(_needs_rals(st.cdr) for st in pending) and not await self._rals_serving(
            RALS_WAIT_S
        ):
            self.log.warning("cdr.resume.rals_not_serving", pending=len(pending))
        n = await resume_pending(self.backends, self.store, older_than=timedelta(0),
                                 export_targets=self.pipeline_config.export_targets)
        self.log.info("cdr.resumed", finished=n)

    async def _sweep_pending(self) -> None:
        """Rows left pending while running (RALs was away and their sender does not retry) are
        finished once they are ``stale_pending_after`` old; same debit key, so never twice."""
        age = self.pipeline_config.stale_pending_after
        while True:
            await asyncio.sleep(min(30.0, age.total_seconds()))
            try:
                n = await resume_pending(self.backends, self.store, older_than=age,
                                         export_targets=self.pipeline_config.export_targets)
            except Exception as exc:  # noqa: BLE001 - the StorDB may be away: next round
                self.log.warning("cdr.sweep_failed", error=repr(exc))
                continue
            if n:
                self.log.info("cdr.resumed", finished=n)

    async def _rals_serving(self, wait_s: float) -> bool:
        name = rals_pb2.DESCRIPTOR.services_by_name["RalsService"].full_name
        deadline = time.monotonic() + wait_s
        async with auth.aio_channel(self.settings, self.settings.addr("rals")) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while True:
                try:
                    resp = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=1)
                    if resp.status == health_pb2.HealthCheckResponse.SERVING:
                        return True
                except grpc.aio.AioRpcError:
                    pass
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        sweeper = getattr(self, "_sweeper", None)
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
        outbox = getattr(self, "outbox", None)
        if outbox is not None:
            await outbox.close()
        exports = getattr(self, "exports", None)
        if exports is not None:
            await exports.close()
        store = getattr(self, "store", None)
        if store is not None:
            await asyncio.to_thread(store.close)
        backends = getattr(self, "backends", None)
        if backends is not None:
            await backends.close()
        await super().close()
