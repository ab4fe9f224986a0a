"""SessionManager: authorize, initiate, debit loop, update, terminate, CDR hand-off (docs/rating.md).

Protocol-agnostic: the OpenSIPS adapters turn wire messages into calls here and give SM a
``disconnector`` callback (DisconnectSession on the right TCP connection, or MI ``dlg_end_dlg``).

Departures from CGRateS v0.10 (deliberate, each because v0.10 misbehaves with OpenSIPS):

* InitiateSession with a debit loop debits the first interval *before* replying (v0.10 replies 3h
  and debits in the background): a call without credit is refused at answer (OpenSIPS tears it
  down cleanly, no Terminate/CDR) and a short first grant becomes the dialog lifetime.
* A second InitiateSession for an active CGRID returns the first answer instead of ``EXISTS``
  (``EXISTS`` would make OpenSIPS tear down a call that is being charged).
* RALs "unlimited" (-1, AllowNegative account) is reported as the requested usage: v0.10 sends
  -1e-09 s in the digest reply, which OpenSIPS truncates to 0 = refused.
* Every reply to OpenSIPS is bounded by ``reply_deadline_s``; the work continues in the
  background and a late failure is handled by the failed-backend policy (OpenSIPS has no reply
  timeout, a hung reply wedges a SIP worker).
* Sessions survive an SM restart (``store``, see ``services/sm/store.py``); v0.10 loses every
  active session with the process, so running calls go uncharged. A restored session is charged
  again only once the switch confirms it (GetActiveSessionIDs): its debit loop then catches up on
  the time SM was down. A session OpenSIPS no longer reports (the Terminate was lost while SM was
  down), or that nothing confirms in time, is closed charging the usage already debited, and its
  CDRs are posted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from cgrpy.cgrid import cgrid_of
from cgrpy.event import CGREvent, loads_exact
from cgrpy.units import HOUR, SECOND, UNLIMITED_NS, UnitError, parse_duration
from services.sm.sessions.backends import BackendError, Backends
from services.sm.sessions.reuse import ReuseCache
from services.sm.sessions.table import SessionTable
from services.sm.sessions.types import (
    ActiveSessionInfo,
    AttributesReply,
    AuthorizeResult,
    ChargerRun,
    InitiateResult,
    SessionFlags,
    UpdateResult,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

PREPAID = "*prepaid"
PSEUDOPREPAID = "*pseudoprepaid"
POSTPAID = "*postpaid"
RATED = "*rated"
NONE = "*none"
_MAX_USAGE_TYPES = {PREPAID, PSEUDOPREPAID, "prepaid", "pseudoprepaid"}
_CDR_RATED_TYPES = {POSTPAID, PSEUDOPREPAID, RATED, "postpaid", "pseudoprepaid", "rated"}
_PROTECTED = {"CGRID", "OriginHost", "OriginID", "Usage"}
_MISSING = object()
VOICE = "*voice"
# Where a session came from, so SM answers it on the same channel (kept across a restart):
CHANNEL_MODULE = "cgrates"  # OpenSIPS's cgrates module on :2014 (DisconnectSession, GetActiveSessionIDs)
CHANNEL_EVENTS = "events"  # the event interface (datagrams); reached through MI only
# v0.10 sessions.default_usage besides *voice/*any: data in bytes, SMS in messages
UNIT_DEFAULT_USAGE = {"*data": 1048576, "*sms": 1}
CDR_DUE = "due"
CDR_POSTED = "posted"


class _SetForGood(asyncio.Event):
    """The ``ready``/``stop``/``done`` of every retired session (``SessionManager._retire``): set
    once, shared, never cleared. Waiting on a set event touches no loop, so one serves all."""

    def __init__(self) -> None:
        super().__init__()
        super().set()

    def clear(self) -> None:
        raise RuntimeError("a retired session's events stay set")


_SET_FOR_GOOD = _SetForGood()
# ProcessCDR's answer when its CDRs are not committed by the reply deadline (they still will be)
CDR_NOT_CONFIRMED = "SERVER_ERROR: CDR not confirmed stored within the reply deadline; still storing it"
SETTLE_BACKOFF_MAX_S = 5.0


def is_transient(exc: BaseException) -> bool:
    """A failure to reach a backend (restarting, unreachable, timed out), as opposed to an answer:
    the same request (same id) may be sent again later."""
    return bool(getattr(exc, "transient", False)) or isinstance(exc, (TimeoutError, ConnectionError))


def tor_of(event: CGREvent) -> str:
    return str(event.get("ToR") or VOICE)


def counts_units(event: CGREvent) -> bool:
    """A ToR other than *voice counts units (bytes, messages), not time: its Usage is charged
    once as asked, never by the time-driven debit loop (a 10 s interval is not 10e9 bytes)."""
    return tor_of(event) not in (VOICE, "*any")


@dataclass
class SMConfig:
    debit_interval_ns: int = 10 * SECOND  # 0 = debit the whole usage at init, settle at terminate
    default_usage_ns: int = 3 * HOUR  # *voice (and any ToR not below) when Usage is missing
    default_usage_by_tor: dict[str, int] = field(default_factory=lambda: dict(UNIT_DEFAULT_USAGE))
    default_request_type: str = RATED
    reply_deadline_s: float = 2.0  # every answer to OpenSIPS within this
    debit_retries: int = 2  # same request_id, so RALs charges once
    # a debit failing for want of RALs (restarting) is retried this long before the policy
    backend_retry_s: float = 10.0
    # after Terminate, post the CDRs from the session if no ProcessCDR came for this long (0 = never)
    cdr_wait_s: float = 60.0
    failed_backend_policy: str = "deny"  # "deny" | "allow"
    failed_backend_allow_usage_ns: int = 60 * SECOND  # granted under "allow"
    zero_max_usage_as_error: bool = True  # refuse with RALS_ERROR:INSUFFICIENT_CREDIT, not 0
    session_ttl_ns: int = 0  # 0 = off
    session_ttl_last_usage_ns: int | None = None
    terminate_attempts: int = 5
    disconnect_wait_s: float = 5.0  # how long to wait for OpenSIPS's Terminate after "OK"
    closed_session_keep_s: float = 600.0  # closed sessions kept for ProcessCDR
    # Authorize's AttributeS/ChargerS answers reused by the same call's Initiate (0 = off)
    reuse_ttl_s: float = 60.0
    reuse_max_entries: int = 100_000
    # how often SM asks StatS/ThresholdS whether a tenant has any queue/threshold (0 = never ask,
    # always send the events)
    profiles_check_s: float = 1.0

    def __post_init__(self) -> None:
        if self.failed_backend_policy not in ("deny", "allow"):
            raise ValueError(
                f"failed_backend_policy must be 'deny' or 'allow', not {self.failed_backend_policy!r}"
            )
        if self.debit_interval_ns < 0:
            raise ValueError("debit_interval must be >= 0")


class Metrics:
    """Counters the lead exports to Prometheus (name, label) -> count."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def inc(self, name: str, label: str = "") -> None:
        self.counts[(name, label)] += 1

    def get(self, name: str, label: str = "") -> int:
        return self.counts[(name, label)]


@dataclass
class SRun:
    run_id: str
    event: CGREvent
    request_type: str
    extra_ns: int = 0  # charged, not yet consumed reserve
    last_usage_ns: int = 0
    total_usage_ns: int = 0
    charged_ns: int = 0  # what RALs charged in total (sum of c)
    duration_index: int = 0
    loop_index: int = 0
    cost: Decimal = Decimal(0)
    debit_ids: list[str] = field(default_factory=list)
    backlog_ns: int = 0  # loop debits skipped while RALs was down ("allow" policy)
    # GetActiveSessions' MaxRate/MaxRateUnit: the highest rate this run's debits applied
    max_rate: Decimal = Decimal(0)
    max_rate_unit_ns: int = 0
    # unix ns of the debit loop's next debit; None without a loop (or once it stopped)
    next_auto_debit_ns: int | None = None

    def note_rate(self, value: Decimal, unit_ns: int) -> None:
        """Keep the higher of the run's max rate and ``value`` per ``unit_ns`` (per ns)."""
        if unit_ns > 0 and (self.max_rate_unit_ns <= 0
                            or value * self.max_rate_unit_ns > self.max_rate * unit_ns):
            self.max_rate, self.max_rate_unit_ns = value, unit_ns

    @property
    def prepaid(self) -> bool:
        return self.request_type in (PREPAID, "prepaid")


