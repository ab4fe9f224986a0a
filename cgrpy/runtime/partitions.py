"""Partitions of a service's keys, each owned by exactly one process at a time.

A service whose state lives in its memory (RALs accounts, StatS queues, ThresholdS hit counts)
splits its keys into :data:`PARTITIONS` partitions (crc32 of the key). On Postgres a process owns
a partition while it holds the session-level advisory lock ``pg_advisory_lock(lock_class, p)``
on its own *lease connection*; that connection's ``application_name`` is ``<prefix><host:port>``,
so any process finds an owner's gRPC address in ``pg_locks`` joined with ``pg_stat_activity`` —
no table, nothing to clean up: when the owner dies its connection closes, the locks go with it,
and the next process that needs the partition takes it (:meth:`PartitionLeases.claim`).

Partitions are taken lazily: the first process asked about a key of a free partition becomes its
owner; ``on_gained`` runs before it serves the partition (drop a cache, load the saved state).

The lease connection is also a fence: a write made *on it* (:meth:`PartitionLeases.fenced`)
can only succeed while the session holding the lock is alive, so a process that lost its lease
without noticing yet cannot overwrite what the new owner saves.

On SQLite there is one process and it owns everything (:class:`OwnsAll`).
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import grpc
import psycopg
from sqlalchemy.engine import make_url

from cgrpy.config import ConfigError
from cgrpy.errors import CGRError
from cgrpy.netaddr import advertised_address, join_host_port, split_host_port
from cgrpy.runtime import auth
from cgrpy.runtime.logs import get_logger
from cgrpy.runtime.metrics import PARTITION_FORWARDS

PARTITIONS = 64
log = get_logger("partitions")

# gRPC metadata on a request one replica passes to the owner of its keys: the owner serves it
# (it never passes it on), so a request hops at most once.
FORWARDED = "cgrpy-forwarded"
# ... and on a request sent again after the owner failed mid-call: it may have been applied, so
# the new owner skips what already holds the event (services say what they can recognise).
RETRIED = "cgrpy-retried"


def partition_of(key: str) -> int:
    return zlib.crc32(key.encode()) % PARTITIONS


class OwnsAll:
    """One process (SQLite, or no StorDB to share): every partition is ours."""

    def held_now(self, p: int) -> bool:
        return True

    def claim(self, p: int) -> str | None:
        return None

    def known(self, p: int) -> str | None:
        return None

    def forget(self, p: int) -> None:
        pass

    def held(self) -> set[int]:
        return set(range(PARTITIONS))

    def close(self) -> None:
        pass


_HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid"
)


class PartitionLeases:
    """Partition leases as Postgres advisory locks on one dedicated connection (module doc)."""

    def __init__(
        self, conninfo: str, address: str, *, lock_class: int, app_prefix: str,
        on_gained: Callable[[int], None], on_lost: Callable[[], None], heartbeat_s: float = 1.0,
    ) -> None:
        self._conninfo = conninfo
        self.address = address
        self._lock_class = lock_class
        self._prefix = app_prefix
        self._on_gained = on_gained
        self._on_lost = on_lost
        self._held: set[int] = set()
        self._others: dict[int, str] = {}
        self._mutex = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, args=(heartbeat_s,),
                                           name=f"{app_prefix.strip()}-lease", daemon=True)
        self._heartbeat.start()

    def held_now(self, p: int) -> bool:
        """True when this process owns ``p`` now (memory only, no I/O)."""
        return p in self._held

    def known(self, p: int) -> str | None:
        """The other owner's address if already known (no I/O), else None."""
        return self._others.get(p)

    def forget(self, p: int) -> None:
        """The owner did not answer: look it up again next time."""
        self._others.pop(p, None)

    def held(self) -> set[int]:
        return set(self._held)

    def claim(self, p: int) -> str | None:
        """None: this process owns ``p`` (taking it if free); otherwise the owner's gRPC address
        ("" when unknown: the StorDB does not answer, or the owner published none). Blocks on
        the StorDB."""
        if p in self._held:
            return None
        with self._mutex:
            if p in self._held:
                return None
            try:
                conn = self._connection()
                for _ in range(2):
                    if self._try_lock(conn, p):
                        return None
                    row = conn.execute(_HOLDER, (self._lock_class, p)).fetchone()
                    if row:
                        break
                    # the holder ended between the two statements (an owner just killed):
                    # the lock is free now, so try it once more rather than answer "unknown"
            except psycopg.Error as exc:
                # StorDB unreachable: nobody can be asked; the caller decides (RALs serves on its
                # locked path, a stateful service fails the request) and the next call tries again.
                log.info("partition.claim_failed", lease=self._prefix.strip(), partition=p,
                         error=str(exc).splitlines()[0])
                if self._conn is not None and (self._conn.closed or self._conn.broken):
                    self._conn = None
                return ""
        holder = row[0] if row else ""
        addr = holder[len(self._prefix):] if holder.startswith(self._prefix) else ""
        if addr:
            self._others[p] = addr
        return addr

    def _try_lock(self, conn: psycopg.Connection, p: int) -> bool:
        got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (self._lock_class, p)).fetchone()
        if not (got and got[0]):
            return False
        self._on_gained(p)  # drop or reload what is kept of it before serving it
        self._held.add(p)
        self._others.pop(p, None)
        log.info("partition.taken", lease=self._prefix.strip(), partition=p, owner=self.address)
        return True

    def fenced(self, parts: Iterable[int]) -> psycopg.Connection:
        """The lease connection, to write state of ``parts`` on: the write commits only while this
        session holds their locks. :class:`NotOwner` when one is not held (any more).
        psycopg serialises statements on a connection, so one autocommit statement is atomic."""
        conn = self._conn
        if conn is None or conn.closed or conn.broken or not all(p in self._held for p in parts):
            raise NotOwner(self._prefix.strip())
        return conn

    def reader(self) -> psycopg.Connection:
        """The lease connection, for ``on_gained`` to read a partition's saved state on."""
        if self._conn is None:
            raise NotOwner(self._prefix.strip())
        return self._conn

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
                                         application_name=self._prefix + self.address)
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
                    log.info("partition.lease_lost", lease=self._prefix.strip(), partitions=lost,
                             error=str(exc).splitlines()[0])
            self._on_lost()


