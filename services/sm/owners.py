"""Which SM replica charges which session: one owner per session, a dead owner's sessions adopted.

Every SM process on a Postgres StorDB takes a name of its own at start (``owner``: its OpenSIPS
listener plus a random suffix, so a restarted process is a new owner) and holds the Postgres
session-level advisory lock ``(OWNER_CLASS, crc32(owner))`` on a connection of its own for as
long as it lives. Its sessions' rows in ``sm_sessions`` carry that name.

A replica finds dead owners by trying their locks: ``pg_try_advisory_lock`` succeeds only once the
holder's connection is gone (kill -9, a node lost: Postgres ends the backend when the socket
closes, so this is milliseconds, not a timeout). The replica that gets the lock keeps holding it
on its own lease connection and re-tags the dead owner's rows to itself; a second replica trying
the same owner fails on the lock, so a session is adopted once. Holding the dead owner's lock
also fences it: an owner that was only cut off from Postgres (not dead) finds its lock taken when
it reconnects and stops at once (``on_lost``), so two replicas never charge one session.
"""

from __future__ import annotations

import secrets
import threading
import zlib
from collections.abc import Callable

import psycopg

from cgrpy.runtime.logs import get_logger

OWNER_CLASS = 0x43534D4F  # first key of pg_advisory_lock(int, int): "CSMO"
APP_PREFIX = "cgrpy-sm "
log = get_logger("sm")


def owner_key(owner: str) -> int:
    # 31 bits: the second key of pg_advisory_lock(int, int) is a signed int4
    return zlib.crc32(owner.encode()) & 0x7FFFFFFF


def new_owner(listen: str) -> str:
    return f"{listen}/{secrets.token_hex(4)}"


class OwnerLease:
    """This process's owner lock and the locks of the owners it adopted, on one connection."""

    def __init__(self, conninfo: str, owner: str, *, on_lost: Callable[[], None],
                 heartbeat_s: float = 1.0) -> None:
        self._conninfo = conninfo
        self.owner = owner
        self._on_lost = on_lost
        self._heartbeat_s = heartbeat_s
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()  # one statement at a time on the connection
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take this process's own lock (its name is new, so nobody holds it), then watch it."""
        if not self._try(self.owner):
            raise RuntimeError(f"sm owner lock {self.owner} is held by another process")
        self._thread = threading.Thread(target=self._beat, name="sm-owner-lease", daemon=True)
        self._thread.start()

    def try_take(self, dead: str) -> bool:
        """True when ``dead``'s lock was free and is now held here for good (its owner is gone
        and nobody else adopts its sessions); False while it lives or another replica took it."""
        return bool(self._try(dead))

    def _try(self, owner: str) -> bool | None:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5,
                                                 application_name=APP_PREFIX + self.owner[:40])
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                         (OWNER_CLASS, owner_key(owner))).fetchone()
                return bool(row and row[0])
            except psycopg.Error as exc:
                log.info("sm.owner.unavailable", error=str(exc).splitlines()[0] if str(exc) else "")
                self._conn = None
                return None

    def _ping(self) -> bool:
        with self._lock:
            try:
                assert self._conn is not None
                self._conn.execute("SELECT 1")
                return True
            except (psycopg.Error, AssertionError):
                self._conn = None
                return False

    def _beat(self) -> None:
        lost = False
        while not self._stop.wait(self._heartbeat_s):
            if not lost and self._ping():
                continue
            lost = True
            got = self._try(self.owner)
            if got is None:  # the StorDB is down: nobody can adopt our sessions meanwhile
                continue
            if got:
                log.info("sm.owner.renewed", owner=self.owner)
                lost = False
                continue
            if self._stop.is_set():
                return
            log.error("sm.owner.lost", owner=self.owner)
            self._on_lost()
            return

    def close(self) -> None:
        """Give the locks up: another replica adopts what this one leaves persisted."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except psycopg.Error:
                    pass
                self._conn = None
