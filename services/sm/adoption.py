"""An SM replica adopts the sessions of replicas that died (Postgres StorDB only).

A sweep lists the owners that still have sessions in ``sm_sessions``, takes the owner lock of each
one that is gone (``OwnerLease.try_take``), re-tags its rows and hands the sessions to
``SessionManager.restore``: an active one is charged again once the switch confirms it
(GetActiveSessionIDs; the debit loop then catches up on the time nobody charged it, with the same
request ids), a Terminate settles it at the usage the switch reports, a closed one waits for its
ProcessCDR. Sweeps run every ``interval_s`` and at once when a request names a session this
replica does not know (OpenSIPS failed over to it), so a Terminate or ProcessCDR sent here right
after the owner died finds its session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from cgrpy.runtime.logs import get_logger
from services.sm.owners import OwnerLease
from services.sm.sessions.core import Session, SessionManager
from services.sm.sqlstore import SqlSessionStore

log = get_logger("sm")


class Adopter:
    def __init__(self, sm: SessionManager, store: SqlSessionStore, lease: OwnerLease, *,
                 on_adopted: Callable[[list[Session]], None], interval_s: float = 0.5) -> None:
        self.sm = sm
        self.store = store
        self.lease = lease
        self.on_adopted = on_adopted
        self.interval_s = interval_s
        self._inflight: asyncio.Task[int] | None = None
        self._inflight_at = 0.0  # when the sweep in flight started
        self._task: asyncio.Task[None] | None = None
        self.adopted = 0  # sessions adopted so far (metrics, tests)
        self.last_adoption: dict[str, float | int | str] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="sm-adopter")

    async def close(self) -> None:
        for t in (self._task, self._inflight):
            if t is not None:
                t.cancel()
                await asyncio.gather(t, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - StorDB away: the next sweep tries again
                log.warning("sm.adopt.failed", error=str(exc).splitlines()[0] if str(exc) else "")
            await asyncio.sleep(self.interval_s)

    async def sweep(self, *, since: float | None = None) -> int:
        """A sweep that started at ``since`` or later (shared by the callers waiting for one);
        returns the sessions it adopted."""
        since = time.monotonic() if since is None else since
        while True:
            task = self._inflight
            if task is not None and not task.done():
                if self._inflight_at >= since:
                    return await asyncio.shield(task)
                await asyncio.gather(asyncio.shield(task), return_exceptions=True)
                continue
            self._inflight_at = time.monotonic()
            self._inflight = asyncio.ensure_future(self._sweep())

    async def missing(self) -> None:
        """A request named an unknown session: adopt now if its owner died (errors ignored).
        The sweep must start after the request came: one that began earlier may have seen the
        owner still alive."""
        try:
            await self.sweep(since=time.monotonic())
        except Exception as exc:  # noqa: BLE001 - the request goes on as for an unknown session
            log.warning("sm.adopt.failed", error=str(exc).splitlines()[0] if str(exc) else "")

    async def _sweep(self) -> int:
        started = time.monotonic()
        found = await asyncio.to_thread(self._claim)
        total = 0
        for dead, sessions in found:
            active = self.sm.restore(sessions)
            total += len(sessions)
            self.last_adoption = {"from": dead, "sessions": len(sessions), "active": len(active),
                                  "seconds": round(time.monotonic() - started, 4)}
            log.warning("sm.adopted", owner=dead, sessions=len(sessions), active=len(active))
            self.on_adopted(active)
        self.adopted += total
        return total

    def _claim(self) -> list[tuple[str, list[Session]]]:
        out = []
        for owner in self.store.owners():
            if self.lease.try_take(owner):
                out.append((owner, self.store.adopt(owner)))
        return out
