"""Accounts kept in memory by the process that owns them, every change group-committed.

:class:`LiveStore` is an :class:`AccountStore` with the same contract (``apply`` is the one way
to change an account; a reply means committed; a request id applied once is replayed, never
charged twice; every balance change has its journal row), made cheap for the accounts this
process owns:

* reads (``get_account``, ``peek`` for GetMaxUsage) come from memory: an account is loaded from
  the StorDB once, on first use, with its row ``version``;
* ``apply`` runs the change on a copy under a per-account lock, hands the rows to write to
  :class:`GroupCommitter` and waits for the commit before it answers (the lock is held until
  then, so the next change of that account starts from committed state). The committer's one
  thread writes everything queued while the previous commit ran in **one** transaction, with
  statements built once at import;
* every account row written carries a fence: ``UPDATE accounts ... WHERE version = <cached>``.
  If anyone else changed the account meanwhile (another RALs process, an admin tool), or a
  request id is already stored (``account_requests`` primary key), the whole transaction rolls
  back and each of its changes is re-run on the locked path of :class:`AccountStore` (``SELECT
  ... FOR UPDATE`` on the current row), which returns the stored result for a known request id.
  So a stale cache can cost a retry, never a lost or doubled debit.

Accounts this process does not own (``owns(tenant, account)`` is False) take the locked path
directly and are not cached, so another process's writes are always seen.

Accounts holding a balance in a shared group are never cached either, by any process: a debit of
any member of the group changes them (``AccountStore.apply_group``, under the row locks of every
member, run by the owner of the *calling* account), so a cached copy in their own owner would go
stale without that owner's knowing. Uncached, every read and write of a member sees the StorDB's
committed state; the fence still guards the moment an account becomes a member.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, bindparam, delete, insert, update
from sqlalchemy.exc import DBAPIError

from cgrpy.event import dumps_exact
from cgrpy.runtime.logs import get_logger
from cgrpy.storage.groupcommit import drain
from cgrpy.storage.models.accounts import account_requests, accounts, balance_journal, balances
from services.rals.accounts.model import Account, AccountError
from services.rals.accounts.shared import groups_of
from services.rals.accounts.store import (
    AccountStore,
    Applied,
    Change,
    _num,
    balance_row,
    triggers_to_json,
)

Key = tuple[str, str]
log = get_logger("rals.live")

# Statements built once: executing them reuses SQLAlchemy's compiled form.
_ACCOUNT_FENCE = {
    "tenant": bindparam("k_tenant"), "account": bindparam("k_account"),
    "version": bindparam("k_version"),
}
_UPD_VERSION = (
    update(accounts)
    .where(*(accounts.c[c] == p for c, p in _ACCOUNT_FENCE.items()))
    .values(version=bindparam("v_version"), updated_at=bindparam("v_now"))
)
_UPD_ACCOUNT = _UPD_VERSION.values(
    allow_negative=bindparam("v_allow_negative"), disabled=bindparam("v_disabled"),
    triggers=bindparam("v_triggers"), counters=bindparam("v_counters"),
)
_BALANCE_COLS = [c.name for c in balances.columns if c.name != "uuid"]
_UPD_BALANCE = (
    update(balances)
    .where(balances.c.uuid == bindparam("k_uuid"))
    .values({c: bindparam("v_" + c) for c in _BALANCE_COLS})
)
_INS_BALANCE = insert(balances)
_DEL_BALANCE = delete(balances).where(balances.c.uuid == bindparam("k_uuid"))
_INS_JOURNAL = insert(balance_journal)
_INS_REQUEST = insert(account_requests)


class _Conflict(Exception):  # noqa: N818 - a fence that did not hold, not a bug
    pass


class StoreClosed(RuntimeError):
    """The group-commit writer has stopped: the change was not committed."""


@dataclass
class Pending:
    """One account change waiting for the group commit: the rows it writes."""

    account_row: dict[str, Any]
    full_account: bool  # flags/triggers/counters changed too, not only the version
    balance_updates: list[dict[str, Any]]
    balance_inserts: list[dict[str, Any]]
    balance_deletes: list[dict[str, Any]]
    journal: list[dict[str, Any]]
    request: dict[str, Any]
    # a worker thread in GroupCommitter.commit waits on this (made there: a caller on an event
    # loop waits on ``future`` and needs no lock, condition and waiter queue per change)
    done: threading.Event | None = None
    finished: bool = False  # its transaction ended (committed unless ``error``)
    error: BaseException | None = None
    # set by GroupCommitter.submit: a caller on an event loop waits on this instead of ``done``
    future: asyncio.Future[None] | None = None
    # run by the writer thread as soon as the transaction ended, before anyone is woken
    on_done: Callable[[], None] | None = None
    # the text of the result's EventCost, encoded once for the journal and the reply
    event_cost_json: str = ""


def pending_rows(
    before: Account, after: Account, version: int, result: dict[str, Any], *, request_id: str,
    reason: str, now: datetime,
) -> Pending:
    """The rows that turn ``before`` (stored at ``version``) into ``after`` (same rules as
    :meth:`AccountStore._write`: one journal row per changed or removed balance)."""
    old = {b.uuid: (i, b) for i, b in enumerate(before.balances)}
    upd: list[dict[str, Any]] = []
    ins: list[dict[str, Any]] = []
    journal: list[dict[str, Any]] = []

    def note(b_uuid: str, delta: Any, value_after: Any) -> None:
        journal.append({
            "tenant": after.tenant, "account": after.account, "balance_uuid": b_uuid,
            "delta": _num(delta), "value_after": _num(value_after), "reason": reason,
            "request_id": request_id, "created_at": now,
        })

    seen = set()
    for pos, b in enumerate(after.balances):
        seen.add(b.uuid)
        prev = old.get(b.uuid)
        if prev is None:
            ins.append(balance_row(after, b, pos))
            delta = b.value
        else:
            if prev[1] != b or prev[0] != pos:
                row = balance_row(after, b, pos)
                upd.append({"k_uuid": b.uuid, **{"v_" + c: row[c] for c in _BALANCE_COLS}})
            delta = b.value - prev[1].value
        if delta != 0:
            note(b.uuid, delta, b.value)
    dels = []
    for b_uuid, (_pos, b) in old.items():
        if b_uuid not in seen:
            dels.append({"k_uuid": b_uuid})
            if b.value != 0:
                note(b_uuid, -b.value, 0)  # the removed value leaves through the journal
    full = (before.allow_negative, before.disabled, before.triggers, before.counters) != (
        after.allow_negative, after.disabled, after.triggers, after.counters)
    acc_row: dict[str, Any] = {"k_tenant": after.tenant, "k_account": after.account,
                               "k_version": version, "v_version": version + 1, "v_now": now}
    if full:
        acc_row.update(v_allow_negative=after.allow_negative, v_disabled=after.disabled,
                       v_triggers=triggers_to_json(after.triggers),
                       v_counters=dumps_exact(after.counters))
    result_json, event_cost_json = encode_result(result)
    request = {"request_id": request_id, "tenant": after.tenant, "account": after.account,
               "kind": reason, "result": result_json, "created_at": now}
    return Pending(acc_row, full, upd, ins, dels, journal, request,
                   event_cost_json=event_cost_json)


# How dumps_exact writes a last "EventCost" member after others (derived from dumps_exact
# itself, so a change of its separators cannot make the two texts differ).
_EC_KEY = dumps_exact({"x": 0, "EventCost": 0})[len(dumps_exact({"x": 0})) - 1:-2]


def encode_result(result: dict[str, Any]) -> tuple[str, str]:
    """(``dumps_exact(result)``, the text of its "EventCost" or ""). A debit's or refund's
    EventCost is the bulk of its journaled result and is also what the reply carries: encoded
    once, its text is both spliced into the result's (same text as encoding the whole) and
    kept for the reply."""
    ec = result.get("EventCost")
    if ec is None or next(reversed(result)) != "EventCost":
        return dumps_exact(result), ""
    ec_json = dumps_exact(ec)
    rest = {k: v for k, v in result.items() if k != "EventCost"}
    if not rest:
        return dumps_exact(result), ec_json
    return dumps_exact(rest)[:-1] + _EC_KEY + ec_json + "}", ec_json


class CoreWriter:
    """Writes a batch through SQLAlchemy Core (SQLite: one process, a local file, no round
    trips to save); the fence is the UPDATE's row count."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def write(self, batch: list[Pending]) -> None:
        if self._conn is None:
            self._conn = self.engine.connect()
        try:
            with self._conn.begin():
                self._write(self._conn, batch)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self._conn = None

    @staticmethod
    def _write(conn: Connection, batch: list[Pending]) -> None:
        for p in _in_key_order(batch):
            stmt = _UPD_ACCOUNT if p.full_account else _UPD_VERSION
            if conn.execute(stmt, p.account_row).rowcount != 1:
                raise _Conflict(f"{p.account_row['k_tenant']}:{p.account_row['k_account']}")
        for stmt, rows in _many(batch, _DEL_BALANCE, _UPD_BALANCE, _INS_BALANCE, _INS_JOURNAL,
                                _INS_REQUEST):
            conn.execute(stmt, rows)


