"""The action-plan scheduler inside RALs: timed ActionPlans run on their accounts, exactly once.

An ActionPlans.csv row whose TimingId is not ``*asap`` (``*asap`` plans run once at load, see
``accounts.provision``) is *timed*: it fires at every instant its timing allows —
years/months/month days/week days restrict the days, the Time column gives the start (``hh:mm:ss``
once a day, ``*hourly`` at every full hour, ``*every_minute`` at every full minute). At each
instant the due action sets of a plan run on every account attached to it (AccountActions
ActionPlanId), in descending Weight, in one account transaction whose idempotency key is
``sched:<tpid>:<plan>:<tenant>:<account>:<unix seconds of the instant>``: a second RALs process, a
restart or a reload that reaches the same instant replays the stored result and changes nothing.

The queue is ordered by next start time; at the same instant the plan with the higher Weight runs
first.

::

    sched = ActionScheduler(clock=time.time_ns)
    sched.load(accounts, rows, tpid)         # (re)build the queue from now; on every ReloadCache
    runs = sched.run_due()                   # run everything due at clock(); returns ScheduledRun
    await sched.run_forever()                # the service loop (stop() ends it)

Differences from CGRateS v0.10 (deliberate):

* Instants are computed in UTC (CGRateS uses the server's local zone).
* Built-in timing ids ``*every_minute``, ``*hourly``, ``*daily``, ``*weekly``, ``*monthly``,
  ``*month_end``, ``*yearly`` are anchored at the start of their period (00:00:00 UTC; Sunday;
  day 1; last day; 1 January). CGRateS anchors ``*daily``... on the moment the plan was loaded,
  which would give two RALs processes (or a restart) different instants and break exactly-once.
  A Timings.csv tag of the same name wins.
* Actions run with "now" = the scheduled instant (not the wall clock a few ms later), so every
  process computes the same result for the same key (expiry times such as ``*monthly``
  included).
* Day restrictions combine with AND (as rating timings do); month day ``-1`` is the last day of
  the month (``-2`` the one before ...).
* Instants missed while the process was running but late (a stalled loop) are run in order;
  instants that passed while no RALs was running are not caught up (CGRateS neither).
"""

from __future__ import annotations

import asyncio
import calendar
import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from typing import Any

from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.units import SECOND, from_unix_nano
from services.rals.accounts.actions import ActionEvent, removal_asked
from services.rals.accounts.model import Account, AccountError
from services.rals.accounts.provision import split_ids
from services.rals.accounts.service import AccountService
from services.rals.rating.timings import ANY, ASAP, LocalDay, Timing, local_day, timing_from_row

Clock = Callable[[], int]  # unix nanoseconds

EVERY_MINUTE = "*every_minute"
HOURLY = "*hourly"
MINUTE_NS = 60 * SECOND
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS
# How far ahead a timing is searched for its next day (covers 29 February, 8 years apart at worst).
SEARCH_DAYS = 366 * 9

BUILTIN_TIMINGS: dict[str, Timing] = {
    ANY: Timing(id=ANY, start_time="00:00:00"),
    EVERY_MINUTE: Timing(id=EVERY_MINUTE, start_time=EVERY_MINUTE),
    HOURLY: Timing(id=HOURLY, start_time=HOURLY),
    "*daily": Timing(id="*daily", start_time="00:00:00"),
    "*weekly": Timing(id="*weekly", week_days=(0,), start_time="00:00:00"),
    "*monthly": Timing(id="*monthly", month_days=(1,), start_time="00:00:00"),
    "*month_end": Timing(id="*month_end", month_days=(-1,), start_time="00:00:00"),
    "*yearly": Timing(id="*yearly", months=(1,), month_days=(1,), start_time="00:00:00"),
}


# --- pure: when does a timing fire next ------------------------------------------------------


def _day_matches(t: Timing, day: LocalDay) -> bool:
    if t.years and day.year not in t.years:
        return False
    if t.months and day.month not in t.months:
        return False
    if t.week_days and day.week_day not in t.week_days:
        return False
    if t.month_days:
        last = calendar.monthrange(day.year, day.month)[1]
        wanted = {d if d > 0 else last + 1 + d for d in t.month_days}
        if day.day not in wanted:
            return False
    return True


def _step_and_offset(t: Timing) -> tuple[int, int]:
    """(period inside a matching day, first offset into the day)."""
    if t.start_time == EVERY_MINUTE:
        return MINUTE_NS, 0
    if t.start_time == HOURLY:
        return HOUR_NS, 0
    return DAY_NS, t.start_tod_ns


