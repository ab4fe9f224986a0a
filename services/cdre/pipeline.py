"""ProcessCDR: AttributeS → ChargerS → per run: reserve → rate → store → StatS/ThresholdS
(docs/rating.md, CDRs).

How a run is written: a run whose outcome needs no debit (session cost given, pre-rated,
``*none``, GetCost...) is rated first and stored final in one insert; a run that must be
debited keeps the reserve → debit → finish order (see :mod:`services.cdre.store`). Either way the
writes go through the store's group committer, and the StatS/ThresholdS events of a stored run
are written to the outbox in the same transaction; :mod:`services.cdre.outbox` delivers them in
batches, so the reply does not wait for StatS/ThresholdS.

Differences from CGRateS v0.10, on purpose:

* Order of storing and charging: the run's row is reserved before RALs is called and the debit
  carries the idempotency key ``<CGRID>:<RunID>`` (see :mod:`services.cdre.store`). CGRateS
  rates first and refunds when the insert fails; a crash in between loses the CDR but keeps
  the money.
* No charger matching → one ``*default`` run (as SM does), not an error: a CDR is never dropped.
* A CDR with neither AnswerTime nor SetupTime is stored unrated with
  ``ExtraInfo = MANDATORY_IE_MISSING: [AnswerTime SetupTime]`` (CGRateS rates it at Go's
  zero time).
* ``*prepaid`` whose session cost was computed for a different usage keeps the session cost
  and says so in ExtraInfo: the session's own debits (done by SM under its own request ids) are
  the money that moved; re-debiting here would charge the call twice.
* ``*rated`` with a Cost already on the event keeps it (nothing to price); otherwise GetCost.
* Online exports (``*export``, on by default when ``online_cdr_exports`` names exporters, as
  in v0.10) are one outbox row per exporter written with the run, posted after the reply by
  :mod:`services.cdre.online`: a receiver that is down never fails the ProcessCDR (v0.10
  answers PARTIALLY_EXECUTED) and the export is retried until delivered. A run with
  ``*store:false`` is not exported (no row to ride on).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cgrpy.event import CGREvent
from services.cdre.backends import (
    BackendError,
    CallDescriptor,
    CdrBackends,
    MissingRatingTime,
    RatingResult,
)
from services.cdre.cdr import (
    CDR,
    COST_SOURCE_CDRS,
    COST_SOURCE_SESSIONS,
    DEFAULT_RUN_ID,
    NONE,
    NOT_RATED,
    POSTPAID,
    PREPAID,
    PSEUDOPREPAID,
    RATED,
    CdrDefaults,
    CdrError,
    cdr_from_event,
    to_event,
)
from services.cdre.redo import RedoError, RedoUnavailable, redo_run
from services.cdre.store import (
    OUTBOX_TARGETS,
    PENDING,
    CdrStore,
    RunOutcome,
    SessionCost,
    StoredCdr,
)

log = logging.getLogger("cgrpy.cdre")

CDRS_CONTEXT = "*cdrs"
FLAG_NAMES = ("*attributes", "*chargers", "*rals", "*store", "*stats", "*thresholds", "*export",
              "*rerate", "*refund")


class ProcessError(Exception):
    """The CDR could not be processed at all (nothing was stored); message says why."""


class RatingUnavailable(Exception):
    """RALs could not be reached to charge a run: its row stays pending; retry the CDR later."""


@dataclass(frozen=True)
class ProcessFlags:
    """CDRsV1.ProcessEvent flags. The defaults are V1ProcessCDR's with every service connected."""

    attributes: bool = True
    chargers: bool = True
    rals: bool = True
    store: bool = True
    stats: bool = True
    thresholds: bool = True
    # None = the configuration decides (export when online_cdr_exports names exporters)
    export: bool | None = None
    # A run already stored is refunded (and, with *rals, rated anew from the event and its row
    # updated) instead of answered as a duplicate; *rerate = *refund + *rals (services/cdre/redo.py)
    rerate: bool = False
    refund: bool = False

    @classmethod
    def parse(cls, flags: Iterable[str], defaults: ProcessFlags | None = None) -> ProcessFlags:
        """``["*chargers:false", "*rals"]`` on top of ``defaults`` (``*x`` = ``*x:true``)."""
        values = dict((defaults or cls()).__dict__)
        for raw in flags:
            name, _, val = raw.strip().partition(":")
            if name not in FLAG_NAMES:
                raise ProcessError(f"unknown CDR flag {raw!r}; known: {', '.join(FLAG_NAMES)}")
            if val not in ("", "true", "false"):
                raise ProcessError(f"flag {raw!r}: value must be true or false")
            values[name[1:]] = val != "false"
        if values["rerate"]:
            values["rals"] = values["refund"] = True
        return cls(**values)