def _in_key_order(batch: list[Pending]) -> list[Pending]:
    # Account rows first and in key order: each UPDATE takes the row lock every other writer of
    # that account (locked path, another process) needs, so journal ids of one account stay in
    # commit order, and two batches cannot deadlock.
    return sorted(batch, key=lambda p: (p.account_row["k_tenant"], p.account_row["k_account"]))


def _many(batch: list[Pending], dele: Any, upd: Any, ins: Any, journal: Any,
          req: Any) -> list[tuple[Any, list[dict[str, Any]]]]:
    out = [
        (dele, [r for p in batch for r in p.balance_deletes]),
        (upd, [r for p in batch for r in p.balance_updates]),
        (ins, [r for p in batch for r in p.balance_inserts]),
        (journal, [r for p in batch for r in p.journal]),
        (req, [p.request for p in batch]),
    ]
    return [(stmt, rows) for stmt, rows in out if rows]


def _q(name: str) -> str:
    return f'"{name}"'


def _pg_insert(table: Any, skip: tuple[str, ...] = ()) -> str:
    cols = [c.name for c in table.columns if c.name not in skip]
    return (f"INSERT INTO {table.name} ({', '.join(map(_q, cols))}) "
            f"VALUES ({', '.join(f'%({c})s' for c in cols)})")