@dataclass
class Session:
    cgrid: str
    event: CGREvent  # the session event (AttributeS changes applied)
    client: Any = None  # the connection that carried InitiateSession (opaque to the core)
    channel: str = ""  # CHANNEL_MODULE, CHANNEL_EVENTS or "" (API): how to reach the switch
    runs: list[SRun] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    loops: list[asyncio.Task[None]] = field(default_factory=list)
    init_result: InitiateResult | None = None
    abandoned: bool = False  # OpenSIPS was told "refused" while init was still running
    terminating: bool = False
    disconnect_reason: str = ""
    closed_at: float = 0.0
    last_activity: float = field(default_factory=time.monotonic)
    start_event: CGREvent | None = None  # as the client sent it: echoed in DisconnectSession
    restored: bool = False  # adopted from the session store after an SM restart
    persisted: bool = False  # the store holds a snapshot: later writes are progress records
    snapshot_stale: bool = False  # the events changed since the snapshot: write a new one
    awaiting_switch: bool = False  # restored, not charged until the switch reports it again
    # CDRs: "" none expected (refused call), CDR_DUE (terminated, waiting for ProcessCDR), CDR_POSTED
    cdr_state: str = ""
    unsettled: bool = False  # closing, its final debit/refund not done yet (retried until done)
    resource_usage_id: str = ""  # the UsageID ResourceS holds for this call, released on close
    resources_asked: bool = False  # initiate allocated (or matched nothing): terminate knows
    cdr_timer: asyncio.TimerHandle | None = None  # posts the CDRs if no ProcessCDR comes
    one_shot: bool = False  # charged at once (``charge``): a repeat gets its whole first answer

    @property
    def origin_id(self) -> str:
        return str(self.event.get("OriginID") or "")

    @property
    def origin_host(self) -> str:
        return str(self.event.get("OriginHost") or "")


Disconnector = Callable[[Session, str], Awaitable[bool]]
# What ``SessionManager.forward`` answers besides the owner's own answer (services/sm/forward.py).
NOT_OURS = object()  # no other replica owns the session: handle it here as unknown
LOCAL = object()  # its owner died meanwhile and it was adopted here: handle it here


class SessionStoreLike(Protocol):
    """Where sessions are persisted (``services.sm.store.SessionStore``)."""

    def save(self, s: Session) -> None: ...

    def save_closed(self, s: Session) -> None: ...

    def save_progress(self, s: Session, *, closed: bool = False) -> bool: ...

    def delete(self, cgrid: str) -> None: ...