@dataclass
class RunResult:
    cdr: CDR
    duplicate: bool = False


@dataclass
class ProcessResult:
    runs: list[RunResult] = field(default_factory=list)
    # StatS/ThresholdS failed for some run (CGRateS PARTIALLY_EXECUTED); the CDRs are stored.
    partially_executed: bool = False

    @property
    def duplicate(self) -> bool:
        """Every run was already there: the whole CDR was a repeat."""
        return bool(self.runs) and all(r.duplicate for r in self.runs)


@dataclass
class PipelineConfig:
    defaults: CdrDefaults = field(default_factory=CdrDefaults)
    # *prepaid CDRs wait for SM's session cost this many times (CGRateS session_cost_retries).
    session_cost_retries: int = 5
    # Delay before retry n (1-based); CGRateS waits Fibonacci seconds.
    retry_delay: Callable[[int], float] = field(default=lambda n: float(_fib(n)))
    # A duplicate whose first processing stopped mid-charge is resumed after this long.
    stale_pending_after: timedelta = timedelta(seconds=60)
    # Tells a pending row nobody is processing any more (the store failed between reserve and
    # finish, so the caller got an error and retries) from one still in flight; such a row is
    # resumed at once instead of waiting ``stale_pending_after``. cdre's server knows what it
    # has in flight (one cdre process owns the CDR tables); None = only the age rule.
    is_abandoned: Callable[[StoredCdr], bool] | None = None
    # A duplicate of a row another request is rating waits this long for it, then answers
    # "retry later" (never "stored" while the cost is not written).
    other_rating_wait_s: float = 10.0
    # Called after a ProcessCDR wrote outbox events (wakes the outbox deliverer).
    outbox_written: Callable[[], None] | None = None
    # Outbox targets of the online exporters (``export:<id>``), and what wakes their deliverer.
    export_targets: tuple[str, ...] = ()
    exports_written: Callable[[], None] | None = None
    # When (time.monotonic()) this request must have answered. Until then a RALs call that
    # fails transiently (RALs restarting or not loaded yet, a deadline missed under load) is
    # tried again, so the reply carries the rated CDR instead of "retry later" with the run
    # left pending. None: one try (the sweep, which comes back to a row anyway).
    deadline: float | None = None
    # First pause between those tries (doubled each time, at most 0.5 s).
    transient_pause_s: float = 0.05
    # The retry budget of a request that has no deadline of its own, and the most any request
    # retries (see cdre's server): a RALs restart (~2 s) plus gRPC's reconnect backoff.
    transient_wait_s: float = 5.0


_Outcome = RunOutcome


def debit_request_id(cdr: CDR, rerate: int = 0) -> str:
    """Idempotency key of the debit charging ``cdr`` (``rerate`` > 0: its n-th re-rating)."""
    base = f"{cdr.cgrid}:{cdr.run_id}"
    return base if rerate == 0 else f"{base}:rerate{rerate}"


async def process_cdr(
    event: CGREvent,
    flags: ProcessFlags,
    backends: CdrBackends,
    store: CdrStore,
    config: PipelineConfig | None = None,
    session_cost: SessionCost | None = None,
    parsed: CDR | None = None,
) -> ProcessResult:
    """Rate and store one CDR event once per run; see the module doc for the steps.
    ``session_cost`` is what a *prepaid session charged for the run it names (SM's terminate):
    that run takes it instead of being rated, and it is stored in the run's transaction.
    ``parsed``: ``cdr_from_event(event, config.defaults)`` already built by the caller (cdre's
    server checks every field before calling anything); taken over (not copied) as the only
    run when neither AttributeS nor ChargerS may change the event."""
    cfg = config or PipelineConfig()
    cdrs = await _run_cdrs(event, flags, backends, cfg, parsed)
    result = ProcessResult()
    for cdr in cdrs:
        sc = session_cost if _same_run(session_cost, cdr) else None
        run = await _process_run(cdr, flags, backends, store, cfg, sc)
        result.runs.append(run)
        if run.duplicate or flags.store:
            continue  # stored runs reach StatS/ThresholdS through the outbox
        if not await _notify(run.cdr, flags, backends):
            result.partially_executed = True
    if flags.store and cfg.outbox_written is not None and _targets(flags):
        cfg.outbox_written()
    if flags.store and cfg.exports_written is not None and _export_targets(flags, cfg):
        cfg.exports_written()
    return result