def _pg_fence(extra: list[str]) -> str:
    # 1 / count(*) fails the transaction (division by zero) when the version moved: the fence
    # costs no round trip of its own, it rides in the pipeline with everything else.
    sets = ", ".join(f"{_q(c)} = %(v_{c})s" for c in ["version", *extra])
    return (f"WITH u AS (UPDATE accounts SET {sets}, updated_at = %(v_now)s "
            "WHERE tenant = %(k_tenant)s AND account = %(k_account)s "
            "AND version = %(k_version)s RETURNING 1) SELECT 1 / count(*) FROM u")


_PG_FENCE_VERSION = _pg_fence([])
_PG_FENCE_ACCOUNT = _pg_fence(["allow_negative", "disabled", "triggers", "counters"])
_PG_DEL_BALANCE = "DELETE FROM balances WHERE uuid = %(k_uuid)s"
_PG_UPD_BALANCE = ("UPDATE balances SET " + ", ".join(f"{_q(c)} = %(v_{c})s" for c in _BALANCE_COLS)
                   + " WHERE uuid = %(k_uuid)s")
_PG_INS_BALANCE = _pg_insert(balances)
_PG_INS_JOURNAL = _pg_insert(balance_journal, skip=("id",))
_PG_INS_REQUEST = _pg_insert(account_requests)


class PgWriter:
    """Writes a batch on its own psycopg connection in pipeline mode: BEGIN, the fences, every
    row and COMMIT go out together — one round trip per batch, statements prepared by psycopg
    after their first uses (no SQL building per debit, no pre-ping)."""

    def __init__(self, engine: Engine) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        self._conn: psycopg.Connection | None = None

    def write(self, batch: list[Pending]) -> None:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            self._conn = psycopg.connect(self._conninfo, autocommit=True,
                                         application_name="cgrpy-rals-commit")
        conn = self._conn
        try:
            # BEGIN ... COMMIT sent as one pipeline: the block's exit is the only wait. After
            # an error the server skips the rest (COMMIT too) and the block raises.
            with conn.pipeline():
                cur = conn.cursor()
                cur.execute("BEGIN")
                for p in _in_key_order(batch):
                    cur.execute(_PG_FENCE_ACCOUNT if p.full_account else _PG_FENCE_VERSION,
                                p.account_row)
                for sql, rows in _many(batch, _PG_DEL_BALANCE, _PG_UPD_BALANCE,
                                       _PG_INS_BALANCE, _PG_INS_JOURNAL, _PG_INS_REQUEST):
                    cur.executemany(sql, rows)
                cur.execute("COMMIT")
        except psycopg.Error as exc:
            if conn.closed or conn.broken:
                self.close()
            else:
                self._rollback(conn)
            if isinstance(exc, psycopg.errors.DivisionByZero | psycopg.errors.UniqueViolation):
                raise _Conflict(str(exc).splitlines()[0]) from exc
            raise

    def _rollback(self, conn: psycopg.Connection) -> None:
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
        except psycopg.Error:
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None


