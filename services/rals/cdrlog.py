"""``*cdrlog`` CDRs handed to cdre (the CDR service) through a durable outbox.

A committed action set's ``*cdrlog`` CDRs (built by ``accounts/actions.py``, one per balance
action, already priced: Cost = the amount the balance moved) are written to the
``rals_cdrlog_outbox`` table, then a deliverer sends them to cdre's ``ProcessCDRs`` with
attributes, chargers and RALs switched off: stored as they are, never debited again. StatS and
ThresholdS are off too (a top-up is not a call, and a threshold whose actions log CDRs must not
fire itself again). A row is deleted only once cdre answered for it, stored or duplicate (cdre
is idempotent on the CDR's (CGRID, RunID), and the CGRID is fixed when the set runs, so a row
delivered twice is stored once). While cdre is unreachable the rows stay and are retried with a
growing pause, logged and counted (``cgrpy_rals_cdrlog_total``); the outbox is shared by every
RALs process (``cgrpy/storage/outbox.py``: claimed for a while, ``SKIP LOCKED`` on Postgres), so
the rows of a process that died are delivered by another one, or by it after its restart.

Nothing here blocks a reply: the insert runs in a thread after the commit, in the background.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Engine, bindparam, delete, insert, update

from cgrates.v1 import cdre_pb2
from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.runtime.logs import get_logger
from cgrpy.storage.models.accounts import rals_cdrlog_outbox as T
from cgrpy.storage.outbox import claim_statement
from cgrpy.wire import event_to_pb

log = get_logger("rals.cdrlog")
# Stored as given: no AttributeS, no ChargerS runs, no rating or debit, no StatS/ThresholdS.
CDRLOG_FLAGS = ("*attributes:false", "*chargers:false", "*rals:false", "*store:true",
                "*stats:false", "*thresholds:false")
CDRLOG_CDRS = Counter("cgrpy_rals_cdrlog_total",
                      "*cdrlog CDRs: queued, stored by cdre, failed deliveries (retried)", ["outcome"])

_CLAIM = claim_statement(T, returning=(T.c.event,))
_DELETE = delete(T).where(T.c.id == bindparam("b_id"))
_RETRY = update(T).where(T.c.id == bindparam("b_id")).values(lease_until_ns=bindparam("b_until"))

# ProcessCDRs([...]) -> per item: None (stored or duplicate) or the error text
Sender = Callable[[Sequence[cdre_pb2.ProcessCDRRequest]], Awaitable[list[str | None]]]


def cdr_request(fields: dict[str, Any]) -> cdre_pb2.ProcessCDRRequest:
    """The ProcessCDR of one ``*cdrlog`` CDR (its fields as the action built them)."""
    ev = CGREvent(tenant=str(fields.get("Tenant") or "cgrates.org"),
                  id=str(fields.get("OriginID") or fields.get("CGRID")), event=dict(fields))
    return cdre_pb2.ProcessCDRRequest(event=event_to_pb(ev), flags=list(CDRLOG_FLAGS))


def retry_pause_s(attempts: int) -> float:
    """Pause before the next try of a row tried ``attempts`` times: 1 s doubling, 5 min at most."""
    return float(min(2 ** max(attempts - 1, 0), 300))


class CdrlogOutbox:
    """``await add(cdrs)`` keeps them durably; ``start()`` delivers until ``close()``."""

    def __init__(self, engine: Engine, send: Sender, *, batch: int = 100, lease_s: float = 30.0,
                 poll_s: float = 1.0) -> None:
        self.engine = engine
        self.send = send
        self.batch = batch
        self.lease_ns = int(lease_s * 1e9)
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def add(self, cdrs: Sequence[dict[str, Any]]) -> None:
        """Write the CDRs to the outbox (durable once this returns), then wake the deliverer.
        A StorDB that refuses the insert is tried again, the CDRs kept in memory meanwhile."""
        pause = 0.5
        while True:
            try:
                return await self._add(cdrs)
            except Exception as exc:  # noqa: BLE001 - the StorDB away: keep them, try again
                CDRLOG_CDRS.labels(outcome="outbox_write_failed").inc(len(cdrs))
                log.error("cdrlog.outbox_write_failed", cdrs=len(cdrs), retry_in_s=pause,
                          error=str(exc).splitlines()[0] if str(exc) else repr(exc))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)

    async def _add(self, cdrs: Sequence[dict[str, Any]]) -> None:
        rows = [{"cgrid": str(c.get("CGRID", "")), "run_id": str(c.get("RunID", "")),
                 "event": dumps_exact(c), "lease_until_ns": 0, "attempts": 0} for c in cdrs]
        if not rows:
            return

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(insert(T), rows)

        await asyncio.to_thread(write)
        CDRLOG_CDRS.labels(outcome="queued").inc(len(rows))
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rals-cdrlog")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.deliver_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the StorDB away: try again later
                log.warning("cdrlog.outbox_failed", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
                busy = False
            if busy:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            except TimeoutError:
                pass

    def _claim(self) -> list[tuple[int, int, dict[str, Any]]]:
        now = time.time_ns()
        with self.engine.begin() as conn:
            rows = conn.execute(_CLAIM, {"b_now": now, "b_limit": self.batch,
                                         "b_until": now + self.lease_ns}).all()
        return sorted((int(r.id), int(r.attempts), loads_exact(r.event)) for r in rows)

    def _settle(self, done: list[int], retry: list[tuple[int, int]]) -> None:
        now = time.time_ns()
        with self.engine.begin() as conn:
            if done:
                conn.execute(_DELETE, [{"b_id": i} for i in done])
            if retry:
                conn.execute(_RETRY, [{"b_id": i, "b_until": now + int(retry_pause_s(n) * 1e9)}
                                      for i, n in retry])

    async def deliver_once(self) -> bool:
        """Claim one batch and hand it to cdre; True when a full batch was claimed (more may
        wait). Rows cdre did not take wait :func:`retry_pause_s` and are kept."""
        claimed = await asyncio.to_thread(self._claim)
        if not claimed:
            return False
        try:
            errors = await self.send([cdr_request(ev) for _, _, ev in claimed])
        except Exception as exc:  # noqa: BLE001 - cdre unreachable: every row waits its turn
            errors = [str(exc) or type(exc).__name__] * len(claimed)
        done = [i for (i, _, _), err in zip(claimed, errors, strict=True) if err is None]
        retry = [(i, n) for (i, n, _), err in zip(claimed, errors, strict=True) if err is not None]
        await asyncio.to_thread(self._settle, done, retry)
        if done:
            CDRLOG_CDRS.labels(outcome="stored").inc(len(done))
        if retry:
            CDRLOG_CDRS.labels(outcome="failed").inc(len(retry))
            first = next(err for err in errors if err is not None)
            log.error("cdrlog.delivery_failed", cdrs=len(retry), attempts=max(n for _, n in retry),
                      retry_in_s=retry_pause_s(min(n for _, n in retry)), error=first)
        return len(claimed) >= self.batch
