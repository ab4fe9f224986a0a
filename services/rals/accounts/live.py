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
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, update
from sqlalchemy.exc import DBAPIError

from cgrpy.event import dumps_exact
from cgrpy.runtime.logs import get_logger
from cgrpy.storage.models.accounts import account_requests, accounts, balance_journal, balances
from services.rals.accounts.model import Account, AccountError
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
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


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
    request = {"request_id": request_id, "tenant": after.tenant, "account": after.account,
               "kind": reason, "result": dumps_exact(result), "created_at": now}
    return Pending(acc_row, full, upd, ins, dels, journal, request)


class GroupCommitter:
    """One writer thread: all changes queued while a commit runs go into the next transaction.

    No timer: under load the batch is what arrived during the previous commit (a few ms), when
    quiet a change commits alone at once. A failed transaction fails every change in it (the
    callers re-run them on the locked path); a broken connection is replaced.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._q: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._conn: Connection | None = None
        self.batches = 0
        self.changes = 0
        self._thread = threading.Thread(target=self._loop, name="rals-group-commit", daemon=True)
        self._thread.start()

    def commit(self, p: Pending) -> None:
        """Queue ``p`` and wait until its transaction ended (``p.error`` None: committed)."""
        self._q.put(p)
        p.done.wait()

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=10)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _loop(self) -> None:
        while True:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while True:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(batch)
            for p in batch:
                p.done.set()
            if stop:
                return

    def _commit(self, batch: list[Pending]) -> None:
        try:
            if self._conn is None:
                self._conn = self.engine.connect()
            with self._conn.begin():
                self._write(self._conn, batch)
            self.batches += 1
            self.changes += len(batch)
        except Exception as exc:  # noqa: BLE001 - every change in the batch is retried by its caller
            for p in batch:
                p.error = exc
            if not isinstance(exc, _Conflict):
                log.info("rals.group_commit_failed", changes=len(batch),
                         error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            # A fence or constraint leaves the connection usable; anything else may not have.
            lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
            if lost or not isinstance(exc, _Conflict | DBAPIError):
                self._drop_connection()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self._conn = None

    @staticmethod
    def _write(conn: Connection, batch: list[Pending]) -> None:
        # Account rows first and in key order: each UPDATE takes the row lock every other
        # writer of that account (locked path or another process) needs, so journal ids of one
        # account stay in commit order, and two batches cannot deadlock.
        for p in sorted(batch, key=lambda p: (p.account_row["k_tenant"],
                                              p.account_row["k_account"])):
            stmt = _UPD_ACCOUNT if p.full_account else _UPD_VERSION
            if conn.execute(stmt, p.account_row).rowcount != 1:
                raise _Conflict(f"{p.account_row['k_tenant']}:{p.account_row['k_account']}")
        many: list[tuple[Any, list[dict[str, Any]]]] = [
            (_DEL_BALANCE, [r for p in batch for r in p.balance_deletes]),
            (_UPD_BALANCE, [r for p in batch for r in p.balance_updates]),
            (_INS_BALANCE, [r for p in batch for r in p.balance_inserts]),
            (_INS_JOURNAL, [r for p in batch for r in p.journal]),
            (_INS_REQUEST, [p.request for p in batch]),
        ]
        for stmt, rows in many:
            if rows:
                conn.execute(stmt, rows)


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
            c = self._cache[key] = _Cached(*loaded)
        return c

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

    def request_result(self, request_id: str) -> dict[str, Any] | None:
        hit = self._results.get(request_id)
        return hit if hit is not None else super().request_result(request_id)

    # --- writes ----------------------------------------------------------------------------

    def apply(
        self, tenant: str, account: str, change: Change, *, request_id: str, reason: str,
        create: bool = False, also: Callable[[Connection], None] | None = None,
    ) -> Applied:
        if not request_id:
            raise AccountError("MANDATORY_IE_MISSING", "[request_id]")
        hit = self._results.get(request_id)
        if hit is not None:
            return Applied(hit, True, None)
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
                    self._cache[key] = _Cached(after, c.version + 1)
                    self._note_result(request_id, result)
                    return Applied(result, False, after)
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

    def remove_account(self, tenant: str, account: str, *, request_id: str | None = None) -> bool:
        key = (tenant, account)
        with self._lock(key):
            try:
                return super().remove_account(tenant, account, request_id=request_id)
            finally:
                self._cache.pop(key, None)
