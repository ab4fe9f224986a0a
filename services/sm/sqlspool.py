"""SM's CDR spool in the StorDB (Postgres): a CDR accepted from OpenSIPS outlives the SM replica
that took it.

The same contract as the local spool (``services/sm/spool.py``), and like it only for the CDRs cdre
did not store when SM handed them over (``services/sm/cdrsend.py``): OpenSIPS sends each CDR
once, so SM answers OK only once the CDR is durable, and a forwarder hands spooled CDRs to cdre (idempotent
on (CGRID, RunID)) until it has stored them. Here the spool is the ``sm_cdr_spool`` table, an
outbox every live replica forwards (``cgrpy/storage/outbox.py``: claimed for a while with
``FOR UPDATE SKIP LOCKED``, deleted once stored). A replica inserts its CDRs already claimed by
itself for ``own_lease_s`` and forwards them from memory, so the hot path is one insert and one
delete per batch, no claim; the others claim them only once that lease ran out: the CDRs of a
replica that died are forwarded by another one within ``own_lease_s`` + ``poll_s``.

Writes are group-committed: one writer thread inserts everything queued while its previous
transaction committed, in one transaction. When the StorDB refuses the insert, the CDR goes to the
local file spool instead (``fallback``, forwarded by this replica), so a Postgres outage loses no
CDR either; only the two failing together (the StorDB down and this replica dying before it
forwarded its local spool) would.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, insert, select, update

from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.runtime.logs import get_logger
from cgrpy.storage.groupcommit import drain, settle
from cgrpy.storage.models.sm import SmCdrSpoolRow
from cgrpy.storage.outbox import claim_statement
from cgrpy.storage.pgconn import PgConnection, compiled, libpq_url
from cgrpy.units import from_unix_nano, to_unix_nano
from services.sm.spool import CdrSpool, DeliverBatch, Flags, _deliver_all

log = get_logger("sm")
T = SmCdrSpoolRow.__table__
_COLUMNS = ("tenant", "event_id", "time_ns", "fields", "flags", "lease_until_ns", "attempts")
_INSERT = compiled(insert(T).values({c: bindparam(c) for c in _COLUMNS}).returning(T.c.id))
_CLAIM = compiled(claim_statement(T, returning=(T.c.tenant, T.c.event_id, T.c.time_ns, T.c.fields,
                                                T.c.flags)))
_ACK = compiled(delete(T).where(T.c.id == func.any(bindparam("ids"))))
_RELEASE = compiled(update(T).where(T.c.id == func.any(bindparam("ids"))).values(
    lease_until_ns=bindparam("b_until")))
_Item = tuple[dict[str, Any], tuple[CGREvent, Flags], "Future[int]"]


class SqlCdrSpool:
    def __init__(self, engine: Engine, fallback: CdrSpool, *, batch_size: int = 100,
                 window_s: float = 0.0, lease_s: float = 30.0, own_lease_s: float = 5.0,
                 poll_s: float = 1.0) -> None:
        self.engine = engine
        self.fallback = fallback
        # one connection for the writer thread's inserts, one for the forwarder's claims
        self._pg_write = PgConnection(libpq_url(engine), "cgrpy-sm-spool")
        self._pg_forward = PgConnection(libpq_url(engine), "cgrpy-sm-spool-forward")
        self.batch_size = batch_size
        self.window_s = window_s
        self.lease_ns = int(lease_s * 1e9)
        self.own_lease_ns = int(own_lease_s * 1e9)
        # rows this replica committed and has not tried to deliver yet (appended by the writer)
        self._fresh: collections.deque[int] = collections.deque()
        self.poll_s = poll_s
        # row id -> the CDR as handed to submit(): spares the forwarder decoding its own rows
        self._kept: dict[int, tuple[CGREvent, Flags]] = {}
        self._writes: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="sm-sqlspool-writer", daemon=True)
        self._writer.start()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._claimed: list[int] = []
        self.commits = 0
        self.delivered = 0

    # --- writes ---------------------------------------------------------------------------------

    def submit(self, event: CGREvent, flags: Flags) -> Future[int]:
        """Queue the CDR; the future holds its row id once it is committed (durable)."""
        row = {"tenant": event.tenant, "event_id": event.id, "time_ns": to_unix_nano(event.time),
               "fields": dumps_exact(event.event), "flags": dumps_exact(flags),
               "lease_until_ns": time.time_ns() + self.own_lease_ns, "attempts": 0}
        kept = (CGREvent(event.tenant, event.id, event.time, dict(event.event)), dict(flags))
        fut: Future[int] = Future()
        self._writes.put((row, kept, fut))
        fut.add_done_callback(lambda _f: self._wake_soon())
        return fut

    def put(self, event: CGREvent, flags: Flags) -> int:
        return self.submit(event, flags).result()

    async def aput(self, event: CGREvent, flags: Flags) -> int:
        return await asyncio.wrap_future(self.submit(event, flags))

    def _write_loop(self) -> None:
        while True:
            first = self._writes.get()
            if first is None:
                return
            items, stop = drain(self._writes, first)
            self._commit(items)
            if stop:
                return

    def _commit(self, items: list[_Item]) -> None:
        def write(conn: Any) -> list[int]:
            with conn.cursor() as cur:
                cur.executemany(_INSERT, [i[0] for i in items], returning=True)
                return [int(c.fetchone()[0]) for c in cur.results()]

        try:
            ids = self._pg_write.run(write)
        except Exception as exc:  # noqa: BLE001 - the StorDB refused: the local spool keeps them
            log.warning("cdr.spool.stordb_failed", cdrs=len(items),
                        error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            for _row, (ev, flags), fut in items:
                local = self.fallback.submit(ev, flags)
                local.add_done_callback(lambda f, fut=fut: settle(fut, result=-1) if f.exception() is None
                                        else settle(fut, exc=f.exception()))
            return
        self.commits += 1
        for rid, (_row, kept, fut) in zip(ids, items, strict=True):
            self._kept[rid] = kept
            self._fresh.append(rid)
            settle(fut, result=rid)

    def _wake_soon(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    # --- reads ----------------------------------------------------------------------------------

    def depth(self) -> int:
        """CDRs waiting in the shared spool (every replica's) and in this replica's local one."""
        try:
            with self.engine.connect() as conn:
                shared = int(conn.execute(select(func.count()).select_from(T)).scalar_one())
        except Exception:  # noqa: BLE001 - a gauge: the StorDB away shows as its local part
            shared = 0
        return shared + self.fallback.depth()

    def _claim(self) -> list[tuple[int, CGREvent, Flags]]:
        now = time.time_ns()
        params = {"b_now": now, "b_limit": self.batch_size, "b_until": now + self.lease_ns}
        rows = self._pg_forward.run(lambda conn: conn.execute(_CLAIM, params).fetchall())
        out = []
        # (id, attempts, tenant, event_id, time_ns, fields, flags)
        for rid, _attempts, tenant, event_id, time_ns, fields, flags in sorted(rows):
            kept = self._kept.get(rid)
            if kept is None:  # spooled by another replica (or before a restart)
                kept = (CGREvent(tenant, event_id, from_unix_nano(time_ns), loads_exact(fields)),
                        loads_exact(flags))
            out.append((rid, *kept))
        return out

    def _settle(self, done: list[int], failed: list[int], retry_in_ns: int) -> None:
        def write(conn: Any) -> None:
            if done:
                conn.execute(_ACK, {"ids": done})
            if failed:
                conn.execute(_RELEASE, {"ids": failed, "b_until": time.time_ns() + retry_in_ns})

        self._pg_forward.run(write)
        for i in done:
            self._kept.pop(i, None)

    # --- forwarding -----------------------------------------------------------------------------

    def start(self, deliver: DeliverBatch, *, max_backoff_s: float = 30.0) -> None:
        self._loop = asyncio.get_running_loop()
        self.fallback.start(deliver, max_backoff_s=max_backoff_s)
        self._task = asyncio.create_task(self._forward(deliver, max_backoff_s), name="sm-sqlspool")

    async def _forward(self, deliver: DeliverBatch, max_backoff_s: float) -> None:
        backoff = 0.0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
                polled = False
            except TimeoutError:
                polled = True  # look for rows of other replicas (dead) and for failed ones
            self._wake.clear()
            if self.window_s > 0 and not polled:  # CDRs of calls ending together travel together
                await asyncio.sleep(self.window_s)
            try:
                taken, ok = await self._forward_once(deliver, backoff, claim=polled)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - StorDB away: rows stay, try again later
                log.warning("cdr.spool.forward_failed", error=str(exc).splitlines()[0] if str(exc) else "")
                taken, ok = 0, False
            backoff = 0.0 if ok else min(max(backoff * 2, 0.2), max_backoff_s)
            if ok and (self._fresh or (polled and taken >= self.batch_size)):
                self._wake.set()  # more waiting
            if backoff:
                await asyncio.sleep(backoff)

    def _take_fresh(self) -> list[tuple[int, CGREvent, Flags]]:
        out = []
        while self._fresh and len(out) < self.batch_size:
            rid = self._fresh.popleft()
            kept = self._kept.get(rid)
            if kept is not None:
                out.append((rid, *kept))
        return out

    async def _forward_once(self, deliver: DeliverBatch, backoff: float, *, claim: bool) -> tuple[int, bool]:
        batch = self._take_fresh()
        if not batch and claim:
            batch = await asyncio.to_thread(self._claim)
        if not batch:
            return 0, True
        self._claimed = [b[0] for b in batch]
        outcomes = await _deliver_all(deliver, [(ev, flags) for _, ev, flags in batch])
        done = [b[0] for b, o in zip(batch, outcomes, strict=True) if o is None]
        failed = [b[0] for b, o in zip(batch, outcomes, strict=True) if o is not None]
        retry_ns = int(min(max(backoff * 2, 0.2), 30.0) * 1e9)
        await asyncio.to_thread(self._settle, done, failed, retry_ns)
        self._claimed = []
        self.delivered += len(done)
        if failed:
            err = next(o for o in outcomes if o is not None)
            log.warning("cdr.spool.retry", failed=len(failed), delivered=len(done), error=str(err))
        return len(batch), not failed

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._claimed:  # stopped mid-delivery: free them now rather than when the lease ends
            claimed, self._claimed = self._claimed, []
            try:
                await asyncio.to_thread(self._settle, [], claimed, 0)
            except Exception as exc:  # noqa: BLE001 - the lease frees them later anyway
                log.warning("cdr.spool.release_failed", rows=len(claimed), error=str(exc))
        self._writes.put(None)
        await asyncio.to_thread(self._writer.join, 10)
        self._pg_write.close()
        self._pg_forward.close()
        await self.fallback.close()
