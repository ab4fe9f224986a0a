"""What the StatS, ThresholdS and SupplierS gRPC servers share: running their sync engines off the
event loop, letting those engines call other services, error mapping, indexed profile lookup and
the CGRateS JSON pieces of their profiles.

Why a worker thread plus a bridge (rather than gathering remote data before calling an engine):
the engines decide *during* a call what they need (SupplierS only prices suppliers that survive
earlier checks, ThresholdS only runs the actions of thresholds that fire, in order, under the
engine lock). Running the engine in a worker thread and letting its injected callables submit the
async gRPC call to the service's own loop (``asyncio.run_coroutine_threadsafe``) keeps the
engines' semantics exact and the loop free while they wait. Each server has its own small pool
so services served in one process (tests) cannot starve each other's engine calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cgrpy.config import Settings
from cgrpy.errors import CGRError
from cgrpy.filters.errors import FilterError
from cgrpy.filters.filters import FilterS
from cgrpy.filters.selection import ProfileEntry, ProfileIndex
from cgrpy.gotime import go_time
from cgrpy.tariffplan.columns import TariffPlanRows
from services.stats.profile_rows import ActivationInterval, CandidateIDs, ProfileError

T = TypeVar("T")


def to_cgr_error(exc: BaseException) -> CGRError:
    """An engine/profile/filter error as the runtime's CGRError (its text starts with the word)."""
    if isinstance(exc, CGRError):
        return exc
    return CGRError("SERVER_ERROR", str(exc) or type(exc).__name__)


class NeedsWorker(BaseException):  # noqa: N818 - a signal, not an error
    """Raised by ``call_remote`` in engine code running inline on the loop: rerun it in a worker.

    A BaseException so that the engines' ``except Exception`` (a failed remote call is data to
    them) lets it through."""


def on_loop() -> bool:
    """True on an event loop's thread (engine code run inline), False in a worker."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class EngineRunner:
    """Runs sync engine code in a private worker pool; ``call_remote`` lets that code await a
    coroutine on the service's loop and get its result (or exception) back."""

    def __init__(self, name: str, *, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-engine")
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """``fn(*args, **kw)`` in a worker (context variables carried); engine errors -> CGRError."""
        self._loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kw)
        try:
            return await self._loop.run_in_executor(self._pool, call)
        except (CGRError, ProfileError, FilterError) as exc:
            raise to_cgr_error(exc) from None

    async def run_inline(self, fn: Callable[..., T], *args: Any, lock: Any = None, **kw: Any) -> T:
        """``fn(*args, **kw)`` on the loop thread; in a worker when ``lock`` (the engine's) is held
        by a worker, or when ``fn`` asks for remote data (``call_remote`` raises
        :class:`NeedsWorker` on the loop, and ``fn`` runs again from the start in a worker). So
        only for ``fn`` that changes nothing before it calls out, and that blocks on no I/O."""
        self._loop = asyncio.get_running_loop()
        if lock is not None and not lock.acquire(blocking=False):
            return await self.run(fn, *args, **kw)
        try:
            return fn(*args, **kw)
        except NeedsWorker:
            pass
        except (CGRError, ProfileError, FilterError) as exc:
            raise to_cgr_error(exc) from None
        finally:
            if lock is not None:
                lock.release()
        return await self.run(fn, *args, **kw)

    def submit_background(self, fn: Callable[[], None]) -> Any:
        """ThresholdS ``spawn``: async actions, with the caller's context variables."""
        ctx = contextvars.copy_context()
        return self._pool.submit(ctx.run, fn)

    def call_remote(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """From a worker thread: run ``coro`` on the service loop and wait for it."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise CGRError("SERVER_ERROR", "service loop not running")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise NeedsWorker()  # waiting here would deadlock the loop: see run_inline
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def filters_of(rows: TariffPlanRows) -> FilterS:
    return FilterS.from_tariffplan(rows)


def candidate_index(
    filters: FilterS,
    profiles: Iterable[Any],
    settings: Settings,
    service: str,
) -> CandidateIDs:
    """FilterS's index over ``profiles`` (objects with tenant/id/filter_ids/weight), honouring
    ``<service>_string_indexed_fields`` / ``<service>_prefix_indexed_fields``."""
    index: ProfileIndex[str] = ProfileIndex(
        filters,
        [ProfileEntry(p.tenant, p.id, tuple(p.filter_ids), None, p.weight, p.id) for p in profiles],
        string_fields=settings.get(f"{service}_string_indexed_fields"),
        prefix_fields=settings.get(f"{service}_prefix_indexed_fields"),
    )
    return index.candidate_ids


def activation_json(a: ActivationInterval | None) -> dict[str, str] | None:
    if a is None:
        return None
    return {"ActivationTime": go_time(a.activation), "ExpiryTime": go_time(a.expiry)}


def ids_or_none(ids: Sequence[str]) -> list[str] | None:
    return list(ids) or None


class RecentIds:
    """Ids of events processed lately, oldest forgotten first (bounded memory), so a batch
    sender that delivers at least once (cdre's outbox) has a repeat skipped rather than counted
    twice. The window is per process: a repeat after a restart is counted again."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, event_id: str) -> bool:
        with self._lock:
            return event_id in self._ids

    def add(self, event_id: str) -> None:
        with self._lock:
            self._ids[event_id] = None
            if len(self._ids) > self.size:
                self._ids.popitem(last=False)


@dataclass
class BatchItem(Generic[T]):
    """One event's outcome in a batch ``ProcessEvents``."""

    event_id: str
    result: T | None = None
    error: str = ""  # the CGRateS error word ProcessEvent would have answered
    duplicate: bool = False


def process_each(
    fn: Callable[[Any, Any], T], items: Sequence[tuple[Any, Any]], recent: RecentIds
) -> list[BatchItem[T]]:
    """Run ``fn(event, ids)`` for every item in order (in the engine thread), skipping event
    ids in ``recent``; an engine error is that item's answer, not the batch's. An id is
    remembered as soon as its event was processed, so a batch that fails half way and is sent
    again skips the half already done."""
    out: list[BatchItem[T]] = []
    for ev, ids in items:
        eid = str(ev.id or "")
        if eid and eid in recent:
            out.append(BatchItem(eid, duplicate=True))
            continue
        try:
            item = BatchItem(eid, result=fn(ev, ids))
        except (CGRError, ProfileError, FilterError) as exc:
            item = BatchItem(eid, error=to_cgr_error(exc).word)
        if eid:
            recent.add(eid)
        out.append(item)
    return out