async def _run_cdrs(event: CGREvent, flags: ProcessFlags, backends: CdrBackends,
                    cfg: PipelineConfig, parsed: CDR | None) -> list[CDR]:
    """The CDR of each run: the event through AttributeS and ChargerS (as the flags say)."""
    if not flags.attributes and not flags.chargers:
        # nothing writes to the event: no copy, and no second parse when the caller has one
        # (SM's CDRs: its own runs, *attributes:false *chargers:false)
        cdrs = [parsed if parsed is not None else _cdr_of(event, cfg)]
    else:
        ev = event.copy()
        if flags.attributes:
            context = str(ev.get("Context") or CDRS_CONTEXT)
            ev = await _attributes(backends, ev, context)
        run_events = [ev]
        if flags.chargers:
            try:
                run_events = await backends.chargers_process_event(ev) or [ev]
            except BackendError as exc:
                if exc.word != "NOT_FOUND":
                    raise ProcessError(f"CHARGERS_ERROR:{exc}") from exc
        cdrs = [_cdr_of(rev, cfg) for rev in run_events]
    for cdr in cdrs:
        if not cdr.run_id:
            cdr.run_id = DEFAULT_RUN_ID
    return cdrs


def _cdr_of(ev: CGREvent, cfg: PipelineConfig) -> CDR:
    try:
        return cdr_from_event(ev, cfg.defaults)
    except CdrError as exc:
        raise ProcessError(str(exc)) from exc


async def resume_pending(
    backends: CdrBackends,
    store: CdrStore,
    older_than: timedelta = timedelta(seconds=60),
    export_targets: tuple[str, ...] = (),
) -> int:
    """Finish rows left ``pending`` by a crash (start-up sweep). Safe to run any time: the debit
    reuses the row's idempotency key. Returns how many rows were finished. Their StatS/ThresholdS
    events and online exports go to the outbox with the default flags (the original flags are
    not stored)."""
    stale = await asyncio.to_thread(store.pending_older_than, older_than)
    done = 0
    for st in stale:
        try:
            outcome = await _rate(st.cdr, backends, store, PipelineConfig(session_cost_retries=0))
        except RatingUnavailable as exc:
            log.warning("pending CDR %s:%s left for later: %s", st.cdr.cgrid, st.cdr.run_id, exc)
            continue
        _apply(st.cdr, outcome)
        await store.afinish(st.cdr, outcome, notify=OUTBOX_TARGETS + export_targets)
        done += 1
    return done


# --- steps --------------------------------------------------------------------------------------


async def _attributes(backends: CdrBackends, ev: CGREvent, context: str) -> CGREvent:
    try:
        return await backends.attributes_process_event(ev, context)
    except BackendError as exc:
        if exc.word == "NOT_FOUND":
            return ev
        raise ProcessError(f"ATTRIBUTES_ERROR:{exc}") from exc


def _same_run(sc: SessionCost | None, cdr: CDR) -> bool:
    return sc is not None and sc.cgrid == cdr.cgrid and sc.run_id == cdr.run_id


def _targets(flags: ProcessFlags) -> tuple[str, ...]:
    want = {"thresholds": flags.thresholds, "stats": flags.stats}
    return tuple(t for t in OUTBOX_TARGETS if want[t])


def _export_targets(flags: ProcessFlags, cfg: PipelineConfig) -> tuple[str, ...]:
    return cfg.export_targets if flags.export is not False else ()


async def _process_run(
    cdr: CDR,
    flags: ProcessFlags,
    backends: CdrBackends,
    store: CdrStore,
    cfg: PipelineConfig,
    session_cost: SessionCost | None,
) -> RunResult:
    rate = flags.rals and not cdr.pre_rated
    if flags.store and (flags.rerate or flags.refund):
        stored_run = await asyncio.to_thread(store.get_run, cdr.cgrid, cdr.run_id)
        if stored_run is not None and stored_run.rating_state != PENDING:
            try:
                return RunResult(await redo_run(stored_run, cdr, rate=flags.rals, backends=backends, store=store))
            except RedoError as exc:
                raise ProcessError(str(exc)) from exc
            except RedoUnavailable as exc:
                raise RatingUnavailable(str(exc)) from exc
    if not flags.store:
        if rate:
            _apply(cdr, await _rate(cdr, backends, store, cfg, session_cost))
        return RunResult(cdr)

    notify = _targets(flags) + _export_targets(flags, cfg)
    # Nothing to debit (no RALs money moves): rate first, then one insert of the final row.
    # A debit keeps reserve -> debit -> finish, so a crash never leaves money taken and no row.
    outcome = await _rate_without_debit(cdr, rate, backends, store, cfg, session_cost)
    if outcome is not None:
        stored, duplicate = await store.ainsert_final(
            cdr, outcome, session_cost=session_cost, notify=notify)
    else:
        stored, duplicate = await store.areserve(cdr)
    if not duplicate:
        if outcome is not None:
            return RunResult(stored.cdr)
        return RunResult(await _rate_and_finish(
            stored.cdr, rate, backends, store, cfg, session_cost, notify))
    stored = await _await_other_rating(cdr, stored, store, cfg)
    if stored.rating_state == PENDING:
        log.warning("resuming CDR %s:%s left pending", cdr.cgrid, cdr.run_id)
        return RunResult(await _rate_and_finish(
            stored.cdr, rate, backends, store, cfg, session_cost, notify), True)
    return RunResult(stored.cdr, duplicate=True)


