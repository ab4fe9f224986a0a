"""SM's CDR spool: a CDR accepted from OpenSIPS is never lost.

OpenSIPS sends each CDR once and does not retry, so SM writes it to a local SQLite file (fsync'd
by SQLite's commit) *before* answering OK, and a forwarder hands spooled CDRs to cdre, retrying
with backoff until cdre has stored them. cdre is idempotent on (CGRID, RunID), so a CDR delivered
twice (crash after delivery, before the spool row was deleted) is still stored and charged once.
The spool is a plain file next to the service (``CGRPY_SM_SPOOL_PATH``), so it works even when
the StorDB is down.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.runtime.logs import get_logger
from cgrpy.units import from_unix_nano, to_unix_nano

log = get_logger("sm")

Deliver = Callable[[CGREvent, dict[str, bool]], Awaitable[Any]]


class CdrSpool:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cdr_spool (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "tenant TEXT, event_id TEXT, time_ns INTEGER, fields TEXT, flags TEXT, attempts INTEGER DEFAULT 0)"
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def put(self, event: CGREvent, flags: dict[str, bool]) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO cdr_spool (tenant, event_id, time_ns, fields, flags) VALUES (?, ?, ?, ?, ?)",
                (event.tenant, event.id, to_unix_nano(event.time), dumps_exact(event.event), dumps_exact(flags)),
            )
            row_id = int(cur.lastrowid or 0)
        self._wake.set()
        return row_id

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM cdr_spool").fetchone()[0])

    def _batch(self, limit: int = 100) -> list[tuple[int, CGREvent, dict[str, bool]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, tenant, event_id, time_ns, fields, flags FROM cdr_spool ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [(r[0], CGREvent(r[1], r[2], from_unix_nano(r[3]), loads_exact(r[4])), loads_exact(r[5])) for r in rows]

    def _done(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM cdr_spool WHERE id = ?", (row_id,))

    def _failed(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("UPDATE cdr_spool SET attempts = attempts + 1 WHERE id = ?", (row_id,))

    def start(self, deliver: Deliver, *, max_backoff_s: float = 30.0) -> None:
        self._task = asyncio.create_task(self._forward(deliver, max_backoff_s))

    async def _forward(self, deliver: Deliver, max_backoff_s: float) -> None:
        backoff = 0.2
        while True:
            batch = await asyncio.to_thread(self._batch)
            if not batch:
                self._wake.clear()
                await self._wake.wait()
                continue
            for row_id, event, flags in batch:
                try:
                    await deliver(event, flags)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure: keep it, retry later
                    await asyncio.to_thread(self._failed, row_id)
                    log.warning("cdr.spool.retry", origin_id=event.get("OriginID"), error=str(exc), retry_in_s=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, max_backoff_s)
                    break
                await asyncio.to_thread(self._done, row_id)
                backoff = 0.2

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with self._lock:
            self._db.close()
