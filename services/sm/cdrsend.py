"""SM's CDR hand-off: straight to cdre, into the spool only when cdre did not store them.

OpenSIPS sends each CDR once, so SM answers only once the CDR is committed somewhere. cdre answers
ProcessCDRs after its own commit, so its "stored" is as good as the spool's: on the success path
a CDR costs one RPC and no spool write. CDRs put in the same turn of the event loop (the runs of
one call, calls ending together), or within ``window_s`` of each other when it is above 0, travel
in one ProcessCDRs of at most ``batch_size``. The default waits no longer than that turn: every
ProcessCDR answer waits for the batch, and OpenSIPS sends a worker's next request only after it,
so a wait here holds up the worker; at a few hundred calls/s a 2 ms window grouped fewer than one
other call's CDRs.

A CDR cdre did not confirm within ``timeout_s`` (down, slow, a transport error, or a per-CDR
error, a refused CDR included) goes into the spool exactly as before this path existed, and the
caller is answered after the spool's commit; the spool's forwarder then delivers it, retrying
refused ones as it always did. cdre stores a (CGRID, RunID) once, so a CDR that cdre stored after
the deadline and that the spool delivers again is still one CDR.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from cgrpy.event import CGREvent
from cgrpy.runtime.logs import get_logger
from services.sm.spool import Flags, _deliver_all

log = get_logger("sm")

DIRECT = "direct"
SPOOLED = "spooled"
# Sends CDRs to cdre within a timeout (s); per CDR, in order: None = committed by cdre, else why not.
SendBatch = Callable[[list[tuple[CGREvent, Flags]], float], Awaitable[Sequence[BaseException | None]]]
_Pending = tuple[CGREvent, Flags, "asyncio.Future[str]"]


class Spool(Protocol):
    async def aput(self, event: CGREvent, flags: Flags) -> int: ...


class CdrSender:
    def __init__(self, send: SendBatch, spool: Spool, *, timeout_s: float, window_s: float = 0.0,
                 batch_size: int = 100) -> None:
        self._send = send
        self.spool = spool
        self.timeout_s = timeout_s
        self.window_s = window_s
        self.batch_size = batch_size
        self._queue: list[_Pending] = []
        self._timer: asyncio.Handle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts = {DIRECT: 0, SPOOLED: 0}  # CDRs by the path that committed them (metrics)

    async def put(self, event: CGREvent, flags: Flags) -> str:
        """Returns DIRECT or SPOOLED once the CDR is committed (in cdre or in the spool); raises
        when neither took it (the spool's commit failed too)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        # a shallow copy: what cdre or the spool gets is what was handed over now
        self._queue.append((CGREvent(event.tenant, event.id, event.time, dict(event.event)), dict(flags), fut))
        if len(self._queue) >= self.batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = (loop.call_later(self.window_s, self._flush) if self.window_s > 0
                           else loop.call_soon(self._flush))
        # shielded: a caller giving up does not stop the hand-off (it completes either way)
        return await asyncio.shield(fut)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            batch, self._queue = self._queue[:self.batch_size], self._queue[self.batch_size:]
            task = asyncio.get_running_loop().create_task(self._deliver(batch), name="sm-cdr-direct")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, batch: list[_Pending]) -> None:
        items = [(ev, flags) for ev, flags, _ in batch]
        outcomes = await _deliver_all(self._attempt, items)
        spool: list[tuple[_Pending, BaseException]] = []
        for item, why in zip(batch, outcomes, strict=True):
            if why is None:
                self.counts[DIRECT] += 1
                _answer(item[2], DIRECT)
            else:
                spool.append((item, why))
        if not spool:
            return
        first, why = spool[0]
        log.warning("cdr.direct.spooled", cdrs=len(spool), of=len(batch), origin_id=first[0].get("OriginID"),
                    error=str(why) or type(why).__name__)
        await asyncio.gather(*(self._spool_one(item) for item, _ in spool))

    async def _attempt(self, items: list[tuple[CGREvent, Flags]]) -> Sequence[BaseException | None]:
        # the client's deadline ends the try; this bound also covers a client that ignores it
        return await asyncio.wait_for(self._send(items, self.timeout_s), self.timeout_s + 0.05)

    async def _spool_one(self, item: _Pending) -> None:
        ev, flags, fut = item
        try:
            await self.spool.aput(ev, flags)
        except Exception as exc:  # noqa: BLE001 - handed to the caller: no OK without a commit
            if not fut.done():
                fut.set_exception(exc)
            return
        self.counts[SPOOLED] += 1
        _answer(fut, SPOOLED)

    async def close(self) -> None:
        """Hand off what is queued and wait for every hand-off in flight (each bounded by the
        timeout and the spool's commit)."""
        self._flush()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _answer(fut: asyncio.Future[str], path: str) -> None:
    if not fut.done():
        fut.set_result(path)