async def _await_other_rating(cdr: CDR, stored: StoredCdr, store: CdrStore, cfg: PipelineConfig) -> StoredCdr:
    """A duplicate of a run whose row is pending: while another request rates it, wait for that
    one (answering "stored" before the cost is written would end the sender's retries, and the
    row would stay pending if that request fails). Returns the row once it is rated, or still
    pending but abandoned or stale (the caller resumes it); raises RatingUnavailable (retry
    later) if the other request is still at it after ``cfg.other_rating_wait_s``."""
    waited, delay = 0.0, 0.02
    while stored.rating_state == PENDING and not (
        _is_stale(stored, cfg) or (cfg.is_abandoned is not None and cfg.is_abandoned(stored))
    ):
        if waited >= cfg.other_rating_wait_s:
            raise RatingUnavailable(f"CDR {cdr.cgrid}:{cdr.run_id} is being rated: retry")
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 0.5)
        stored, _dup = await store.areserve(cdr)
    return stored


async def _rate_and_finish(
    cdr: CDR,
    rate: bool,
    backends: CdrBackends,
    store: CdrStore,
    cfg: PipelineConfig,
    session_cost: SessionCost | None,
    notify: tuple[str, ...],
) -> CDR:
    if rate:
        outcome = await _rate(cdr, backends, store, cfg, session_cost)
    else:
        outcome = _Outcome(cdr.cost, cdr.cost_source, cdr.cost_details, cdr.extra_info)
    _apply(cdr, outcome)
    await store.afinish(cdr, outcome, session_cost=session_cost, notify=notify)
    return cdr


def _apply(cdr: CDR, o: _Outcome) -> None:
    cdr.cost, cdr.cost_source, cdr.cost_details, cdr.extra_info = (
        o.cost, o.cost_source, o.cost_details, o.extra_info
    )


def _is_stale(st: StoredCdr, cfg: PipelineConfig) -> bool:
    return datetime.now(UTC) - st.updated_at >= cfg.stale_pending_after


async def _rate(
    cdr: CDR,
    backends: CdrBackends,
    store: CdrStore,
    cfg: PipelineConfig,
    session_cost: SessionCost | None = None,
) -> _Outcome:
    """Price one run by its request type; errors become Cost −1 + ExtraInfo."""
    outcome = await _rate_without_debit(cdr, True, backends, store, cfg, session_cost)
    return outcome if outcome is not None else await _debit(cdr, backends, cfg)


async def _rate_without_debit(
    cdr: CDR,
    rate: bool,
    backends: CdrBackends,
    store: CdrStore,
    cfg: PipelineConfig,
    session_cost: SessionCost | None,
) -> _Outcome | None:
    """The run's outcome when no account is debited for it (GetCost may be called: it moves no
    money); ``None`` when it needs a RALs debit."""
    rt = cdr.request_type
    keep = _Outcome(cdr.cost, cdr.cost_source, cdr.cost_details, cdr.extra_info)
    if not rate or rt == NONE:
        return keep
    details = cdr.cost_details
    if details is not None and details.get("Usage") == cdr.usage_ns:
        cost = details.get("Cost", cdr.cost)
        return _Outcome(Decimal(cost), cdr.cost_source or COST_SOURCE_CDRS, details, cdr.extra_info)
    try:
        cd = CallDescriptor.from_cdr(cdr)
    except MissingRatingTime as exc:
        return _Outcome(NOT_RATED, COST_SOURCE_CDRS, None, str(exc))
    if rt == PREPAID and cdr.usage_ns > 0:
        sc = session_cost or await _session_cost(cdr, store, cfg)
        if sc is not None:
            info = ""
            if sc.usage_ns != cdr.usage_ns:
                info = (f"session cost is for usage {sc.usage_ns}ns, CDR usage is "
                        f"{cdr.usage_ns}ns; kept the session cost")
            return _Outcome(sc.cost, sc.cost_source or COST_SOURCE_SESSIONS, sc.cost_details, info)
    if rt in (PREPAID, POSTPAID, PSEUDOPREPAID):
        return None
    if rt == RATED and cdr.cost != NOT_RATED:
        return _Outcome(cdr.cost, cdr.cost_source or COST_SOURCE_CDRS, None, cdr.extra_info)
    try:
        return _from_rating(await _rals(cfg, lambda: backends.rals_get_cost(cd)), "")
    except BackendError as exc:
        if exc.transient:  # RALs restarting: pending and retried, as for a debit (below)
            raise RatingUnavailable(f"RALS_ERROR:{exc}") from exc
        return _Outcome(NOT_RATED, COST_SOURCE_CDRS, None, str(exc))