def next_start(timing: Timing, after_ns: int) -> int | None:
    """The first instant strictly after ``after_ns`` (unix ns) at which ``timing`` fires, in UTC;
    None if it never fires again (``*asap``, or only years already past)."""
    if timing.start_time == ASAP:
        return None
    if timing.years and max(timing.years) < local_day(after_ns, UTC).year:
        return None
    step, offset = _step_and_offset(timing)
    day = local_day(after_ns, UTC)
    for _ in range(SEARCH_DAYS):
        if timing.years and day.year < min(timing.years):
            # Jump straight to 1 January of the first allowed year.
            first = calendar.timegm((min(timing.years), 1, 1, 0, 0, 0)) * SECOND
            day = local_day(first, UTC)
            continue
        if _day_matches(timing, day):
            base = day.start_ns + offset
            if base > after_ns:
                return base
            at = base + ((after_ns - base) // step + 1) * step
            if at < day.end_ns:
                return at
        day = local_day(day.end_ns, UTC)
    return None


# --- the plan: which action sets, when, on which accounts -------------------------------------


@dataclass(frozen=True)
class TimedEntry:
    plan_id: str
    actions_id: str
    timing: Timing
    weight: Decimal


@dataclass(frozen=True)
class TimedPlan:
    plan_id: str
    entries: tuple[TimedEntry, ...]  # descending weight
    accounts: tuple[tuple[str, str], ...]  # (tenant, account)

    @property
    def weight(self) -> Decimal:
        return max(e.weight for e in self.entries)


def timed_plans(rows: TariffPlanRows) -> dict[str, TimedPlan]:
    """The timed action plans of a tariff plan with their attached accounts.

    An unknown TimingId is an ``INVALID_ARGUMENT`` naming the plan; plans nobody is attached to
    are kept (they fire on no account)."""
    timings = dict(BUILTIN_TIMINGS)
    for r in rows.get("Timings", []):
        t = timing_from_row(r)
        timings[t.id] = t
    entries: dict[str, list[TimedEntry]] = {}
    for r in rows.get("ActionPlans", []):
        plan_id, timing_id = r["Id"].strip(), r["TimingId"].strip()
        timing = timings.get(timing_id)
        if timing_id == ASAP or (timing is not None and timing.start_time == ASAP):
            continue
        if timing is None:
            raise AccountError("INVALID_ARGUMENT",
                               f"ActionPlans.csv {plan_id}: unknown TimingId {timing_id!r}")
        weight = Decimal(r.get("Weight", "").strip() or "0")
        entries.setdefault(plan_id, []).append(
            TimedEntry(plan_id, r["ActionsId"].strip(), timing, weight))
    attached: dict[str, list[tuple[str, str]]] = {}
    for r in rows.get("AccountActions", []):
        for plan_id in split_ids(r.get("ActionPlanId", "")):  # several plans: ';'-joined
            if plan_id in entries:
                attached.setdefault(plan_id, []).append((r["Tenant"].strip(), r["Account"].strip()))
    return {
        pid: TimedPlan(pid, tuple(sorted(es, key=lambda e: -e.weight)),
                       tuple(attached.get(pid, ())))
        for pid, es in entries.items()
    }


def request_id(tpid: str, plan_id: str, tenant: str, account: str, at_ns: int) -> str:
    """The idempotency key of one plan run on one account at one instant."""
    return f"sched:{tpid}:{plan_id}:{tenant}:{account}:{at_ns // SECOND}"


# --- running it ---------------------------------------------------------------------------------


@dataclass
class ScheduledRun:
    """What one (plan, account, instant) did."""

    plan_id: str
    tenant: str
    account: str
    at_ns: int
    request_id: str
    status: str  # "ran" | "replayed" (already run by this or another process) | "failed"
    actions: tuple[str, ...] = ()
    events: list[ActionEvent] = field(default_factory=list)
    error: str = ""


@dataclass(order=True)
class _Due:
    at_ns: int
    neg_weight: Decimal
    plan_id: str
    timing_id: str


class ActionScheduler:
    """Runs timed action plans; ``clock`` (unix ns) and ``max_sleep`` (s) are injectable."""

    def __init__(
        self, *, clock: Clock = time.time_ns, max_sleep: float = 30.0,
        on_runs: Callable[[list[ScheduledRun]], None] | None = None,
    ) -> None:
        self.clock = clock
        self.max_sleep = max_sleep
        self.on_runs = on_runs
        self._lock = threading.Lock()
        self._heap: list[_Due] = []
        self._plans: dict[str, TimedPlan] = {}
        self._accounts: AccountService | None = None
        self._tpid = ""
        self._wake: asyncio.Event | None = None
        self._stopped = False

    # -- building --------------------------------------------------------------------------

    def load(self, accounts: AccountService, rows: TariffPlanRows, tpid: str) -> int:
        """(Re)build the queue from the tariff plan, next instants strictly after now.
        Returns the number of queued (plan, timing) items."""
        plans = timed_plans(rows)
        now = self.clock()
        heap: list[_Due] = []
        for plan in plans.values():
            for timing_id in dict.fromkeys(e.timing.id for e in plan.entries):
                timing = next(e.timing for e in plan.entries if e.timing.id == timing_id)
                at = next_start(timing, now)
                if at is not None:
                    heap.append(_Due(at, -plan.weight, plan.plan_id, timing_id))
        heapq.heapify(heap)
        with self._lock:
            self._plans, self._heap, self._accounts, self._tpid = plans, heap, accounts, tpid
        if self._wake is not None:
            self._wake.set()
        return len(heap)

    def queue(self) -> list[tuple[int, str, str]]:
        """(instant ns, plan id, timing id) in the order they will run."""
        with self._lock:
            return [(d.at_ns, d.plan_id, d.timing_id) for d in sorted(self._heap)]

    def scheduled(self) -> list[tuple[int, TimedEntry, tuple[tuple[str, str], ...]]]:
        """(instant ns, entry, accounts) of every queued entry, soonest first (then as they
        will run: plan weight, plan id, entry weight)."""
        with self._lock:
            due, plans = sorted(self._heap), self._plans
        out = []
        for d in due:
            plan = plans[d.plan_id]
            out += [(d.at_ns, e, plan.accounts) for e in plan.entries if e.timing.id == d.timing_id]
        return out

    def next_due_ns(self) -> int | None:
        with self._lock:
            return self._heap[0].at_ns if self._heap else None

    # -- running ---------------------------------------------------------------------------

    def run_due(self, now_ns: int | None = None) -> list[ScheduledRun]:
        """Run every instant due at ``now_ns`` (default: the clock), oldest first."""
        now = self.clock() if now_ns is None else now_ns
        runs: list[ScheduledRun] = []
        while True:
            with self._lock:
                if not self._heap or self._heap[0].at_ns > now:
                    return runs
                at = self._heap[0].at_ns
                due: list[_Due] = []
                while self._heap and self._heap[0].at_ns == at:
                    due.append(heapq.heappop(self._heap))
                plans, accounts, tpid = self._plans, self._accounts, self._tpid
            # Same instant: higher plan weight first, then plan id for a stable order.
            by_plan: dict[str, set[str]] = {}
            for d in sorted(due):
                by_plan.setdefault(d.plan_id, set()).add(d.timing_id)
            for plan_id, timing_ids in by_plan.items():
                plan = plans.get(plan_id)
                if plan is None or accounts is None:
                    continue
                entries = [e for e in plan.entries if e.timing.id in timing_ids]
                for tenant, account in plan.accounts:
                    runs.append(self._run_one(accounts, tpid, plan_id, entries, tenant, account, at))
            with self._lock:
                if self._plans is plans:  # a reload in between rebuilt the queue already
                    for d in due:
                        timing = next(e.timing for e in plans[d.plan_id].entries
                                      if e.timing.id == d.timing_id)
                        nxt = next_start(timing, d.at_ns)
                        if nxt is not None:
                            heapq.heappush(self._heap, _Due(nxt, d.neg_weight, d.plan_id,
                                                            d.timing_id))

    @staticmethod
    def _run_one(
        accounts: AccountService, tpid: str, plan_id: str, entries: list[TimedEntry],
        tenant: str, account: str, at: int,
    ) -> ScheduledRun:
        rid = request_id(tpid, plan_id, tenant, account, at)
        when = from_unix_nano(at)
        assert when is not None
        actions = tuple(e.actions_id for e in entries)

        def change(acc: Account) -> dict[str, Any]:
            events: list[ActionEvent] = []
            for e in entries:
                events += accounts.compiled.run(acc, e.actions_id, when)
            return {"plan": plan_id, "actions": list(actions),
                    "events": [{"kind": ev.kind, "data": ev.data} for ev in events]}

        try:
            applied = accounts.store.apply(tenant, account, change, request_id=rid,
                                           reason="scheduled")
        except AccountError as exc:
            # Nothing changed (the transaction rolled back); an unknown/removed account or an
            # unsupported action shows up in the log, the plan goes on for the other accounts.
            return ScheduledRun(plan_id, tenant, account, at, rid, "failed", actions,
                                error=f"{exc.word}: {exc.detail}")
        if removal_asked(applied.result.get("events", [])):
            accounts.store.remove_account(tenant, account, request_id=f"{rid}:remove")
        events = [ActionEvent(e["kind"], e["data"]) for e in applied.result.get("events", [])]
        status = "replayed" if applied.replayed else "ran"
        return ScheduledRun(plan_id, tenant, account, at, rid, status, actions,
                            [] if applied.replayed else events)

    async def run_forever(self) -> None:
        """Sleep until the next instant (at most ``max_sleep``, so clock jumps are noticed), run
        what is due in a worker thread, repeat until :meth:`stop`."""
        self._wake = asyncio.Event()
        self._stopped = False
        while not self._stopped:
            nxt = self.next_due_ns()
            delay = self.max_sleep
            if nxt is not None:
                delay = min(delay, max(0.0, (nxt - self.clock()) / SECOND))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopped:
                break
            runs = await asyncio.to_thread(self.run_due)
            if runs and self.on_runs is not None:
                self.on_runs(runs)

    def stop(self) -> None:
        self._stopped = True
        if self._wake is not None:
            self._wake.set()