class SessionManager:
    def __init__(
        self,
        backends: Backends,
        config: SMConfig | None = None,
        disconnector: Disconnector | None = None,
        store: SessionStoreLike | None = None,
    ) -> None:
        self.backends = backends
        self.cfg = config or SMConfig()
        self.disconnector = disconnector
        self.store = store
        # A request named a session this SM does not have: another replica may have owned it and
        # died (services/sm/adoption.py); awaited before the request is handled as unknown.
        self.on_unknown: Callable[[], Awaitable[None]] | None = None
        # ...and, still unknown, a live replica may own it: the request goes there
        self.forward: Callable[[str, CGREvent, SessionFlags | None], Awaitable[Any]] | None = None
        self.metrics = Metrics()
        self._table = SessionTable()
        self._reuse = ReuseCache(self.cfg.reuse_ttl_s, self.cfg.reuse_max_entries)
        self._profile_checks: dict[tuple[str, str], tuple[float, asyncio.Task[bool]]] = {}
        self._active = self._table.active  # read-only views: change them through the table
        self._closed = self._table.closed
        self._auth_inflight: dict[tuple[str, str], asyncio.Task[AuthorizeResult]] = {}
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ helpers

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)
        return task

    async def _bounded(
        self, work: Coroutine[Any, Any, T] | asyncio.Task[T], what: str,
        on_late: Callable[[asyncio.Task[T]], T]
    ) -> T:
        """``work``'s answer, or ``on_late``'s when it is not done by the reply deadline. The work
        is never cancelled (it goes on, e.g. to close the session out). One waiter future and one
        timer per request: ``wait_for(shield(task))`` built a shield future, a waiter, a timer and
        their callbacks on every OpenSIPS request."""
        task = work if isinstance(work, asyncio.Task) else self._spawn(work)
        if not task.done():
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()

            def release(_arg: object) -> None:
                if not waiter.done():
                    waiter.set_result(None)

            timer = loop.call_later(self.cfg.reply_deadline_s, release, None)
            task.add_done_callback(release)
            try:
                await waiter  # a cancelled caller cancels only this waiter, not the work
            finally:
                timer.cancel()
                task.remove_done_callback(release)
        if task.done():
            return task.result()
        self.metrics.inc("replies_over_deadline", what)
        log.warning("%s not done within %.1fs: answering by policy", what, self.cfg.reply_deadline_s)
        return on_late(task)

    def _persist(self, s: Session) -> None:
        """Write the session's charging state; a failing store never fails the call. The events go
        in one snapshot; each later change is a small progress record over it."""
        if self.store is None or self._active.get(s.cgrid) is not s:
            return
        try:
            self._store_write(s, closed=False)
        except Exception:
            self.metrics.inc("persist_failures")
            log.exception("persisting session %s failed", s.cgrid)

    def _store_write(self, s: Session, *, closed: bool) -> None:
        assert self.store is not None
        if s.persisted and not s.snapshot_stale and self.store.save_progress(s, closed=closed):
            return
        if closed:
            self.store.save_closed(s)
        else:
            self.store.save(s)
        s.persisted, s.snapshot_stale = True, False

    async def _elsewhere(self, method: str, event: CGREvent, flags: SessionFlags | None) -> Any:
        """A request for a session this SM does not hold (SM replicas): adopt it if its owner
        died, else have its live owner answer. NOT_OURS: handle it here (now known, or unknown
        everywhere)."""
        if self.on_unknown is None:
            return NOT_OURS
        await self.on_unknown()
        if self.get_session(cgrid_of(event)) is not None or self.forward is None:
            return NOT_OURS
        answer = await self.forward(method, event, flags)
        return NOT_OURS if answer is LOCAL else answer

    def _backend_failed(self, what: str, exc: BaseException) -> None:
        self.metrics.inc("backend_failures", what)
        log.error("backend %s failed (%s: %s); policy %s", what, type(exc).__name__, exc,
                  self.cfg.failed_backend_policy)

    def _usage(self, event: CGREvent) -> int:
        try:
            u = parse_duration(event.get("Usage"))
        except UnitError:
            u = 0
        return u if u > 0 else self._default_usage(event)

    def _default_usage(self, event: CGREvent) -> int:
        return self.cfg.default_usage_by_tor.get(tor_of(event), self.cfg.default_usage_ns)

    def _request_type(self, event: CGREvent) -> str:
        return str(event.get("RequestType") or self.cfg.default_request_type)

    async def _attributes(
        self, event: CGREvent, cgrid: str = "", *, keep: bool = False, reuse: bool = False
    ) -> AttributesReply | None:
        """AttributeS's answer; ``keep`` it for the call's Initiate (Authorize), or ``reuse``
        the one Authorize kept when it still holds (Initiate, see ``reuse.py``)."""
        now = time.monotonic()
        if reuse and (kept := self._reuse.attributes_for(cgrid, event, now)) is not None:
            self.metrics.inc("reused", "attributes")
            return kept
        try:
            reply = await self.backends.attributes_process_event(event, "*sessions")
        except BackendError as e:
            if e.word == "NOT_FOUND":
                return None
            raise BackendError(f"ATTRIBUTES_ERROR:{e.word}") from e
        self._reuse.observe("attributes", reply.profile_set)
        if keep:
            self._reuse.keep_attributes(cgrid, event, reply, now)
        return reply

    async def _fork(
        self, event: CGREvent, cgrid: str = "", *, keep: bool = False, reuse: bool = False
    ) -> list[ChargerRun]:
        now = time.monotonic()
        if reuse and (kept := self._reuse.runs_for(cgrid, event, now)) is not None:
            self.metrics.inc("reused", "chargers")
            return kept
        try:
            runs = await self.backends.chargers_process_event(event)
        except BackendError as e:
            raise BackendError(f"CHARGERS_ERROR:{e.word}") from e
        if not runs:
            raise BackendError("CHARGERS_ERROR:NOT_FOUND")
        self._reuse.observe("chargers", runs[0].profile_set)
        if keep:
            self._reuse.keep_runs(cgrid, event, runs, now)
        return runs

    async def _stats_thresholds(
        self, event: CGREvent, flags: SessionFlags
    ) -> tuple[list[str] | None, list[str] | None]:
        async def call(fn: Callable[[CGREvent], Awaitable[list[str]]], what: str) -> list[str] | None:
            if not await self._has_profiles(what, event.tenant):
                return []  # what StatS/ThresholdS would answer (NOT_FOUND), without the hop
            try:
                return await fn(event)
            except BackendError as e:
                log.info("%s: %s", what, e.word)
                return []
            except Exception as exc:  # a failed StatS/ThresholdS never blocks a call
                self._backend_failed(what, exc)
                return []

        ask_th = flags.process_thresholds and not self._known_without("thresholds", event.tenant)
        ask_st = flags.process_stats and not self._known_without("stats", event.tenant)
        th = call(self.backends.thresholds_process_event, "thresholds") if ask_th else None
        st = call(self.backends.stats_process_event, "stats") if ask_st else None
        if th is not None and st is not None:
            got_th, got_st = await asyncio.gather(th, st)
        else:  # one hop or none (the usual case): awaited here, no task and gathering future
            got_th = await th if th is not None else []
            got_st = await st if st is not None else []
        return (got_th if flags.process_thresholds else None), (got_st if flags.process_stats else None)

    def _known_without(self, what: str, tenant: str) -> bool:
        """A fresh, finished profile check (``_has_profiles``) found none for the tenant: the
        answer is [] without asking, as ``call`` above would answer."""
        ttl = self.cfg.profiles_check_s
        entry = self._profile_checks.get((what, tenant)) if ttl > 0 else None
        if entry is None or time.monotonic() - entry[0] >= ttl:
            return False
        task = entry[1]
        return task.done() and not task.cancelled() and task.exception() is None and task.result() is False

    async def _has_profiles(self, what: str, tenant: str) -> bool:
        """Whether StatS/ThresholdS hold any queue/threshold for the tenant: without one an
        event changes nothing there, so the call is skipped. Asked at most once per
        ``profiles_check_s`` per tenant (a profile loaded meanwhile is seen that much later);
        when the question fails, the event is sent as before."""
        ttl = self.cfg.profiles_check_s
        if ttl <= 0:
            return True
        now, key = time.monotonic(), (what, tenant)
        entry = self._profile_checks.get(key)
        if entry is None or now - entry[0] >= ttl:
            entry = (now, self._spawn(self._lookup_profiles(what, tenant)))
            self._profile_checks[key] = entry
        return await asyncio.shield(entry[1])

    async def _lookup_profiles(self, what: str, tenant: str) -> bool:
        fn = self.backends.stats_queue_ids if what == "stats" else self.backends.thresholds_ids
        try:
            return bool(await asyncio.wait_for(fn(tenant), self.cfg.reply_deadline_s))
        except Exception as exc:  # unknown: send the events, as without this check
            log.info("%s profile lookup for %s failed: %s", what, tenant, exc)
            return True

    # ------------------------------------------------------------------ authorize

    async def authorize(self, event: CGREvent, flags: SessionFlags) -> AuthorizeResult:
        key = (cgrid_of(event), repr(sorted(vars(flags).items())))
        task = self._auth_inflight.get(key)
        if task is None:  # duplicate auths (INVITE retransmissions) share one computation
            task = self._spawn(self._authorize(event.copy(), flags))
            self._auth_inflight[key] = task
            task.add_done_callback(lambda _t: self._auth_inflight.pop(key, None))
        return await self._bounded(task, "authorize", lambda _t: self._policy_auth())

    def _policy_auth(self) -> AuthorizeResult:
        if self.cfg.failed_backend_policy == "allow":
            self.metrics.inc("authorizations", "policy_allow")
            return AuthorizeResult(max_usage_ns=self.cfg.failed_backend_allow_usage_ns)
        self.metrics.inc("authorizations", "policy_deny")
        return AuthorizeResult(max_usage_ns=0, error="SERVER_ERROR")

    async def _authorize(self, event: CGREvent, flags: SessionFlags) -> AuthorizeResult:
        res = AuthorizeResult(max_usage_ns=None)
        cgrid = cgrid_of(event)
        try:
            if flags.get_attributes:
                res.attributes = await self._attributes(event, cgrid, keep=True)
                if res.attributes is not None:
                    event = res.attributes.event
            await self._authorize_lookups(event, cgrid, flags, res)
            if res.error is None:
                res.threshold_ids, res.stat_queue_ids = await self._stats_thresholds(event, flags)
        except BackendError as e:
            res.error = e.word
        except Exception as exc:
            self._backend_failed("authorize", exc)
            return self._policy_auth()
        self.metrics.inc("authorizations", "denied" if res.error else "authorized")
        return res

    async def _authorize_lookups(self, event: CGREvent, cgrid: str, flags: SessionFlags,
                                 res: AuthorizeResult) -> None:
        """MaxUsage, resources and suppliers of an authorization. None of them changes anything,
        so they are asked together (one round of waiting, not three); their errors still count
        in that order, and the others' answers are dropped when one fails, as if not asked."""
        async def max_usage() -> None:
            usage = self._usage(event)
            runs = await self._fork(event, cgrid, keep=True)
            grants = await asyncio.gather(*(self._run_max_usage(r, usage) for r in runs))
            res.max_usage_ns = min(grants)
            if res.max_usage_ns == 0 and self.cfg.zero_max_usage_as_error:
                res.error = "RALS_ERROR:INSUFFICIENT_CREDIT"

        async def resources() -> None:
            res.resource_allocation = await self._resources(self.backends.resources_authorize, event)

        async def suppliers() -> None:
            try:
                res.suppliers = await self.backends.suppliers_get_suppliers(event)
            except BackendError as e:
                if e.word != "NOT_FOUND":
                    raise BackendError(f"SUPPLIERS_ERROR:{e.word}") from e

        steps = [fn for fn, wanted in ((max_usage, flags.get_max_usage),
                                       (resources, flags.authorize_resources),
                                       (suppliers, flags.get_suppliers)) if wanted]
        outcomes = await asyncio.gather(*(fn() for fn in steps), return_exceptions=True)
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, BaseException) or res.error is not None:
                # a failed step (or no credit, from the first): the steps after it count as not asked
                later = steps[i + 1:]
                if resources in later:
                    res.resource_allocation = None
                if suppliers in later:
                    res.suppliers = None
                if isinstance(outcome, BaseException):
                    raise outcome
                return

    async def _run_max_usage(self, run: ChargerRun, usage: int) -> int:
        if self._request_type(run.event) not in _MAX_USAGE_TYPES:
            return usage
        try:
            got = await self.backends.rals_get_max_usage(run.event, usage)
        except BackendError as e:
            raise BackendError(f"RALS_ERROR:{e.word}") from e
        if got == UNLIMITED_NS:
            return usage
        return max(0, min(got, usage))

    # ------------------------------------------------------------------ initiate

    async def initiate(
        self, event: CGREvent, flags: SessionFlags, client: Any = None, channel: str = ""
    ) -> InitiateResult:
        cgrid = cgrid_of(event)
        existing = self._active.get(cgrid)
        if existing is not None:
            await asyncio.wait_for(existing.ready.wait(), self.cfg.reply_deadline_s)
            return existing.init_result or InitiateResult(max_usage_ns=self._default_usage(existing.event))
        session = Session(cgrid=cgrid, event=event.copy(), client=client, channel=channel,
                          start_event=event.copy())
        self._table.add_active(session)
        return await self._bounded(
            self._initiate(session, flags), "initiate", lambda t: self._policy_init(session, t)
        )

    def _policy_init(self, session: Session, task: asyncio.Task[InitiateResult]) -> InitiateResult:
        if self.cfg.failed_backend_policy == "allow":
            return InitiateResult(max_usage_ns=self.cfg.failed_backend_allow_usage_ns)
        # OpenSIPS will tear the call down and send nothing more: close it out when init ends.
        session.abandoned = True
        return InitiateResult(max_usage_ns=0, error="SERVER_ERROR")

    async def _initiate(self, s: Session, flags: SessionFlags) -> InitiateResult:
        res = InitiateResult(max_usage_ns=None)
        try:
            try:
                event = s.event
                if flags.get_attributes:
                    res.attributes = await self._attributes(event, s.cgrid, reuse=True)
                    if res.attributes is not None:
                        event = s.event = res.attributes.event
                        self._table.reindex(s)  # AttributeS may rewrite OriginID/OriginHost
                if flags.allocate_resources:
                    res.resource_allocation = await self._resources(self.backends.resources_allocate, event)
                    s.resources_asked = True
                    if res.resource_allocation is not None:
                        s.resource_usage_id = str(event.get("OriginID") or "")
                runs = await self._fork(event, s.cgrid, reuse=True)
                self._reuse.drop(s.cgrid)
                s.runs = [SRun(r.run_id, r.event.copy(), self._request_type(r.event)) for r in runs]
                res.max_usage_ns = await self._first_debits(s)
                if res.max_usage_ns == 0:
                    res.error = "RALS_ERROR:INSUFFICIENT_CREDIT"
            except BackendError as e:
                res.error = e.word
            except Exception as exc:
                self._backend_failed("initiate", exc)
                if self.cfg.failed_backend_policy == "allow" and s.runs:
                    res.max_usage_ns = self.cfg.failed_backend_allow_usage_ns
                else:
                    res.error = "SERVER_ERROR"
            if res.error is None:
                res.threshold_ids, res.stat_queue_ids = await self._stats_thresholds(s.event, flags)
        finally:
            s.init_result = res
            s.ready.set()
        if res.error is not None or s.abandoned:
            # OpenSIPS tears the call down without Terminate/CDR: give back whatever was debited.
            self.metrics.inc("initiations", "refused")
            await self._close(s, final_usage_ns=0, post_cdrs=False)
            return res
        self.metrics.inc("initiations", "ok")
        if not s.persisted:  # a prepaid run's first debit already wrote the snapshot
            self._persist(s)
        if self.cfg.session_ttl_ns > 0:
            s.loops.append(self._spawn(self._ttl_watch(s)))
        return res

    async def _first_debits(self, s: Session) -> int:
        """Debit each *prepaid run now; start its loop. Returns the MaxUsage to reply (ns)."""
        interval = self.cfg.debit_interval_ns
        usage = self._usage(s.event)
        grants: list[int] = []
        for run in s.runs:
            if not run.prepaid:
                grants.append(usage)
                continue
            if interval > 0 and not counts_units(run.event):
                granted = await self._debit(s, run, interval)
                grants.append(self.cfg.default_usage_ns if granted >= interval else granted)
                if granted > 0:
                    s.loops.append(self._spawn(self._debit_loop(s, run, granted)))
            else:
                grants.append(await self._debit(s, run, usage))
        return min(grants) if grants else usage

    # ------------------------------------------------------------------ debit mechanics

    async def _debit(self, s: Session, run: SRun, dur: int, last_used: int | None = None) -> int:
        """CGRateS ``debitSession`` (docs/rating.md, Sessions); returns the granted duration (ns)."""
        if last_used is not None and last_used != run.last_usage_ns:
            run.extra_ns += run.last_usage_ns - last_used
            run.total_usage_ns += last_used - run.last_usage_ns
            run.last_usage_ns = last_used
        if run.extra_ns >= dur:
            run.extra_ns -= dur
            run.last_usage_ns = dur
            run.total_usage_ns += dur
            return dur
        reserve = run.extra_ns
        r_dur = dur - reserve
        request_id = f"{s.cgrid}:{run.run_id}:{run.loop_index}"
        try:
            res = await self._rals_debit(run, r_dur, request_id)
        except BaseException:
            run.extra_ns = reserve
            raise
        run.extra_ns = 0
        c = res.usage_ns
        if c > r_dur:
            run.extra_ns = c - r_dur
        run.last_usage_ns = dur if c >= r_dur else c + reserve
        run.duration_index += c
        run.charged_ns += c
        run.cost += res.cost
        run.note_rate(res.max_rate, res.max_rate_unit_ns)
        run.debit_ids.append(request_id)
        run.loop_index += 1
        run.total_usage_ns += run.last_usage_ns
        self.metrics.inc("debits", run.run_id)
        self._persist(s)
        return run.last_usage_ns

    async def _rals_debit(self, run: SRun, usage: int, request_id: str, *, go_negative: bool = False) -> Any:
        """Retry transport failures with the SAME request_id: RALs answers a repeat from its
        journal, so a debit lost on the way back is never charged twice.
        A RALs that cannot be reached (restarting) is asked again for ``backend_retry_s``:
        a restart is not "no credit"."""
        give_up_at = time.monotonic() + self.cfg.backend_retry_s
        attempt = 0
        while True:
            try:
                return await self.backends.rals_debit(
                    run.event, usage, request_id, offset_ns=run.duration_index,
                    loop_index=run.loop_index, go_negative=go_negative, max_cost_so_far=run.cost,
                )
            except BackendError as e:
                raise BackendError(f"RALS_ERROR:{e.word}") from e
            except Exception as exc:
                self._backend_failed("rals_debit", exc)
                attempt += 1
                if attempt > self.cfg.debit_retries and (
                    not is_transient(exc) or time.monotonic() >= give_up_at
                ):
                    raise
                await asyncio.sleep(min(0.01 * 2 ** attempt, 0.5))

    async def _debit_loop(
        self, s: Session, run: SRun, granted: int, *, first_sleep_ns: int | None = None,
        catch_up_ns: int = 0,
    ) -> None:
        """Debit ``interval`` every ``interval``. A restored loop starts with ``first_sleep_ns``
        (time left of what is already paid) and ``catch_up_ns`` (time SM was down, unpaid)."""
        interval = self.cfg.debit_interval_ns
        sleep_ns = interval if first_sleep_ns is None else first_sleep_ns
        while True:
            if granted < interval:
                run.next_auto_debit_ns = None  # no next debit: the call ends with its credit
                if await self._sleep(s, granted):
                    self._spawn(self.disconnect(s.cgrid, "INSUFFICIENT_CREDIT"))
                return
            run.next_auto_debit_ns = time.time_ns() + sleep_ns
            if not await self._sleep(s, sleep_ns):
                return
            run.next_auto_debit_ns = None  # debiting now; set again before the next sleep
            sleep_ns = interval
            try:
                extra = run.backlog_ns + catch_up_ns
                granted = await self._debit(s, run, interval + extra) - extra
                run.backlog_ns = catch_up_ns = 0
            except BackendError as e:
                reason = "UNAUTHORIZED_DESTINATION" if "UNAUTHORIZED_DESTINATION" in e.word else "SERVER_ERROR"
                self._spawn(self.disconnect(s.cgrid, reason))
                return
            except Exception:
                if self.cfg.failed_backend_policy == "deny":
                    self._spawn(self.disconnect(s.cgrid, "SERVER_ERROR"))
                    return
                run.backlog_ns += interval  # charged on the next successful debit or at terminate
                granted = interval

    async def _sleep(self, s: Session, ns: int) -> bool:
        """Sleep ``ns``; False if the session was stopped meanwhile."""
        try:  # asyncio.timeout, not wait_for: no task per sleep (every live session sleeps)
            async with asyncio.timeout(max(0, ns) / SECOND):
                await s.stop.wait()
            return False
        except TimeoutError:
            return not s.stop.is_set()

    # ------------------------------------------------------------------ update

    async def update(self, event: CGREvent, flags: SessionFlags) -> UpdateResult:
        return await self._bounded(self._update(event, flags), "update",
                                   lambda _t: UpdateResult(max_usage_ns=self.cfg.failed_backend_allow_usage_ns)
                                   if self.cfg.failed_backend_policy == "allow"
                                   else UpdateResult(max_usage_ns=0, error="SERVER_ERROR"))

    async def _update(self, event: CGREvent, flags: SessionFlags) -> UpdateResult:
        s = self._active.get(cgrid_of(event))
        if s is None:
            answer = await self._elsewhere("UpdateSession", event, flags)
            if answer is not NOT_OURS:
                return answer  # type: ignore[no-any-return]
            s = self._active.get(cgrid_of(event))
        if s is None:
            init = await self.initiate(event, flags)
            return UpdateResult(max_usage_ns=init.max_usage_ns, attributes=init.attributes, error=init.error)
        await s.ready.wait()
        s.last_activity = time.monotonic()
        attributes = None
        if flags.get_attributes:  # v0.10: AttributeS on the update event, only when asked
            try:
                attributes = await self._attributes(event)
            except BackendError as e:
                return UpdateResult(max_usage_ns=0, error=e.word)
            if attributes is not None:
                event = attributes.event
        for k, v in event.event.items():
            if k not in _PROTECTED and s.event.event.get(k, _MISSING) != v:
                s.event.event[k] = v
                s.snapshot_stale = True  # the next write is a full snapshot
        usage = self._usage(event)
        last_used = _opt_duration(event.get("LastUsed"))
        grants = []
        try:
            for run in s.runs:
                if run.prepaid and (self.cfg.debit_interval_ns == 0 or counts_units(run.event)):
                    grants.append(await self._debit(s, run, usage, last_used))
                else:
                    grants.append(usage)
        except BackendError as e:
            return UpdateResult(max_usage_ns=0, error=e.word)
        return UpdateResult(max_usage_ns=min(grants) if grants else usage, attributes=attributes)

    # ------------------------------------------------------------------ terminate

    async def terminate(self, event: CGREvent, flags: SessionFlags | None = None) -> str | None:
        """End the session; returns an error word or None ("OK"). A usage the session holds in
        ResourceS is released whatever the flags; ``release_resources`` also releases one SM did
        not allocate (CGRateS's ReleaseResources on terminate)."""
        return await self._bounded(self._terminate(event, flags), "terminate", lambda _t: None)

    async def _terminate(self, event: CGREvent, flags: SessionFlags | None = None) -> str | None:
        cgrid = cgrid_of(event)
        s = self._active.get(cgrid)
        if s is None and cgrid not in self._closed:
            answer = await self._elsewhere("TerminateSession", event, flags)
            if answer is not NOT_OURS:
                return answer  # type: ignore[no-any-return]
            s = self._active.get(cgrid)
        if s is None:
            if cgrid in self._closed:
                return None  # duplicate terminate (e.g. after our own force-terminate)
            return await self._terminate_unknown(event, flags)
        await s.ready.wait()
        if flags is not None and flags.release_resources and not s.resources_asked and not s.resource_usage_id:
            s.resource_usage_id = str(event.get("OriginID") or "")  # allocated by someone else
        usage = _opt_duration(event.get("Usage"))
        last_used = _opt_duration(event.get("LastUsed"))
        for k in ("AnswerTime", "DisconnectCause"):
            if event.get(k) is not None:
                s.event.event[k] = event.get(k)
                for run in s.runs:
                    run.event.event[k] = event.get(k)
        if s.cdr_state == "" and not s.terminating:
            s.cdr_state = CDR_DUE  # its ProcessCDR follows; if not, the session's CDRs are posted
        try:
            await self._close(s, final_usage_ns=usage, last_used_ns=last_used, post_cdrs=False)
        except BackendError as e:
            return e.word
        return None

    async def _terminate_unknown(self, event: CGREvent, flags: SessionFlags | None = None) -> str | None:
        """CGRateS charges an unknown session as a one-shot: fork, debit Usage, close."""
        log.warning("TerminateSession for unknown session %s: charging it one-shot", event.get("OriginID"))
        s = Session(cgrid=cgrid_of(event), event=event.copy())
        if flags is not None and flags.release_resources:
            s.resource_usage_id = str(event.get("OriginID") or "")
        try:
            runs = await self._fork(s.event)
            s.runs = [SRun(r.run_id, r.event.copy(), self._request_type(r.event)) for r in runs]
            usage = _opt_duration(event.get("Usage")) or 0
            for run in s.runs:
                if run.prepaid and usage > 0:
                    await self._debit(s, run, usage)
        except BackendError as e:
            return e.word
        s.ready.set()
        s.cdr_state = CDR_DUE
        self._table.add_active(s)
        await self._close(s, final_usage_ns=_opt_duration(event.get("Usage")), post_cdrs=False)
        return None

    # ------------------------------------------------------------------ one-shot charge

    async def charge(self, event: CGREvent) -> InitiateResult:
        """Charge one event at once (an SMS: ProcessMessage ``Debit``, ProcessEvent
        ``*accounts``): every *prepaid run is debited its Usage once, as much as the balances
        allow, and the session is closed at what was granted (MaxUsage = the smallest grant).
        It stays among the closed sessions for a following ProcessCDR, which posts its CDRs.
        The same event again (same CGRID) answers the first result and debits nothing more."""
        cgrid = cgrid_of(event)
        if cgrid in self._active:
            return InitiateResult(max_usage_ns=0, error="EXISTS")
        done = self._closed.get(cgrid)
        if done is not None and done.init_result is not None:
            return done.init_result
        s = Session(cgrid=cgrid, event=event.copy(), start_event=event.copy(), one_shot=True)
        self._table.add_active(s)
        return await self._bounded(self._charge(s), "charge",
                                   lambda _t: InitiateResult(max_usage_ns=0, error="SERVER_ERROR"))

    async def _charge(self, s: Session) -> InitiateResult:
        res = InitiateResult(max_usage_ns=None)
        usage = self._usage(s.event)
        try:
            runs = await self._fork(s.event, s.cgrid)
            s.runs = [SRun(r.run_id, r.event.copy(), self._request_type(r.event)) for r in runs]
            grants = [await self._debit(s, run, usage) if run.prepaid else usage for run in s.runs]
            res.max_usage_ns = min(grants) if grants else usage
            if res.max_usage_ns == 0 and self.cfg.zero_max_usage_as_error:
                res.error = "RALS_ERROR:INSUFFICIENT_CREDIT"
        except BackendError as e:
            res.error = e.word
        except Exception as exc:  # RALs unreachable: nothing granted, whatever the policy
            self._backend_failed("charge", exc)
            res.error = "SERVER_ERROR"
        finally:
            s.init_result = res
            s.ready.set()
        self.metrics.inc("charges", "refused" if res.error else "ok")
        try:
            await self._close(s, final_usage_ns=0 if res.error else res.max_usage_ns, post_cdrs=False)
        except Exception as exc:  # the refund of a refused charge failed: RALs keeps the debit ids
            self._backend_failed("charge_close", exc)
            res.error = res.error or "SERVER_ERROR"
        return res

    async def _close(
        self,
        s: Session,
        *,
        final_usage_ns: int | None,
        last_used_ns: int | None = None,
        post_cdrs: bool,
    ) -> None:
        """Stop loops, settle every run (extra debit or refund), keep the session for ProcessCDR.
        A settlement RALs cannot take now (restarting) is persisted and retried until done: the
        caller's reply is bounded anyway, and the CDRs wait for the final costs."""
        if s.terminating:
            await s.done.wait()
            return
        s.terminating = True
        s.stop.set()
        if post_cdrs and s.cdr_state == "":
            s.cdr_state = CDR_DUE  # persisted: a restart that finishes this close posts them
        current = asyncio.current_task()
        await asyncio.gather(*(t for t in s.loops if t is not current), return_exceptions=True)
        try:
            for run in s.runs:
                if final_usage_ns is not None:
                    run.total_usage_ns = final_usage_ns
                elif last_used_ns is not None and last_used_ns != run.last_usage_ns:
                    run.total_usage_ns += last_used_ns - run.last_usage_ns
            await self._settle_all(s)
            if post_cdrs:
                await self._post_cdrs(s, from_session=True)
        finally:
            await self._release_resources(s)
            if self.store is not None and self._active.get(s.cgrid) is s:
                try:
                    self._store_write(s, closed=True)  # kept for a ProcessCDR after a restart
                except Exception:
                    self.metrics.inc("persist_failures")
                    log.exception("persisting closed session %s failed", s.cgrid)
            s.closed_at = time.monotonic()
            self._table.close(s, s.closed_at)
            self._gc_closed()
            s.done.set()
        self._expect_cdrs(s, self.cfg.cdr_wait_s)
        self._retire(s)

    async def _settle_all(self, s: Session) -> None:
        """Settle every run; retry what failed for want of RALs (same request ids: applied once)
        with backoff, for as long as it takes. ``unsettled`` is persisted with the closed
        session at the first such failure, so an SM restart resumes it."""
        s.unsettled = True  # a cancelled settlement (SM stopping) is persisted as unfinished
        delay = 0.1
        for run in s.runs:
            while True:
                try:
                    await self._settle(s, run)
                    break
                except BackendError:
                    raise
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    self._settle_pending(s, run, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, SETTLE_BACKOFF_MAX_S)
            run.event.event["Usage"] = run.total_usage_ns
            if run.prepaid:
                run.event.event["Cost"] = run.cost
                run.event.event["CostSource"] = "*sessions"
        s.unsettled = False

    def _settle_pending(self, s: Session, run: SRun, exc: BaseException, delay: float) -> None:
        self.metrics.inc("settlements_retried", run.run_id)
        log.warning("settling %s run %s failed (%s): retrying in %.1fs", s.origin_id, run.run_id, exc, delay)
        if self.store is not None and self._active.get(s.cgrid) is s:
            try:
                self._store_write(s, closed=True)
            except Exception:
                self.metrics.inc("persist_failures")
                log.exception("persisting unsettled session %s failed", s.cgrid)

    async def _settle(self, s: Session, run: SRun) -> None:
        if not run.prepaid:
            return
        run.event.event.pop("CostDetails", None)  # until the refund answers what the run kept
        if not run.debit_ids and run.total_usage_ns == 0:
            return
        not_charged = run.total_usage_ns - run.charged_ns
        if not_charged > 0:
            res = await self._rals_debit(run, not_charged, f"{s.cgrid}:{run.run_id}:final", go_negative=True)
            run.charged_ns += res.usage_ns
            run.cost += res.cost
            run.debit_ids.append(f"{s.cgrid}:{run.run_id}:final")
        if run.debit_ids:
            # One settlement per run: unused whole increments back, and the session's final
            # rounding charged (RefundRounding), even when nothing is left to give back.
            rid = f"{s.cgrid}:{run.run_id}:refund"
            try:
                ref = await self.backends.rals_refund(run.event, list(run.debit_ids), run.total_usage_ns, rid)
            except BackendError as e:
                raise BackendError(f"RALS_ERROR:{e.word}") from e
            run.charged_ns -= ref.refunded_usage_ns
            run.cost -= ref.refunded_cost
            details = self._kept_cost_details(ref.event_cost_json, s, run)
            if details is not None:
                run.event.event["CostDetails"] = details
            self.metrics.inc("refunds", run.run_id)

    def _kept_cost_details(self, ec_json: str, s: Session, run: SRun) -> str | None:
        """The prepaid CDR's CostDetails: RALs' EventCost of what the run kept (its debits'
        EventCosts merged and trimmed), only when its Cost is the run's cost, the CDR's Cost;
        none rather than a document that disagrees with it (or when a debit kept none)."""
        if not ec_json:
            return None
        cost = loads_exact(ec_json).get("Cost")
        if cost is not None and Decimal(cost) == run.cost:
            return ec_json
        self.metrics.inc("cost_details_dropped", run.run_id)
        log.warning("%s run %s: EventCost Cost %s is not the session cost %s: CostDetails left null",
                    s.origin_id, run.run_id, cost, run.cost)
        return None

    # ------------------------------------------------------------------ ResourceS

    async def _resources(
        self, call: Callable[[CGREvent, str], Awaitable[str | None]], event: CGREvent
    ) -> str | None:
        """Authorize/allocate one unit for the call (UsageID = OriginID, as v0.10); a refusal is
        the CGRateS error ``RESOURCES_ERROR:RESOURCE_UNAUTHORIZED`` (or ``..._UNAVAILABLE``)."""
        try:
            return await call(event, str(event.get("OriginID") or ""))
        except BackendError as e:
            raise BackendError(f"RESOURCES_ERROR:{e.word}") from e

    async def _release_resources(self, s: Session) -> None:
        """Give back the usage a closing session holds (terminate, TTL expiry, a restored session
        the switch no longer has). A failure never fails the close: it is retried a few times in
        the background, then logged (the usage then stays until released by hand)."""
        usage_id, s.resource_usage_id = s.resource_usage_id, ""
        if not usage_id:
            return
        try:
            await self.backends.resources_release_usage(s.event.tenant, usage_id)
        except Exception as exc:
            log.warning("releasing resource usage %s failed (%s): retrying in the background", usage_id, exc)
            self._spawn(self._release_later(s.event.tenant, usage_id))

    async def _release_later(self, tenant: str, usage_id: str) -> None:
        last: Exception | None = None
        for delay in (1, 2, 4, 8):
            await asyncio.sleep(delay)
            try:
                await self.backends.resources_release_usage(tenant, usage_id)
                return
            except Exception as exc:  # noqa: BLE001 - logged below after the last try
                last = exc
        log.error("resource usage %s of tenant %s not released: %s", usage_id, tenant, last)

    def _gc_closed(self) -> None:
        for cgrid in self._table.expire(time.monotonic() - self.cfg.closed_session_keep_s):
            if self.store is not None and cgrid not in self._active:
                try:
                    self.store.delete(cgrid)
                except Exception:
                    log.exception("deleting closed session %s failed", cgrid)

    # ------------------------------------------------------------------ CDRs

    async def process_cdr(self, event: CGREvent) -> str | None:
        # Past the deadline the CDRs are still being stored (the task goes on), but an OK would say
        # they are: answer that they are not confirmed yet (a reply means committed).
        return await self._bounded(self._process_cdr(event), "process_cdr", lambda _t: CDR_NOT_CONFIRMED)

    async def _process_cdr(self, event: CGREvent) -> str | None:
        oid, host = str(event.get("OriginID") or ""), str(event.get("OriginHost") or "")
        # ProcessCDR of an answered call carries the bare Call-ID even for tagged sessions (A.7).
        sessions = self._table.by_origin(host, oid)
        if not sessions:
            answer = await self._elsewhere("ProcessCDR", event, None)
            if answer is not NOT_OURS:
                return answer  # type: ignore[no-any-return]
            sessions = self._table.by_origin(host, oid)
        try:
            if not sessions:
                await self.backends.cdrs_process_cdr(event, chargers=True, attributes=True, rals=True)
                return None
            for s in sessions:
                if self._active.get(s.cgrid) is s:
                    await self._await_close(s, event)
                if s.cdr_state == CDR_POSTED:
                    continue  # posted from the session (ProcessCDR late, or a duplicate)
                for run in s.runs:
                    for k, v in event.event.items():
                        # a prepaid run's CostDetails is the session's (or none), never the CDR's
                        if k not in run.event.event and k != "OriginID" and not (
                                k == "CostDetails" and run.prepaid):
                            run.event.event[k] = v
                await self._post_cdrs(s, from_session=True)
        except BackendError as e:
            return e.word
        return None

    async def _await_close(self, s: Session, event: CGREvent) -> None:
        """ProcessCDR came while its session is still open. Its Terminate is usually in flight
        (slow under load): wait for it without giving up, since the CDRs must follow whatever the
        reply deadline (the reply to the switch is bounded by the caller). If no Terminate has
        begun by the deadline, the CDR is the call's end: close the session at the CDR's Usage."""
        log.warning("ProcessCDR for active session %s", s.origin_id)
        if not s.terminating:
            try:
                await asyncio.wait_for(s.done.wait(), self.cfg.reply_deadline_s)
            except TimeoutError:
                pass
        if self._active.get(s.cgrid) is s and not s.terminating:
            log.warning("no TerminateSession for %s: closing it at the CDR's usage", s.origin_id)
            await self._close(s, final_usage_ns=_opt_duration(event.get("Usage")), post_cdrs=False)
        await s.done.wait()

    async def _post_cdrs(self, s: Session, *, from_session: bool) -> None:
        """Hand the session's CDRs on, once: committed by cdre, or by the spool when cdre did not
        store them in time (cdre also stores a (CGRID, RunID) once)."""
        if s.cdr_state == CDR_POSTED:
            return
        before, s.cdr_state = s.cdr_state, CDR_POSTED  # a concurrent caller sees it posted
        try:  # all runs at once: one ProcessCDRs (or one spool group commit) for the whole call
            await asyncio.gather(*(self.backends.cdrs_process_cdr(
                run.event, chargers=False, attributes=False,
                rals=run.request_type in _CDR_RATED_TYPES,
            ) for run in s.runs))
        except BaseException:
            s.cdr_state = before
            raise
        if self.store is not None and s.done.is_set():
            try:  # a closed session: remember it, so a restart does not post them again
                self.store.save_progress(s, closed=True)
            except Exception:
                self.metrics.inc("persist_failures")
                log.exception("persisting posted CDRs of %s failed", s.cgrid)
        self._retire(s)

    def _retire(self, s: Session) -> None:
        """A closed, settled session whose CDRs are posted only answers duplicates from now on
        (its CGRID and origin, cdr_state, event and runs, init_result: whole only for a
        one-shot charge, whose repeat is answered with it), for
        ``closed_session_keep_s``. What it held for the call (finished debit-loop tasks, the
        CDR timer, the switch's original event and connection, three events with their waiter
        queues) goes now rather than in ten minutes: SM keeps ``cps × keep`` closed sessions,
        and every object they hold is walked by each of the collector's middle and full passes
        (a middle pass of 445k objects stalled SM for 421 ms at 179 calls/s)."""
        if (s.cdr_state != CDR_POSTED or s.unsettled or not s.done.is_set()
                or s.done is _SET_FOR_GOOD or self._active.get(s.cgrid) is s):
            return
        if s.cdr_timer is not None:
            s.cdr_timer.cancel()
            s.cdr_timer = None
        s.loops.clear()
        s.start_event = None
        s.client = None
        s.ready = s.stop = s.done = _SET_FOR_GOOD
        r = s.init_result
        if r is not None and not s.one_shot:  # the answer's attributes and id lists served the call
            s.init_result = InitiateResult(max_usage_ns=r.max_usage_ns, error=r.error,
                                           resource_allocation=r.resource_allocation)

    def _expect_cdrs(self, s: Session, wait_s: float) -> None:
        """A terminated call's ProcessCDR may never come (lost by the switch, or sent to an SM that
        died): after ``wait_s`` post the CDRs from the session instead."""
        if s.cdr_state != CDR_DUE or self.cfg.cdr_wait_s <= 0:
            return
        if s.cdr_timer is not None:
            s.cdr_timer.cancel()
        s.cdr_timer = asyncio.get_running_loop().call_later(max(0.0, wait_s), self._cdr_wait_over, s)

    def _cdr_wait_over(self, s: Session) -> None:
        s.cdr_timer = None
        if s.cdr_state == CDR_DUE and not s.unsettled:
            self._spawn(self._post_from_session(s))

    async def _post_from_session(self, s: Session) -> None:
        if s.cdr_state != CDR_DUE:
            return
        log.warning("no ProcessCDR for %s: posting its CDRs from the session", s.origin_id)
        self.metrics.inc("cdrs_from_session")
        try:
            await self._post_cdrs(s, from_session=True)
        except Exception:
            log.exception("posting the CDRs of %s failed: retrying later", s.origin_id)
            self._expect_cdrs(s, SETTLE_BACKOFF_MAX_S)

    # ------------------------------------------------------------------ disconnect, sync, ttl

    async def disconnect(self, cgrid: str, reason: str = "FORCED_DISCONNECT") -> bool:
        """Ask OpenSIPS to end the call; force-terminate locally if it will not."""
        s = self._active.get(cgrid)
        if s is None or s.terminating:
            return False
        s.disconnect_reason = reason
        self.metrics.inc("disconnects", reason)
        for attempt in range(self.cfg.terminate_attempts):
            if s.terminating:
                return True
            ok = False
            if self.disconnector is not None:
                try:
                    ok = await asyncio.wait_for(self.disconnector(s, reason), self.cfg.reply_deadline_s)
                except Exception as exc:
                    log.warning("disconnect %s attempt %d failed: %s", s.origin_id, attempt + 1, exc)
            if ok:
                try:
                    await asyncio.wait_for(s.done.wait(), self.cfg.disconnect_wait_s)
                    return True
                except TimeoutError:
                    log.warning("no TerminateSession after disconnecting %s", s.origin_id)
                    break
            await asyncio.sleep(0.05 * (attempt + 1))
        log.warning("force-terminating %s (%s)", s.origin_id, reason)
        await self._close(s, final_usage_ns=None, post_cdrs=True)
        return True

    async def sync_active(self, reported: set[tuple[str, str]], checked_at: float) -> list[str]:
        """End sessions OpenSIPS no longer reports (GetActiveSessionIDs); charge wall time.
        Restored sessions awaiting the switch are confirmed or closed by the same answer."""
        ended = await self.confirm_restored(reported)
        for s in list(self._active.values()):
            if s.started >= checked_at or s.terminating or not s.ready.is_set() or s.awaiting_switch:
                continue
            if s.channel == CHANNEL_EVENTS:  # never in GetActiveSessionIDs: not the module's call
                continue
            if (s.origin_id, s.origin_host) in reported:
                continue
            log.warning("session %s not active in OpenSIPS: terminating", s.origin_id)
            self.metrics.inc("disconnects", "SYNC")
            # units (bytes, messages) are not wall time: those keep what was charged
            elapsed = None if counts_units(s.event) else int((checked_at - s.started) * SECOND)
            await self._close(s, final_usage_ns=elapsed, post_cdrs=True)
            ended.append(s.cgrid)
        return ended

    async def _ttl_watch(self, s: Session) -> None:
        ttl = self.cfg.session_ttl_ns
        while not s.stop.is_set():
            due = s.last_activity + ttl / SECOND - time.monotonic()
            if due > 0:
                if not await self._sleep(s, int(due * SECOND)):
                    return
                continue
            self.metrics.inc("disconnects", "SESSION_TTL")
            extra = self.cfg.session_ttl_last_usage_ns
            if extra is None:  # the TTL is time: it says nothing about bytes or messages
                extra = 0 if counts_units(s.event) else ttl
            final = max(r.total_usage_ns for r in s.runs) + extra if s.runs else None
            self._spawn(self._close(s, final_usage_ns=final, post_cdrs=True))
            return

    # ------------------------------------------------------------------ restart

    def restore(self, sessions: list[Session]) -> list[Session]:
        """Adopt sessions from the store after a restart, *without* charging them yet.

        The switch may have ended a call while SM was down (its Terminate lost), so a restored
        session is debited again only once the switch confirms it (``confirm_restored``, from
        GetActiveSessionIDs); a Terminate settles it at the usage the switch reports, and one
        nobody confirms is closed by ``close_unconfirmed``. Returns the active ones."""
        active = []
        for s in sessions:
            s.restored = True
            if s.done.is_set() and s.unsettled:
                self._resettle(s)  # closed while RALs was away: finish its settlement
                continue
            if s.done.is_set():
                self._table.add_closed(s, s.closed_at)
                self._expect_cdrs(s, self.cfg.cdr_wait_s)  # its ProcessCDR went to the dead SM
                continue
            if s.cgrid in self._active:
                continue
            s.awaiting_switch = True
            self._table.add_active(s)
            active.append(s)
        if active:
            self.metrics.inc("sessions_restored")
            log.warning("restored %d active session(s) after restart, awaiting the switch", len(active))
        return active

    def _resettle(self, s: Session) -> None:
        """A session persisted closed but not settled: settle it again at the usage it had (the
        same request ids, so what RALs already applied is not applied twice)."""
        if s.cgrid in self._active:
            return
        s.terminating = False
        s.done.clear()
        s.stop.clear()
        self._table.add_active(s)
        self.metrics.inc("settlements_resumed")
        log.warning("resuming the settlement of %s after restart", s.origin_id)
        self._spawn(self._close(s, final_usage_ns=None, post_cdrs=False))

    def _resume(self, s: Session) -> None:
        """Restart the loops of a confirmed session: what SM was down is confirmed usage now."""
        s.awaiting_switch = False
        interval = self.cfg.debit_interval_ns
        elapsed = int((time.monotonic() - s.started) * SECOND)
        for run in s.runs:
            if not run.prepaid or interval <= 0 or counts_units(run.event):
                continue
            paid_ahead = run.total_usage_ns - elapsed  # >0: already paid for; <0: SM was down unpaid
            if paid_ahead >= 0:
                loop = self._debit_loop(s, run, interval, first_sleep_ns=paid_ahead)
            else:
                loop = self._debit_loop(s, run, interval, first_sleep_ns=0, catch_up_ns=-paid_ahead)
            s.loops.append(self._spawn(loop))
        if self.cfg.session_ttl_ns > 0:
            s.loops.append(self._spawn(self._ttl_watch(s)))

    def awaiting_switch(self) -> list[Session]:
        """Restored sessions no switch has confirmed yet."""
        return [s for s in self._active.values() if s.awaiting_switch and not s.terminating]

    async def confirm_restored(self, reported: set[tuple[str, str]]) -> list[str]:
        """GetActiveSessionIDs answered: a restored session it reports is alive, so charging
        resumes (first the time SM was down); one it does not report ended while SM was down, its
        Terminate lost: closed at what was charged before the restart, with its CDRs. Event-
        interface sessions are never in that list: they wait for their accounting event."""
        ended = []
        for s in self.awaiting_switch():
            if s.channel == CHANNEL_EVENTS or s.terminating:  # a Terminate came meanwhile
                continue
            if (s.origin_id, s.origin_host) in reported:
                self._resume(s)
                continue
            log.warning("restored session %s not active in OpenSIPS: closing it", s.origin_id)
            self.metrics.inc("disconnects", "RESTART_SYNC")
            await self._close(s, final_usage_ns=None, post_cdrs=True)
            ended.append(s.cgrid)
        return ended

    async def close_unconfirmed(self) -> list[str]:
        """No switch confirmed these in time: close them at what was charged before the restart
        (never more than the switch confirmed) and post their CDRs."""
        ended = []
        for s in self.awaiting_switch():
            if s.terminating:
                continue
            log.warning("restored session %s never confirmed by the switch: closing it", s.origin_id)
            self.metrics.inc("disconnects", "RESTART_UNCONFIRMED")
            await self._close(s, final_usage_ns=None, post_cdrs=True)
            ended.append(s.cgrid)
        return ended

    # ------------------------------------------------------------------ views

    def get_session(self, cgrid: str) -> Session | None:
        return self._active.get(cgrid) or self._closed.get(cgrid)

    def active_sessions(self) -> list[Session]:
        return [s for s in self._active.values() if s.ready.is_set() and not s.terminating]

    def get_active_sessions(self) -> list[ActiveSessionInfo]:
        now = time.monotonic()
        out = []
        for s in self.active_sessions():
            for run in s.runs:
                out.append(ActiveSessionInfo(
                    cgrid=s.cgrid, origin_id=s.origin_id, origin_host=s.origin_host,
                    run_id=run.run_id, account=str(run.event.get("Account") or ""),
                    destination=str(run.event.get("Destination") or ""),
                    request_type=run.request_type, duration_ns=int((now - s.started) * SECOND),
                    debited_ns=run.charged_ns, cost=run.cost,
                    max_usage_left_ns=run.extra_ns if run.prepaid else None,
                ))
        return out

    async def get_active_sessions_live(self) -> list[ActiveSessionInfo]:
        """``get_active_sessions`` with ``max_usage_left_ns`` = paid reserve + what the account
        still buys now (RALs GetMaxUsage up to the default usage); -1 for unlimited runs. A RALs
        that does not answer within the deadline leaves the reserve alone."""
        out = []
        for info in self.get_active_sessions():
            s = self._active.get(info.cgrid)
            run = next((r for r in s.runs if r.run_id == info.run_id), None) if s else None
            if run is None or not run.prepaid:
                out.append(dataclasses.replace(info, max_usage_left_ns=-1))
                continue
            try:
                more = await asyncio.wait_for(
                    self.backends.rals_get_max_usage(run.event, self._default_usage(run.event)),
                    self.cfg.reply_deadline_s)
            except Exception as exc:  # operator view: show what is known
                log.info("max usage for %s: %s", info.origin_id, exc)
                more = 0
            left = -1 if more == UNLIMITED_NS else run.extra_ns + max(0, more)
            out.append(dataclasses.replace(info, max_usage_left_ns=left))
        return out

    async def drain(self, timeout_s: float) -> int:
        """Stopping: let the closes in flight (settlements, CDR hand-offs) finish, for at most
        ``timeout_s``. Returns how many were still running; their state is persisted, a restart
        resumes them. Active calls stay persisted as they are and are resumed after a restart."""
        closing = [s.done.wait() for s in self._active.values() if s.terminating]
        if not closing:
            return 0
        _done, pending = await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=timeout_s)
        for t in pending:
            t.cancel()
        return len(pending)

    async def shutdown(self) -> None:
        for t in list(self._background):
            t.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)


def _opt_duration(v: Any) -> int | None:
    if v is None or v == "":
        return None
    try:
        return parse_duration(v)
    except UnitError:
        return None


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("SM background task failed", exc_info=task.exception())
