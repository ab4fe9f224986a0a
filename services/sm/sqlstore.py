"""SM's session store in the StorDB (Postgres): sessions outlive their SM replica.

The same records as the local store (``services/sm/store.py``: a snapshot of the events, then
small progress records laid over it) in ``sm_sessions``, each row tagged with the replica that
owns it (``services/sm/owners.py``). ``adopt(dead)`` re-tags a dead owner's rows to this replica
and returns its sessions, for ``SessionManager.restore``.

The hot path does not wait for Postgres: a write is queued and returns at once; one writer thread
takes everything queued while its previous transaction was committing and writes it in one
transaction (later writes of one session replace its earlier queued ones), so a busy SM pays one
round trip per batch, not one per debit. A replica killed between a debit and its write leaves
the previous counters: the adopter repeats that debit with the same request id
(``CGRID:RunID:LoopIndex``), which RALs answers from its journal without charging again.

Every write names the owner (``WHERE owner = me``): a replica that was adopted while cut off
writes nothing over its adopter's rows.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Engine, bindparam, delete, null, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cgrpy.event import dumps_exact, loads_exact
from cgrpy.runtime.logs import get_logger
from cgrpy.storage.models.sm import SmSession
from cgrpy.storage.pgconn import PgConnection, compiled, libpq_url
from services.sm.sessions.core import Session
from services.sm.store import apply_progress, progress_record, session_from_record, session_record

log = get_logger("sm")
T = SmSession.__table__
_SNAP, _PROG, _DEL = "snapshot", "progress", "delete"


class SqlSessionStore:
    """``save`` / ``save_closed`` / ``save_progress`` / ``delete`` (queued), ``adopt``, ``owners``."""

    def __init__(self, engine: Engine, owner: str, *, window_s: float = 0.05) -> None:
        self.engine = engine
        self.owner = owner
        # writes queued within this long after the first travel in its transaction (the hot path
        # does not wait for them; a longer window is fewer transactions, a later durable state)
        self.window_s = window_s
        self._pg = PgConnection(libpq_url(engine), "cgrpy-sm-sessions")
        self._known: set[str] = set()  # CGRIDs with a snapshot row of ours (written or adopted)
        self._pending: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._cond = threading.Condition()
        self._busy = False
        self._closing = False
        self.commits = 0
        self.failures = 0
        self._writer = threading.Thread(target=self._write_loop, name="sm-session-writer", daemon=True)
        self._writer.start()

    # --- queued writes (called on the event loop) ----------------------------------------------

    def _queue(self, cgrid: str, kind: str, row: dict[str, Any]) -> None:
        with self._cond:
            ops = self._pending.get(cgrid)
            if kind != _PROG or ops is None:
                self._pending[cgrid] = [(kind, row)]  # a snapshot or delete replaces what is queued
            elif ops[-1][0] == _PROG:
                ops[-1] = (kind, row)
            elif ops[-1][0] == _SNAP:
                ops.append((kind, row))
            else:  # progress after a queued delete: nothing to lay it over
                return
            self._cond.notify()

    def _snapshot(self, s: Session, closed: bool) -> None:
        self._known.add(s.cgrid)
        self._queue(s.cgrid, _SNAP, {"cgrid": s.cgrid, "owner": self.owner, "closed": closed,
                                     "updated_ns": time.time_ns(),
                                     "data": dumps_exact(session_record(s, closed=closed))})

    def save(self, s: Session) -> None:
        self._snapshot(s, False)

    def save_closed(self, s: Session) -> None:
        self._snapshot(s, True)

    def save_progress(self, s: Session, *, closed: bool = False) -> bool:
        if s.cgrid not in self._known:
            return False  # the caller writes a snapshot
        self._queue(s.cgrid, _PROG, {"b_cgrid": s.cgrid, "b_owner": self.owner, "b_closed": closed,
                                     "b_updated": time.time_ns(),
                                     "b_progress": dumps_exact(progress_record(s, closed=closed))})
        return True

    def delete(self, cgrid: str) -> None:
        self._known.discard(cgrid)
        self._queue(cgrid, _DEL, {"b_cgrid": cgrid, "b_owner": self.owner})

    # --- the writer thread ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    self._pg.close()
                    return
                self._busy = True
            if self.window_s > 0 and not self._closing:
                time.sleep(self.window_s)
            with self._cond:
                batch, self._pending = self._pending, {}
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _commit(self, batch: dict[str, list[tuple[str, dict[str, Any]]]]) -> None:
        by_kind: dict[str, list[dict[str, Any]]] = {_SNAP: [], _PROG: [], _DEL: []}
        for ops in batch.values():
            for kind, row in ops:
                by_kind[kind].append(row)
        def write(conn: Any) -> None:
            with conn.cursor() as cur:
                for sql, rows in ((_UPSERT, by_kind[_SNAP]), (_PROGRESS, by_kind[_PROG]),
                                  (_DELETE, by_kind[_DEL])):
                    if rows:
                        cur.executemany(sql, rows)

        for attempt in range(3):
            try:
                self._pg.run(write)
                self.commits += 1
                return
            except Exception as exc:  # noqa: BLE001 - StorDB away: retry, then drop (logged)
                log.warning("sm.sessions.write_failed", attempt=attempt + 1, rows=len(batch),
                            error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                time.sleep(0.2 * (attempt + 1))
        self.failures += 1

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far is written (tests, a graceful stop)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._writer.join(timeout=10)

    # --- adoption -------------------------------------------------------------------------------

    def owners(self) -> list[str]:
        """Owners other than this replica that still have sessions in the StorDB."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(T.c.owner).where(T.c.owner != self.owner).distinct())
            return [r[0] for r in rows]

    def adopt(self, dead: str) -> list[Session]:
        """Re-tag ``dead``'s sessions to this replica (its owner lock is held here) and load them."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                update(T).where(T.c.owner == dead).values(owner=self.owner)
                .returning(T.c.cgrid, T.c.data, T.c.progress)).all()
        out = []
        for cgrid, data, progress in rows:
            rec = loads_exact(data)
            if progress is not None:
                rec = apply_progress(rec, loads_exact(progress))
            out.append(session_from_record(rec))
            self._known.add(cgrid)
        return out

    def owner_of(self, cgrid: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(T.c.owner).where(T.c.cgrid == cgrid)).scalar_one_or_none()

    def count(self, *, closed: bool | None = None) -> int:
        q = select(T.c.cgrid).where(T.c.owner == self.owner)
        if closed is not None:
            q = q.where(T.c.closed == closed)
        with self.engine.connect() as conn:
            return len(conn.execute(q).all())


def _upsert_stmt() -> Any:
    ins = pg_insert(T).values(
        cgrid=bindparam("cgrid"), owner=bindparam("owner"), closed=bindparam("closed"),
        updated_ns=bindparam("updated_ns"), data=bindparam("data"), progress=null())
    # a row another replica adopted meanwhile is left alone
    return ins.on_conflict_do_update(
        index_elements=[T.c.cgrid],
        set_={"closed": ins.excluded.closed, "updated_ns": ins.excluded.updated_ns,
              "data": ins.excluded.data, "progress": null()},
        where=T.c.owner == ins.excluded.owner)


def _progress_stmt() -> Any:
    return (update(T).where(T.c.cgrid == bindparam("b_cgrid"), T.c.owner == bindparam("b_owner"))
            .values(closed=bindparam("b_closed"), updated_ns=bindparam("b_updated"),
                    progress=bindparam("b_progress")))


def _delete_stmt() -> Any:
    return delete(T).where(T.c.cgrid == bindparam("b_cgrid"), T.c.owner == bindparam("b_owner"))


_UPSERT = compiled(_upsert_stmt())
_PROGRESS = compiled(_progress_stmt())
_DELETE = compiled(_delete_stmt())
