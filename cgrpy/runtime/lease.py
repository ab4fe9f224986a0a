"""One active process of a service whose state lives in its memory (ResourceS; StatS and
ThresholdS are partitioned instead, cgrpy/runtime/partitions.py), however many are started on
one Postgres StorDB.

Two such processes at once would each count half of the events and overwrite each other's saved
state (last write wins): the counts would be wrong, silently. So the process holds a Postgres
session-level advisory lock ``(LOCK_CLASS, crc32(service))`` on a connection of its own for as
long as it serves; a second process waits for the lock *before* it loads its state, NOT_SERVING
(callers and Kubernetes readiness skip it), and takes over when the holder's connection closes
(kill -9, a node gone): it then loads the state the holder saved last and continues the counts.
This is active/standby, not partitioning: one process does the work.

A holder whose lease connection fails tries once to take the lock again on a new connection
(a Postgres restart, a terminated session: nobody else took over); if another process holds it
by then, this one stops at once without saving anything (``on_lost``): its memory is no longer
the truth and a graceful stop would overwrite the new holder's state.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable

import psycopg

from cgrpy.runtime.logs import get_logger

LOCK_CLASS = 0x43475253  # first key of pg_advisory_lock(int, int): "CGRS"
APP_PREFIX = "cgrpy-active "
log = get_logger("lease")

_HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid"
)


class Cancelled(Exception):
    """The process was asked to stop while it waited for the lease."""


def lock_key(service: str) -> int:
    # 31 bits: the second key of pg_advisory_lock(int, int) is a signed int4
    return zlib.crc32(service.encode()) & 0x7FFFFFFF


class ActiveLease:
    """The lease of ``service`` on the StorDB at ``conninfo`` (a libpq URL)."""

    def __init__(self, conninfo: str, service: str, address: str, *,
                 on_lost: Callable[[], None], heartbeat_s: float = 1.0, poll_s: float = 0.5) -> None:
        self._conninfo = conninfo
        self.service = service
        self.address = address
        self._key = lock_key(service)
        self._on_lost = on_lost
        self._heartbeat_s = heartbeat_s
        self._poll_s = poll_s
        self._conn: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, cancel: threading.Event) -> float:
        """Block until this process holds the lease (or ``cancel`` is set: :class:`Cancelled`);
        returns the seconds waited. Then a heartbeat thread watches the lease."""
        started = time.monotonic()
        told = ""
        while not self._try_lock():  # False (held elsewhere) or None (StorDB down): wait
            holder = self._holder()
            if holder != told:
                log.info("lease.standby", service=self.service, holder=holder or "?")
                told = holder
            if cancel.wait(self._poll_s):
                self.close()
                raise Cancelled(self.service)
        waited = time.monotonic() - started
        log.info("lease.active", service=self.service, address=self.address,
                 waited_s=round(waited, 3))
        self._thread = threading.Thread(target=self._beat, name=f"{self.service}-lease", daemon=True)
        self._thread.start()
        return waited

    def close(self) -> None:
        """Give the lease up (the next process takes it at once)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None

    def _try_lock(self) -> bool | None:
        """One attempt on the (re)opened lease connection: True held, False held by another
        process, None the StorDB does not answer (nobody can take it over meanwhile)."""
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5,
                                             application_name=APP_PREFIX + self.address)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                     (LOCK_CLASS, self._key)).fetchone()
            return bool(row and row[0])
        except psycopg.Error as exc:
            log.info("lease.unavailable", service=self.service, error=str(exc).splitlines()[0])
            self._conn = None
            return None

    def _holder(self) -> str:
        try:
            assert self._conn is not None
            row = self._conn.execute(_HOLDER, (LOCK_CLASS, self._key)).fetchone()
        except (psycopg.Error, AssertionError):
            return ""
        name = row[0] if row else ""
        return name.removeprefix(APP_PREFIX)

    def _beat(self) -> None:
        lost = False
        while not self._stop.wait(self._heartbeat_s):
            if not lost:
                try:
                    assert self._conn is not None
                    self._conn.execute("SELECT 1")
                    continue
                except (psycopg.Error, AssertionError) as exc:
                    log.warning("lease.connection_lost", service=self.service,
                                error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                    self._conn, lost = None, True
            got = self._try_lock()
            if got is None:  # the StorDB is down: nobody else can take the lease either
                continue
            if got:  # nobody took over meanwhile: this process's memory is still the truth
                log.info("lease.renewed", service=self.service)
                lost = False
                continue
            if self._stop.is_set():
                return
            log.error("lease.lost", service=self.service, holder=self._holder() or "?")
            self._on_lost()
            return
