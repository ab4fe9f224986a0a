"""Which RALs process owns which account: one owner per account partition at any time.

The account space is split into :data:`PARTITIONS` partitions (crc32 of ``tenant:account``).
On Postgres a process owns a partition while it holds the session-level advisory lock
``pg_advisory_lock(LOCK_CLASS, partition)`` on its own *lease connection*; that connection's
``application_name`` is ``cgrpy-rals <host:port>``, so any process finds an owner's gRPC address
in ``pg_locks`` joined with ``pg_stat_activity`` — no table, nothing to clean up: when the owner
dies its connection closes, the locks go with it, and the next process that needs the partition
takes it (:meth:`AdvisoryPartitions.claim`).

Partitions are taken lazily: the first process asked about an account of a free partition
becomes its owner. Ownership is a speed device, not the safety net: every group commit is
fenced by the account's row version (see ``services.rals.accounts.live``), so a process that
lost its lease without noticing can only fail a commit and retry it on the locked path.

On SQLite there is one process and it owns everything (:class:`OwnsAll`).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from typing import Protocol

import psycopg
from sqlalchemy import Engine

from cgrpy.runtime.logs import get_logger

PARTITIONS = 64
LOCK_CLASS = 0x43475241  # first key of pg_advisory_lock(int, int): "CGRA"
APP_PREFIX = "cgrpy-rals "
log = get_logger("rals.partitions")


def partition_of(tenant: str, account: str) -> int:
    return zlib.crc32(f"{tenant}:{account}".encode()) % PARTITIONS


class Ownership(Protocol):
    def owns(self, tenant: str, account: str) -> bool:
        """True when this process owns the account now (memory only, no I/O)."""
        ...

    def claim(self, tenant: str, account: str) -> str | None:
        """None: this process owns the account (taking its partition if free); otherwise the
        owner's gRPC address ("" when unknown). May block on the StorDB."""
        ...

    def known_owner(self, tenant: str, account: str) -> str | None:
        """The other owner's address if already known (no I/O), else None."""
        ...

    def forget(self, tenant: str, account: str) -> None:
        """The owner did not answer: look it up again next time."""
        ...

    def close(self) -> None: ...


class OwnsAll:
    """One process (SQLite, or a single RALs): every account is ours."""

    def owns(self, tenant: str, account: str) -> bool:
        return True

    def claim(self, tenant: str, account: str) -> str | None:
        return None

    def known_owner(self, tenant: str, account: str) -> str | None:
        return None

    def forget(self, tenant: str, account: str) -> None:
        pass

    def close(self) -> None:
        pass


_HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid"
)


class AdvisoryPartitions:
    """Partition leases as Postgres advisory locks on one dedicated connection (module doc)."""

    def __init__(
        self, engine: Engine, address: str, *, on_gained: Callable[[int], None],
        on_lost: Callable[[], None], heartbeat_s: float = 1.0,
    ) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        self.address = address
        self._on_gained = on_gained
        self._on_lost = on_lost
        self._held: set[int] = set()
        self._others: dict[int, str] = {}
        self._mutex = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, args=(heartbeat_s,),
                                           name="rals-lease", daemon=True)
        self._heartbeat.start()

    def owns(self, tenant: str, account: str) -> bool:
        return partition_of(tenant, account) in self._held

    def known_owner(self, tenant: str, account: str) -> str | None:
        return self._others.get(partition_of(tenant, account))

    def forget(self, tenant: str, account: str) -> None:
        self._others.pop(partition_of(tenant, account), None)

    def claim(self, tenant: str, account: str) -> str | None:
        p = partition_of(tenant, account)
        if p in self._held:
            return None
        with self._mutex:
            if p in self._held:
                return None
            conn = self._connection()
            got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, p)).fetchone()
            if got and got[0]:
                self._on_gained(p)  # drop anything cached for it before serving it
                self._held.add(p)
                self._others.pop(p, None)
                log.info("rals.partition_taken", partition=p, owner=self.address)
                return None
            row = conn.execute(_HOLDER, (LOCK_CLASS, p)).fetchone()
        holder = row[0] if row else ""
        addr = holder[len(APP_PREFIX):] if holder.startswith(APP_PREFIX) else ""
        if addr:
            self._others[p] = addr
        return addr

    def held(self) -> set[int]:
        return set(self._held)

    def close(self) -> None:
        """Release every partition (closing the lease connection drops its locks)."""
        self._stop.set()
        self._heartbeat.join(timeout=5)
        with self._mutex:
            self._held.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True,
                                         application_name=APP_PREFIX + self.address)
        return self._conn

    def _beat(self, every: float) -> None:
        """A lease connection that stops answering may have lost its locks: give up ownership
        (the cache with it) at once; partitions are claimed again on demand."""
        while not self._stop.wait(every):
            with self._mutex:
                if self._conn is None:
                    continue
                try:
                    self._conn.execute("SELECT 1")
                    continue
                except psycopg.Error as exc:
                    lost = len(self._held)
                    self._held.clear()
                    self._others.clear()
                    try:
                        self._conn.close()
                    except psycopg.Error:
                        pass
                    self._conn = None
                    log.info("rals.lease_lost", partitions=lost, error=str(exc).splitlines()[0])
            self._on_lost()
