"""SM's CDR spool: a CDR accepted from OpenSIPS is never lost.

OpenSIPS sends each CDR once and does not retry. SM first hands a CDR straight to cdre
(``services/sm/cdrsend.py``); one cdre did not store in time comes here: SM writes it to a local
SQLite file (fsync'd by SQLite's commit) *before* answering OK, and a forwarder hands spooled
CDRs to cdre, retrying with backoff until cdre has stored them. cdre is idempotent on (CGRID, RunID), so a CDR delivered
twice (crash after delivery, before the spool row was deleted) is still stored and charged once.
The spool is a plain file next to the service (``CGRPY_SM_SPOOL_PATH``), so it works even when
the StorDB is down.

Group commit: one writer thread owns every write. It takes all the inserts (and deletes) queued
while its previous commit was being fsync'd and commits them together, so a busy SM pays one
fsync per batch instead of one per CDR, and each caller is answered only once its own row is
committed. The forwarder sends up to ``batch_size`` CDRs in one delivery (cdre's ProcessCDRs)
and deletes those cdre stored; the others stay for the next try. Woken by a new CDR, it first
waits ``window_s`` so that the CDRs of calls ending together travel in one message (each message
between services costs far more than its size), and it keeps the CDRs it was handed in memory
until they are delivered, so only a restart reads them back from the file.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.runtime.logs import get_logger
from cgrpy.storage.groupcommit import drain, settle
from cgrpy.units import from_unix_nano, to_unix_nano

log = get_logger("sm")

Flags = dict[str, bool]
# Delivers many CDRs; answers per CDR, in order: None = stored by cdre, else why not.
DeliverBatch = Callable[[list[tuple[CGREvent, Flags]]], Awaitable[Sequence[BaseException | None]]]
_Write = Callable[[sqlite3.Connection], Any]
_INSERT = "INSERT INTO cdr_spool (tenant, event_id, time_ns, fields, flags) VALUES (?, ?, ?, ?, ?)"


class CdrSpool:
    def __init__(self, path: str | Path, *, batch_size: int = 100, window_s: float = 0.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self.window_s = window_s
        # row id -> the CDR as handed to submit(): spares the forwarder decoding what it was given
        self._kept: dict[int, tuple[CGREvent, Flags]] = {}
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cdr_spool (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "tenant TEXT, event_id TEXT, time_ns INTEGER, fields TEXT, flags TEXT, attempts INTEGER DEFAULT 0)"
        )
        self._writes: queue.SimpleQueue[tuple[_Write, Future[Any]] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="sm-spool-writer", daemon=True)
        self._writer.start()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed by the writer (tests, metrics)

    # --- writes (group-committed) -----------------------------------------------------------

    def submit(self, event: CGREvent, flags: Flags) -> Future[int]:
        """Queue the CDR; the future holds its row id once it is committed (durable)."""
        row = (event.tenant, event.id, to_unix_nano(event.time), dumps_exact(event.event),
               dumps_exact(flags))
        # a shallow copy: the fields' values are not changed in place once a CDR is handed over
        kept = (CGREvent(event.tenant, event.id, event.time, dict(event.event)), dict(flags))

        def insert(db: sqlite3.Connection) -> int:
            rid = int(db.execute(_INSERT, row).lastrowid or 0)
            self._kept[rid] = kept  # before the commit: the forwarder reads only committed ids
            return rid

        fut = self._write(insert)
        fut.add_done_callback(lambda _f: self._wake_soon())
        return fut

    def put(self, event: CGREvent, flags: Flags) -> int:
        """:meth:`submit` and wait: returns once the CDR is durable."""
        return self.submit(event, flags).result()

    async def aput(self, event: CGREvent, flags: Flags) -> int:
        return await asyncio.wrap_future(self.submit(event, flags))

    def _write(self, fn: _Write) -> Future[Any]:
        fut: Future[Any] = Future()
        self._writes.put((fn, fut))
        return fut

    def _write_loop(self) -> None:
        while True:
            first = self._writes.get()
            if first is None:
                return
            ops, stop = drain(self._writes, first)
            self._commit(ops)
            if stop:
                return

    def _commit(self, ops: list[tuple[_Write, Future[Any]]]) -> None:
        results: list[Any] = []
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    results = [fn(self._db) for fn, _ in ops]
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
        except Exception as exc:  # noqa: BLE001 - handed to the callers
            if len(ops) > 1:  # one bad write must not fail the others: alone, one by one
                for op in ops:
                    self._commit([op])
                return
            settle(ops[0][1], exc=exc)
            return
        self.commits += 1
        for (_, fut), res in zip(ops, results, strict=True):
            settle(fut, result=res)

    def _wake_soon(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    # --- reads --------------------------------------------------------------------------------

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM cdr_spool").fetchone()[0])

    def _batch(self, limit: int) -> list[tuple[int, CGREvent, Flags]]:
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM cdr_spool ORDER BY id LIMIT ?", (limit,))]
            cold = [i for i in ids if i not in self._kept]
            rows = {r[0]: r for r in self._db.execute(
                "SELECT id, tenant, event_id, time_ns, fields, flags FROM cdr_spool WHERE id IN "
                f"({','.join('?' * len(cold))})", cold)} if cold else {}
        out: list[tuple[int, CGREvent, Flags]] = []
        for i in ids:
            kept = self._kept.get(i)
            if kept is None:  # spooled before a restart
                r = rows[i]
                kept = (CGREvent(r[1], r[2], from_unix_nano(r[3]), loads_exact(r[4])), loads_exact(r[5]))
            out.append((i, *kept))
        return out

    # --- forwarding -----------------------------------------------------------------------------

    def start(self, deliver: DeliverBatch, *, max_backoff_s: float = 30.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._forward(deliver, max_backoff_s))

    async def _forward(self, deliver: DeliverBatch, max_backoff_s: float) -> None:
        backoff, gathered = 0.2, False
        while True:
            self._wake.clear()  # before reading: a put committed after this wakes us again
            batch = await asyncio.to_thread(self._batch, self.batch_size)
            if not batch:
                await self._wake.wait()
                continue
            if self.window_s > 0 and len(batch) < self.batch_size and not gathered:
                gathered = True  # let the CDRs of calls ending together gather, then read again
                await asyncio.sleep(self.window_s)
                continue
            gathered = False
            outcomes = await _deliver_all(deliver, [(ev, flags) for _, ev, flags in batch])
            done = [b[0] for b, o in zip(batch, outcomes, strict=True) if o is None]
            failed = [(b, o) for b, o in zip(batch, outcomes, strict=True) if o is not None]
            await asyncio.wrap_future(self._write(functools.partial(_settle_rows, done=done, failed=failed, kept=self._kept)))
            if not failed:
                backoff = 0.2
                continue
            (_, ev, _), err = failed[0]
            log.warning("cdr.spool.retry", failed=len(failed), delivered=len(done),
                        origin_id=ev.get("OriginID"), error=str(err), retry_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._writes.put(None)
        await asyncio.to_thread(self._writer.join, 10)
        with self._lock:
            self._db.close()


async def _deliver_all(
    deliver: DeliverBatch, items: list[tuple[CGREvent, Flags]]
) -> Sequence[BaseException | None]:
    try:
        outcomes = await deliver(items)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure: keep them all, retry later
        return [exc] * len(items)
    if len(outcomes) != len(items):
        err = RuntimeError(f"delivery answered {len(outcomes)} of {len(items)} CDRs")
        return [err] * len(items)
    return outcomes


def _settle_rows(db: sqlite3.Connection, done: list[int], failed: list[Any], kept: dict[int, Any]) -> None:
    db.executemany("DELETE FROM cdr_spool WHERE id = ?", [(i,) for i in done])
    for i in done:
        kept.pop(i, None)
    db.executemany("UPDATE cdr_spool SET attempts = attempts + 1 WHERE id = ?",
                   [(b[0],) for b, _ in failed])
