"""Group commit for cdre's writes: one thread runs every write, many per transaction.

Each ProcessCDR run needs one or two small writes (reserve, finish, or one final insert). Done
one transaction each, a busy cdre spends its time in COMMIT round trips and fsyncs. Here a
write is a function of a :class:`~sqlalchemy.Connection`; a single writer thread takes every
write queued while the previous transaction was committing and runs them all in the next one.
Nothing waits for a timer (no latency added when idle): the batch is whatever piled up during
the last commit, which grows with load, exactly where it helps.

A caller's future resolves only after its transaction committed, so "a reply means committed"
still holds. If a batch fails (a deadlock with another cdre replica, a bad row), it is rolled
back and every write in it is run again alone, so one bad write fails only its own caller.
Writes must therefore be idempotent or harmless to repeat after a rollback, which the store's
(``ON CONFLICT DO NOTHING`` inserts, updates by id) are.

A write may also hand rows to the end of its transaction (:meth:`Tx.defer`): rows of the same
kind from every write of the batch then go out as one statement (cdre's outbox: one row holding
the batch's events instead of one row per event and receiver). They are written before the
commit, so they commit or roll back with the writes that made them.

On Postgres the writes run on the thread's own psycopg connection (:class:`CoreConn`: the same
Core statements, compiled once, without SQLAlchemy's pool check-out and per-statement execution
context, which cost more CPU than the few small statements of a CDR run). On SQLite they run on
a SQLAlchemy connection as before.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from cgrpy.storage.groupcommit import drain, settle
from cgrpy.storage.pgconn import CoreConn, PgConnection, libpq_url

T = TypeVar("T")
log = logging.getLogger("cgrpy.cdre")



class Tx:
    """One group-committed transaction as a write sees it: ``execute`` as on a connection (a
    SQLAlchemy Connection or, on Postgres, a CoreConn), plus :meth:`defer`."""

    __slots__ = ("conn", "_tail")

    def __init__(self, conn: Connection | CoreConn) -> None:
        self.conn = conn
        self._tail: dict[Hashable, tuple[Callable[[Any, list[Any]], None], list[Any]]] = {}

    def execute(self, stmt: Any, params: Any = None) -> Any:
        return self.conn.execute(stmt, params)

    def defer(self, key: Hashable, flush: Callable[[Any, list[Any]], None], item: Any) -> None:
        """Write ``item`` at the end of this transaction: ``flush(conn, items)`` runs once per
        ``key`` with the items of every write of the batch (in their order) before the commit.
        The first ``flush`` given for a key is the one run."""
        entry = self._tail.get(key)
        if entry is None:
            self._tail[key] = (flush, [item])
        else:
            entry[1].append(item)

    def finish(self) -> None:
        """Run the deferred writes (the writer calls this once, after the batch's writes)."""
        tail, self._tail = self._tail, {}
        for flush, items in tail.values():
            flush(self.conn, items)


# a write gets the batch's transaction (execute() as on a Connection, plus defer())
Write = Callable[[Tx], Any]


@dataclass
class _Op:
    fn: Write
    future: Future[Any]


class GroupCommitter:
    """Runs writes on one thread, batching those that queue up during a commit."""

    def __init__(self, engine: Engine, *, max_batch: int = 256, name: str = "cdre-writer") -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._name = name
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._pg = (PgConnection(libpq_url(engine), name)
                    if engine.dialect.name == "postgresql" else None)
        # Transactions committed and writes in them, for tests and metrics.
        self.batches = 0
        self.writes = 0

    def submit(self, fn: Write) -> Future[Any]:
        """Queue ``fn``; the future holds its result once its transaction committed."""
        if self._closed:
            raise RuntimeError("the CDR writer is closed")
        self._ensure_thread()
        fut: Future[Any] = Future()
        self._queue.put(_Op(fn, fut))
        return fut

    async def run(self, fn: Callable[[Tx], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
        if self._pg is not None and (self._thread is None or not self._thread.is_alive()):
            self._pg.close()

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                # daemon: a caller that never closes the store must not hang interpreter exit
                t = threading.Thread(target=self._loop, name=self._name, daemon=True)
                t.start()
                self._thread = t

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            ops, stop = drain(self._queue, first, self.max_batch)
            self._commit(ops)
            if stop:
                return

    def _commit(self, ops: list[_Op]) -> None:
        try:
            results = self._run(ops)
        except Exception as exc:  # noqa: BLE001 - handed to the callers' futures
            if len(ops) == 1:
                settle(ops[0].future, exc=exc)
                return
            log.info("group commit of %d writes failed (%s); running them one by one",
                     len(ops), exc)
            for op in ops:
                self._commit([op])
            return
        self.batches += 1
        self.writes += len(ops)
        for op, res in zip(ops, results, strict=True):
            settle(op.future, result=res)

    def _run(self, ops: list[_Op]) -> list[Any]:
        if self._pg is not None:
            # a new Tx per attempt: PgConnection.run tries once more on a new connection
            return self._pg.run(lambda conn: _run_in(Tx(CoreConn(conn)), ops))
        with self.engine.begin() as conn:
            return _run_in(Tx(conn), ops)


def _run_in(tx: Tx, ops: list[_Op]) -> list[Any]:
    results = [op.fn(tx) for op in ops]
    tx.finish()
    return results


__all__ = ["GroupCommitter", "Tx", "Write"]
