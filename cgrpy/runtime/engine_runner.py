"""Running a service's sync engine off the event loop while that engine calls other services
(StatS, ThresholdS, SupplierS, ResourceS), and its errors as :class:`CGRError`.

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
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cgrpy.errors import CGRError
from cgrpy.filters.errors import FilterError
from cgrpy.tariffplan.rows import ProfileError

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