async def _debit(cdr: CDR, backends: CdrBackends, cfg: PipelineConfig) -> _Outcome:
    rid = debit_request_id(cdr)
    cd = CallDescriptor.from_cdr(cdr)
    try:
        # every try carries the same idempotency key: RALs charges the run once however many
        res = await _rals(cfg, lambda: backends.rals_debit(cd, rid, cdr.request_type))
    except BackendError as exc:
        if exc.transient:
            # RALs unreachable: leave the row pending and fail the request, so the sender's
            # retry (SM's spool) charges it later under the same debit key, instead of storing
            # an unrated CDR whose money nobody would collect.
            raise RatingUnavailable(f"RALS_ERROR:{exc}") from exc
        return _Outcome(NOT_RATED, COST_SOURCE_CDRS, None, str(exc))
    return _from_rating(res, rid)


async def _rals(cfg: PipelineConfig, call: Callable[[], Awaitable[RatingResult]]) -> RatingResult:
    """``call`` (a RALs GetCost or Debit), tried again after a transient failure while
    ``cfg.deadline`` leaves time; a try still running at the deadline is given up as a transient
    failure, so the request answers "retry later" in time instead of being cut off by its
    caller's deadline. Only safe for calls that may be repeated (GetCost; Debit by its key)."""
    pause = cfg.transient_pause_s
    while True:
        try:
            if cfg.deadline is None:
                return await call()
            async with asyncio.timeout_at(_loop_time(cfg.deadline)):
                return await call()
        except TimeoutError:
            raise BackendError("SERVER_ERROR", "RALs did not answer within the request's deadline",
                               transient=True) from None
        except BackendError as exc:
            if not exc.transient or cfg.deadline is None or time.monotonic() + pause >= cfg.deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


def _loop_time(monotonic_deadline: float) -> float:
    """A ``time.monotonic()`` instant on the running loop's clock (``asyncio.timeout_at``)."""
    return asyncio.get_running_loop().time() + (monotonic_deadline - time.monotonic())


def _from_rating(res: RatingResult, rid: str) -> _Outcome:
    return _Outcome(res.cost, COST_SOURCE_CDRS, res.cost_details, "", rid)


async def _session_cost(cdr: CDR, store: CdrStore, cfg: PipelineConfig) -> SessionCost | None:
    for attempt in range(cfg.session_cost_retries + 1):
        sc = await asyncio.to_thread(store.get_session_cost, cdr.cgrid, cdr.run_id)
        if sc is not None or attempt == cfg.session_cost_retries:
            return sc
        await asyncio.sleep(cfg.retry_delay(attempt + 1))
    return None


async def _notify(cdr: CDR, flags: ProcessFlags, backends: CdrBackends) -> bool:
    """Feed a run that is not stored (``*store:false``) to ThresholdS/StatS right away: with
    no row there is no outbox transaction to ride on."""
    ok = True
    ev = to_event(cdr, EventType="CDR")
    if flags.thresholds:
        try:
            await backends.thresholds_process_event(ev)
        except BackendError as exc:
            if exc.word != "NOT_FOUND":
                log.warning("ThresholdS failed for CDR %s:%s: %s", cdr.cgrid, cdr.run_id, exc)
                ok = False
    if flags.stats:
        try:
            await backends.stats_process_event(ev)
        except BackendError as exc:
            if exc.word != "NOT_FOUND":
                log.warning("StatS failed for CDR %s:%s: %s", cdr.cgrid, cdr.run_id, exc)
                ok = False
    return ok


def _fib(n: int) -> int:
    a, b = 1, 1
    for _ in range(n - 1):
        a, b = b, a + b
    return a


__all__ = [
    "ProcessError",
    "RatingUnavailable",
    "ProcessFlags",
    "ProcessResult",
    "PipelineConfig",
    "RunResult",
    "debit_request_id",
    "process_cdr",
    "resume_pending",
]