class GroupCommitter:
    """One writer thread: all changes queued while a commit runs go into the next transaction.

    No timer: under load the batch is what arrived during the previous commit (a few ms), when
    quiet a change commits alone at once. A failed transaction fails every change in it (the
    callers re-run them on the locked path); a broken connection is replaced.
    """

    def __init__(self, engine: Engine) -> None:
        self.writer: PgWriter | CoreWriter = (
            PgWriter(engine) if engine.dialect.name == "postgresql" else CoreWriter(engine))
        self._q: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self.batches = 0
        self.changes = 0
        self._thread = threading.Thread(target=self._loop, name="rals-group-commit", daemon=True)
        self._thread.start()

    def commit(self, p: Pending) -> None:
        """Queue ``p`` and wait until its transaction ended (``p.error`` None: committed).

        Once the writer has stopped (the store is closing) nothing would ever commit ``p``: it
        fails instead, so its caller falls back to the locked path or answers an error, and no
        worker thread waits for ever (a waiting worker also blocks interpreter exit)."""
        if not self._thread.is_alive():
            p.error = StoreClosed("RALs account store closed")
            return
        done = p.done = threading.Event()
        self._q.put(p)
        while not done.wait(0.5):
            if not self._thread.is_alive():
                self._fail_leftovers()

    def submit(self, p: Pending) -> asyncio.Future[None]:
        """Queue ``p`` for a caller on the running event loop: the future is done when its
        transaction ended (``p.error`` None: committed). The writer wakes each loop once per
        batch, not once per change, and no worker thread sits waiting for the commit."""
        p.future = asyncio.get_running_loop().create_future()
        if not self._thread.is_alive():
            p.error = StoreClosed("RALs account store closed")
            _finish([p])
            return p.future
        self._q.put(p)
        if not self._thread.is_alive():  # stopped between the check and the put
            self._fail_leftovers()
        return p.future

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=10)
        self._fail_leftovers()
        self.writer.close()

    def _fail_leftovers(self) -> None:
        """Fail every change still queued behind the stop marker (closing raced it)."""
        while True:
            try:
                p = self._q.get_nowait()
            except queue.Empty:
                return
            if p is not None and not p.finished:
                p.error = StoreClosed("RALs account store closed")
                _finish([p])

    def _loop(self) -> None:
        try:
            while True:
                first = self._q.get()
                if first is None:
                    return
                batch, stop = drain(self._q, first)
                try:
                    self._commit(batch)
                finally:
                    _finish(batch)
                    del first, batch  # not held while the thread waits for the next change
                if stop:
                    return
        finally:
            self._fail_leftovers()

    def _commit(self, batch: list[Pending]) -> None:
        try:
            self.writer.write(batch)
            self.batches += 1
            self.changes += len(batch)
        except Exception as exc:  # noqa: BLE001 - every change in the batch is retried by its caller
            for p in batch:
                p.error = exc
            if not isinstance(exc, _Conflict):
                log.info("rals.group_commit_failed", changes=len(batch),
                         error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _finish(batch: list[Pending]) -> None:
    """Tell every caller of ``batch`` its transaction ended: threads through their event, event
    loops with one wake-up each for all of their changes in the batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for p in batch:
        on_done, p.on_done = p.on_done, None  # it holds ``p``: a cycle left to the collector
        if on_done is not None:
            try:
                on_done()
            except Exception:  # noqa: BLE001 - the others still must be told
                log.exception("rals.commit_callback_failed")
        p.finished = True
        if p.done is not None:
            p.done.set()
        if p.future is not None:
            by_loop.setdefault(p.future.get_loop(), []).append(p.future)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, futures)
        except RuntimeError:  # that loop is closed: nobody waits there any more
            pass


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for f in futures:
        if not f.done():
            f.set_result(None)


@dataclass
class _Cached:
    account: Account  # never mutated once cached: a change replaces it
    version: int


class LiveStore(AccountStore):
    """An AccountStore that serves owned accounts from memory (see module doc)."""

    def __init__(
        self, engine: Engine, *, owns: Callable[[str, str], bool] | None = None,
        remember: int = 200_000,
    ) -> None:
        super().__init__(engine)
        self.owns = owns or (lambda _t, _a: True)
        self._cache: dict[Key, _Cached] = {}
        self._members: set[Key] = set()  # accounts last seen holding a shared-group balance
        self._locks: dict[Key, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # results of requests this process committed: a retry is answered without the StorDB
        self._results: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._remember = remember
        self.committer = GroupCommitter(engine)

    def close(self) -> None:
        self.committer.close()

    # --- cache -----------------------------------------------------------------------------

    def _lock(self, key: Key) -> threading.Lock:
        lock = self._locks.get(key)
        if lock is None:
            with self._locks_guard:
                lock = self._locks.setdefault(key, threading.Lock())
        return lock

    def _cached(self, key: Key) -> _Cached | None:
        """The cached account, loaded on first use (call with the account's lock held)."""
        c = self._cache.get(key)
        if c is None:
            loaded = self.load_versioned(*key)
            if loaded is None:
                return None
            c = _Cached(*loaded)
            if not groups_of(c.account):  # shared-group members stay uncached (module doc)
                self._cache[key] = c
            else:
                self._members.add(key)
        return c

    def known_member(self, tenant: str, account: str) -> bool:
        """The account held a shared-group balance when last read here: a debit may go straight
        to the group path (which is exact for any account; this only saves a read)."""
        return (tenant, account) in self._members

    def evict(self, keep: Callable[[str, str], bool] | None = None) -> int:
        """Forget cached accounts (those where ``keep`` is False; all without ``keep``): they
        are reloaded from the StorDB on next use. Returns how many were dropped."""
        drop = [k for k in list(self._cache) if keep is None or not keep(*k)]
        for k in drop:
            self._cache.pop(k, None)
        return len(drop)

    def _note_result(self, request_id: str, result: dict[str, Any]) -> None:
        self._results[request_id] = result
        if len(self._results) > self._remember:
            self._results.popitem(last=False)

    # --- reads -----------------------------------------------------------------------------

    def is_cached(self, tenant: str, account: str) -> bool:
        """True when reading the account needs no I/O (owned and in memory)."""
        return (tenant, account) in self._cache and self.owns(tenant, account)

    def peek(self, tenant: str, account: str) -> Account:
        """The account as cached (do not mutate); ``NOT_FOUND`` if it does not exist."""
        if not self.owns(tenant, account):
            return super().get_account(tenant, account)
        key = (tenant, account)
        c = self._cache.get(key)
        if c is None:
            with self._lock(key):
                c = self._cached(key)
        if c is None:
            raise AccountError("NOT_FOUND", f"account {tenant}:{account}")
        return c.account

    def get_account(self, tenant: str, account: str) -> Account:
        return self.peek(tenant, account).copy()

    def remembered(self, request_id: str) -> dict[str, Any] | None:
        """The result of a request this process committed and still remembers (no I/O)."""
        return self._results.get(request_id)

    def _committed(self, key: tuple[str, str], after: Account, version: int, request_id: str,
                   result: Any) -> None:
        """Memory after a committed change: the account's new state (an account in a shared
        group is reloaded when next used, its members' rows change together) and the request's
        answer, for a retry."""
        if groups_of(after):
            self._cache.pop(key, None)
            self._members.add(key)
        else:
            self._cache[key] = _Cached(after, version + 1)
        self._note_result(request_id, result)

    def _replayed(self, request_id: str) -> Applied | None:
        """A change's answer when ``request_id`` was committed here already (a retry); refuses a
        change without one."""
        if not request_id:
            raise AccountError("MANDATORY_IE_MISSING", "[request_id]")
        hit = self._results.get(request_id)
        return None if hit is None else Applied(hit, True, None)

    def request_result(self, request_id: str) -> dict[str, Any] | None:
        hit = self._results.get(request_id)
        return hit if hit is not None else super().request_result(request_id)

    # --- writes ----------------------------------------------------------------------------

    def apply(
        self, tenant: str, account: str, change: Change, *, request_id: str, reason: str,
        create: bool = False, also: Callable[[Connection], None] | None = None,
    ) -> Applied:
        replayed = self._replayed(request_id)
        if replayed is not None:
            return replayed
        key = (tenant, account)
        if not self.owns(tenant, account):
            return super().apply(tenant, account, change, request_id=request_id, reason=reason,
                                 create=create, also=also)
        with self._lock(key):
            hit = self._results.get(request_id)
            if hit is not None:
                return Applied(hit, True, None)
            c = self._cached(key) if also is None else None
            if c is not None:
                after = c.account.copy()
                result = change(after)  # an error here changed nothing
                p = pending_rows(c.account, after, c.version, result, request_id=request_id,
                                 reason=reason, now=datetime.now(UTC))
                self.committer.commit(p)
                if p.error is None:
                    self._committed(key, after, c.version, request_id, result)
                    return Applied(result, False, after, p.event_cost_json)
            # Not cached (new account, bookkeeping with ``also``) or the group commit failed:
            # the locked path decides on the current row; the cache reloads afterwards.
            self._cache.pop(key, None)
            try:
                out = super().apply(tenant, account, change, request_id=request_id,
                                    reason=reason, create=create, also=also)
            finally:
                self._cache.pop(key, None)
            self._note_result(request_id, out.result)
            return out

    async def apply_inline(
        self, tenant: str, account: str, change: Change, *, request_id: str, reason: str,
    ) -> Applied | None:
        """:meth:`apply` on the event loop, for an owned account already in memory whose lock is
        free: ``change`` runs here (pure CPU) and the commit is awaited, no thread involved.
        None when that does not hold, or when the group commit failed: nothing was committed
        then, and the caller runs :meth:`apply` in a worker thread (which waits for the lock,
        loads the account, or takes the locked path). Errors of ``change`` propagate, nothing
        changed."""
        replayed = self._replayed(request_id)
        if replayed is not None:
            return replayed
        key = (tenant, account)
        if key not in self._cache or not self.owns(tenant, account):
            return None
        lock = self._lock(key)
        if not lock.acquire(blocking=False):  # another change of this account is running
            return None
        try:
            c = self._cache.get(key)
            hit = self._results.get(request_id)
            if c is None or hit is not None:
                lock.release()
                return None if c is None else Applied(hit, True, None)
            after = c.account.copy()
            result = change(after)  # an error here changed nothing
            p = pending_rows(c.account, after, c.version, result, request_id=request_id,
                             reason=reason, now=datetime.now(UTC))
        except BaseException:
            lock.release()
            raise

        def settle() -> None:
            # Run by the writer thread when the transaction ended, not by code after the
            # await: the lock is released at once (the loop may be busy), also when the
            # awaiting handler was cancelled, and the cache never lags a committed change.
            try:
                if p.error is not None:
                    self._cache.pop(key, None)
                    return
                self._committed(key, after, c.version, request_id, result)
            finally:
                lock.release()

        p.on_done = settle
        await asyncio.shield(self.committer.submit(p))
        return None if p.error is not None else Applied(result, False, after,
                                                        p.event_cost_json)

    def apply_group(self, tenant: str, account: str, change: Any, *, members: Any,
                    request_id: str, reason: str) -> Applied:
        hit = self._results.get(request_id)
        if hit is not None:
            return Applied(hit, True, None)
        out = super().apply_group(tenant, account, change, members=members,
                                  request_id=request_id, reason=reason)
        self._note_result(request_id, out.result)
        return out

    def _forget(self, keys: set[Key]) -> None:
        for k in keys:
            self._cache.pop(k, None)

    def remove_account(self, tenant: str, account: str, *, request_id: str | None = None) -> bool:
        key = (tenant, account)
        with self._lock(key):
            try:
                return super().remove_account(tenant, account, request_id=request_id)
            finally:
                self._cache.pop(key, None)