class NotOwner(CGRError):
    """This process does not own (all) the keys (any more): nothing was written or done.
    UNAVAILABLE on the wire, so a forwarding replica looks the owner up again."""

    grpc_code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, detail: str) -> None:
        super().__init__("SERVER_ERROR", f"not the owner: {detail}")


def request_flags(context: Any) -> tuple[bool, bool]:
    """(forwarded, retried): what the sending replica said in the request's metadata."""
    md = context.invocation_metadata() or ()
    keys = {m[0] for m in md}
    return FORWARDED in keys, RETRIED in keys


class Partitioned:
    """A stateful service's share of the partitions and its way to the other owners (StatS,
    ThresholdS): keys are ``tenant:ID``; one process on SQLite owns everything."""

    def __init__(self, leases: PartitionLeases | OwnsAll, advertised: str, settings: Any,
                 name: str = "") -> None:
        self.name = name  # the service's, for the forwards metric
        self.leases = leases
        self.advertised = advertised
        self.settings = settings
        self.single = isinstance(leases, OwnsAll)
        self._peers: dict[str, grpc.aio.Channel] = {}

    def owns(self, key: str) -> bool:
        """Memory only: the hot path asks this per matched key."""
        return self.single or self.leases.held_now(partition_of(key))

    async def route(self, keys: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        """``keys`` split into this process's (claiming free partitions) and each other owner's,
        in their order. SERVER_ERROR when an owner cannot be found (StorDB down, no address)."""
        local: list[str] = []
        remote: dict[str, list[str]] = {}
        for key in keys:
            p = partition_of(key)
            if self.owns(key):
                local.append(key)
                continue
            addr = self.leases.known(p)
            if addr is None:
                addr = await asyncio.to_thread(self.leases.claim, p)
            if addr is None or (addr and addr == self.advertised):
                local.append(key)
            elif addr:
                remote.setdefault(addr, []).append(key)
            else:
                raise CGRError("SERVER_ERROR", f"no reachable owner for {key}")
        return local, remote

    async def take(self, keys: list[str]) -> None:
        """A forwarded request: this process must own every key now (claiming free partitions),
        else :class:`NotOwner` before anything is changed."""
        for key in keys:
            if self.owns(key):
                continue
            if await asyncio.to_thread(self.leases.claim, partition_of(key)) is not None:
                raise NotOwner(f"{self.advertised} does not own {key}")

    def forget(self, keys: list[str]) -> None:
        for key in keys:
            self.leases.forget(partition_of(key))

    def channel(self, addr: str) -> grpc.aio.Channel:
        if addr not in self._peers:
            self._peers[addr] = auth.aio_channel(self.settings, addr)
        return self._peers[addr]

    def ownership(self) -> dict[str, Any]:
        """GetOwnership's fields."""
        if self.single:
            return {"advertised": self.advertised, "partitions": range(PARTITIONS),
                    "partitions_total": PARTITIONS, "mode": "owns-all"}
        return {"advertised": self.advertised, "partitions": sorted(self.leases.held()),
                "partitions_total": PARTITIONS, "mode": "advisory-locks"}

    async def close(self) -> None:
        self.leases.close()  # first: the partitions go to the other processes at once
        for ch in self._peers.values():
            await ch.close()
        self._peers.clear()


async def call_owner(part: Partitioned, addr: str, keys: list[str], send: Callable[..., Any],
                     *, timeout: float, retried: bool = False, attempts: int = 40) -> Any | None:
    """``send(channel, metadata, timeout)`` to the owner of ``keys``; when the owner is gone
    (UNAVAILABLE: killed, or no longer the owner) the partitions are looked up again (taken here
    when their lock went with it) and the request is sent again marked :data:`RETRIED`. Returns
    the owner's answer, or None when this process owns the keys now (serve them here, retried).
    ``retried``: the request is itself a repeat (the client's), so every send is marked."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    PARTITION_FORWARDS.labels(part.name).inc()
    for _ in range(attempts):
        md: tuple[tuple[str, str], ...] = ((FORWARDED, "1"),) + (((RETRIED, "1"),) if retried else ())
        try:
            return await send(part.channel(addr), md, max(deadline - loop.time(), 0.05))
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE or loop.time() >= deadline:
                raise CGRError.from_message(err.details() or err.code().name) from None
            log.info("partition.owner_unavailable", owner=addr, keys=len(keys))
        retried = True
        part.forget(keys)
        local, remote = await part.route(keys)
        if not remote:
            return None
        if len(remote) > 1 or local:
            raise CGRError("SERVER_ERROR", "owners changed during the request")
        addr = next(iter(remote))
        await asyncio.sleep(0.05)  # the old owner's lock may not be released yet
    raise CGRError("SERVER_ERROR", f"no owner answered for {keys[0]}")


def advertised(settings: Any, name: str, bound_address: str, logger: Any) -> str:
    """The address published with this process's partitions (peers forward there):
    ``<name>_advertise``, else the listen address. A wildcard listen address is dialable by
    nobody else: then nothing is published and the log says why."""
    setting = getattr(settings, f"{name}_advertise")
    host, port = split_host_port(
        bound_address or join_host_port(settings.listen_host, settings.grpc_port(name)))
    try:
        address = advertised_address(setting, host, port)
    except OSError as exc:  # *hostname that does not resolve
        raise ConfigError(f"{name}_advertise {setting!r}: {exc}") from None
    if not address:
        logger.error(f"{name}.no_advertise_address", listen=join_host_port(host, port),
                     fix=f"set CGRPY_{name.upper()}_ADVERTISE to an address the other {name} "
                         "replicas can reach (Kubernetes: the pod IP, status.podIP)")
    else:
        logger.info(f"{name}.advertise", address=address)
    return address


def start_partitioned(service: Any, *, lock_class: int, on_gained: Callable[[int], None],
                      on_lost: Callable[[], None]) -> Partitioned:
    """The partitions of ``service`` (a BaseService): advisory-lock leases on a Postgres StorDB,
    everything owned on SQLite."""
    s = service.settings
    if not s.partitioned:
        return Partitioned(OwnsAll(), service.bound_address, s, service.name)
    address = advertised(s, service.name, service.bound_address, service.log)
    conninfo = make_url(s.stordb_url).set(drivername="postgresql").render_as_string(hide_password=False)
    leases = PartitionLeases(conninfo, address, lock_class=lock_class,
                             app_prefix=f"cgrpy-{service.name} ", on_gained=on_gained, on_lost=on_lost)
    return Partitioned(leases, address, s, service.name)


def budget(context: Any, settings: Any) -> float:
    """Seconds left of the request's deadline (the configured RPC timeout when it has none)."""
    left = context.time_remaining()
    return left if left is not None else settings.rpc_timeout / 1e9


async def spread(part: Partitioned, keys: list[str], send: Callable[..., Any],
                 here: Callable[[list[str], bool], Any], *, timeout: float,
                 retried: bool = False) -> list[tuple[list[str], Any, bool]]:
    """The update of ``keys`` done where they are owned: ``send(channel, keys, metadata,
    timeout)`` once per other owner, concurrently, and ``await here(keys, retried)`` for this
    process's (also for an owner's keys taken over meanwhile, then retried). Returns
    ``(keys, answer, answered_here)`` per group; an owner's error answer is the
    :class:`CGRError` itself, so one owner's NOT_FOUND does not hide the others' answers."""
    local, remote = await part.route(keys)

    async def there(addr: str, ks: list[str]) -> tuple[list[str], Any, bool]:
        try:
            got = await call_owner(part, addr, ks, lambda ch, md, t: send(ch, ks, md, t),
                                   timeout=timeout, retried=retried)
        except CGRError as exc:
            return ks, exc, False
        if got is None:
            return ks, await here(ks, True), True
        return ks, got, False

    async def mine() -> tuple[list[str], Any, bool]:
        return local, await here(local, retried), True

    jobs = [there(addr, ks) for addr, ks in remote.items()]
    if local:
        jobs.append(mine())
    return list(await asyncio.gather(*jobs))


async def at_owner(part: Partitioned, key: str, context: Any, call: Callable[..., Any],
                   settings: Any) -> Any | None:
    """A request about one key (a read, a reset): the owner's answer through ``call(channel,
    metadata, timeout)``, or None to serve it here (ours, taken now, a forwarded request)."""
    if part.single or part.owns(key):
        return None
    if request_flags(context)[0]:
        await part.take([key])
        return None
    local, remote = await part.route([key])
    if local:
        return None
    addr = next(iter(remote))
    return await call_owner(part, addr, [key], call, timeout=budget(context, settings))
