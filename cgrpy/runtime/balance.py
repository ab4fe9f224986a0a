"""Calls spread over several replicas of one service (client-side load balancing).

A ``*_addr`` setting naming several targets (``a:1,b:2``) or a name that resolves to several
(``dns:///attributes:20051``, as a Kubernetes headless Service answers) gives a
:class:`Balancer`: one single-address ``ServiceClient`` per replica (its own channel and its own
long-lived Mux stream), taken in turn for each call. Why not gRPC's ``round_robin`` policy on one
channel: the Mux stream is one call, so it would stay on one replica for its whole life; one
stream per replica keeps the cheap transport and still spreads the load.

A replica whose call failed as UNAVAILABLE or DEADLINE_EXCEEDED (dead, or hung: a stopped process
keeps its connection open), or whose channel is in TRANSIENT_FAILURE, is skipped for a moment
(``DOWN_FOR_S``); an idempotent call that failed that way is retried at once on the next live
replica, so killing one replica costs no call that the caller marked idempotent. A
non-idempotent call is never sent twice (as with one address). A ``dns:///`` name is resolved
with the system resolver every ``rpc_resolve_interval`` and, at most once a second, after a
failure; a replica that left the answer is closed once its calls had time to finish.

Owner routing (RALs): a service whose keys are partitioned between its replicas (each account
belongs to one partition, each partition to one replica at a time) lets the client send a call
for a key straight to the key's owner, instead of to any replica that then forwards it (a hop
more). The client learns who owns what by asking every replica which partitions it holds
(``owners``, e.g. RALs ``GetOwnership``) every ``OWNERS_REFRESH_S``, in the background; a call
whose partition has no known live owner takes the rotation as before. A stale answer costs only
that forwarding hop: the replica asked still forwards to the real owner, which alone changes
the account. A call about several keys (StatS/ThresholdS: the items an event will touch,
``cgrpy.runtime.owner_routes``) goes to the live replica owning the most of them.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc

from cgrpy.netaddr import join_host_port, split_host_port
from cgrpy.runtime.logs import get_logger
from cgrpy.runtime.partitions import partition_of

log = get_logger("balance")

DOWN_FOR_S = 1.0  # a failed replica is skipped this long, then tried again
RESOLVE_AFTER_FAILURE_S = 1.0  # re-resolution after a failure, at most this often
OWNERS_REFRESH_S = 2.0  # owner routing: how often the replicas are asked what they own
OWNERS_ASK_TIMEOUT_S = 1.0

# Asks one replica's client which partitions that replica holds now.
OwnersLookup = Callable[[Any], Awaitable[Iterable[int]]]


class Replica:
    """One address of the service and its client; ``down_until``: monotonic time before which
    it is skipped."""

    def __init__(self, addr: str, client: Any) -> None:
        self.addr = addr
        self.client = client
        self.down_until = 0.0

    def live(self, now: float) -> bool:
        if now < self.down_until:
            return False
        state = self.client.channel.get_state(try_to_connect=False)
        return state != grpc.ChannelConnectivity.TRANSIENT_FAILURE


async def resolve(target: str) -> list[str]:
    """Every address ``dns:///host:port`` resolves to, as sorted ``ip:port`` targets."""
    host, port = split_host_port(target.removeprefix("dns:///"))
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({join_host_port(info[4][0], port) for info in infos})


class Balancer:
    """The replicas of one service, in turn. ``make_client(addr)`` builds a single-address
    ``ServiceClient``; ``transport_error`` is the exception type of a retryable failure."""

    def __init__(self, targets: tuple[str, ...], make_client: Callable[[str], Any],
                 transport_error: type[Exception], resolve_interval_s: float,
                 owners: OwnersLookup | None = None) -> None:
        self._owners = owners
        self._owner_of: dict[int, Replica] = {}  # partition -> the replica that said it holds it
        self._owners_at = -1e9
        self._owners_task: asyncio.Task | None = None
        self.routed = 0  # calls sent straight to their key's owner (tests, metrics)
        self.dns = [t for t in targets if t.startswith("dns:///")]
        self._static = [t for t in targets if not t.startswith("dns:///")]
        self._make = make_client
        self._transport_error = transport_error
        self._interval = resolve_interval_s
        self.replicas: list[Replica] = [Replica(a, make_client(a)) for a in self._static]
        self._next = 0
        self._resolved_at = -1e9  # never: the first call resolves
        self._resolving: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()

    # -- choosing a replica -------------------------------------------------------------------

    def pick(self, avoid: Replica | None = None) -> Replica | None:
        """The next live replica in turn (not ``avoid`` when another is live); if none is live,
        the one that comes back soonest: trying it beats refusing without a try."""
        replicas, now = self.replicas, time.monotonic()
        n = len(replicas)
        for i in range(n):
            replica = replicas[(self._next + i) % n]
            if replica is not avoid and replica.live(now):
                self._next = (self._next + i + 1) % n
                return replica
        if not replicas:
            return None
        return min(replicas, key=lambda r: (r is avoid, r.down_until))

    def owner(self, key: str | Sequence[str]) -> Replica | None:
        """The live replica known to own ``key``'s partition (of several keys: the most of
        them; the first such on a tie), or None (then any replica)."""
        self._refresh_owners()
        now = time.monotonic()
        votes: dict[Replica, int] = {}
        for k in (key,) if isinstance(key, str) else key:
            replica = self._owner_of.get(partition_of(k))
            if replica is not None and replica in self.replicas and replica.live(now):
                votes[replica] = votes.get(replica, 0) + 1
        return max(votes, key=votes.__getitem__) if votes else None

    async def call(self, method: str, request: Any, *, idempotent: bool, timeout: float,
                   attempts: int, route: str | Sequence[str] | None = None) -> Any:
        await self._refresh()
        tries = attempts if idempotent else 1
        delay, last = 0.05, None
        for attempt in range(1, tries + 1):
            replica = self.owner(route) if route and attempt == 1 and self._owners else None
            if replica is not None:
                self.routed += 1
            else:
                replica = self.pick(avoid=last)
            if replica is None:
                from cgrpy.errors import CGRError

                raise CGRError("SERVER_ERROR", f"no address for {self.dns or self._static}",
                               transient=True)
            try:
                return await replica.client._attempt(method, request, timeout)
            except self._transport_error as exc:
                self._failed(replica, exc)
                if attempt == tries:
                    raise exc.error from None  # type: ignore[attr-defined]
                if not self._other_live(replica):  # nowhere else to go: back off
                    await asyncio.sleep(delay)
                    delay *= 2
                last = replica
        raise AssertionError("unreachable")

    def _other_live(self, replica: Replica) -> bool:
        now = time.monotonic()
        return any(r is not replica and r.live(now) for r in self.replicas)

    def _failed(self, replica: Replica, exc: Exception) -> None:
        if getattr(exc, "code", None) in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            replica.down_until = time.monotonic() + DOWN_FOR_S
            if self.dns and time.monotonic() - self._resolved_at > RESOLVE_AFTER_FAILURE_S:
                self._resolved_at = -1e9  # the next call re-resolves

    # -- who owns which partition ------------------------------------------------------------------

    def _refresh_owners(self) -> None:
        now = time.monotonic()
        if now - self._owners_at < OWNERS_REFRESH_S:
            return
        if self._owners_task is not None and not self._owners_task.done():
            return
        self._owners_at = now
        self._owners_task = asyncio.create_task(self._load_owners())

    async def _load_owners(self) -> None:
        owner_of: dict[int, Replica] = {}

        async def ask(replica: Replica) -> None:
            try:
                held = await asyncio.wait_for(self._owners(replica.client), OWNERS_ASK_TIMEOUT_S)  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - unknown: its keys take the rotation meanwhile
                return
            for p in held:
                owner_of[p] = replica

        await asyncio.gather(*(ask(r) for r in list(self.replicas)))
        self._owner_of = owner_of

    # -- keeping the dns:/// answer current ------------------------------------------------------

    async def _refresh(self) -> None:
        # with no replica yet (the name had no ready address) look again each second, not
        # each interval: the first replica to become ready is used within a second
        interval = self._interval if self.replicas else RESOLVE_AFTER_FAILURE_S
        if not self.dns or time.monotonic() - self._resolved_at < interval:
            return
        if self._resolving is None or self._resolving.done():
            self._resolved_at = time.monotonic()
            self._resolving = asyncio.create_task(self._resolve())
        if not self.replicas:  # nothing to call yet: this call waits for the first answer
            await asyncio.shield(self._resolving)

    async def _resolve(self) -> None:
        found: list[str] = []
        for target in self.dns:
            try:
                found += await resolve(target)
            except OSError as exc:
                log.warning("balance.resolve_failed", target=target, error=str(exc))
                return  # keep the replicas we have: a DNS hiccup is not every replica gone
        self.update(self._static + found)

    def update(self, addrs: list[str]) -> None:
        """Make the rotation exactly ``addrs``: new ones get a client, gone ones are closed
        after a call's deadline (calls in flight on them finish)."""
        known = {r.addr: r for r in self.replicas}
        wanted = list(dict.fromkeys(addrs))
        if not wanted or wanted == list(known):
            return
        self.replicas = [known.get(a) or Replica(a, self._make(a)) for a in wanted]
        gone = [r for a, r in known.items() if a not in wanted]
        if gone:
            log.info("balance.replicas", addrs=wanted, removed=[r.addr for r in gone])
            task = asyncio.create_task(self._close_later(gone))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close_later(self, gone: list[Replica]) -> None:
        await asyncio.sleep(max(r.client.timeout for r in gone) + 1)
        await asyncio.gather(*(r.client.close() for r in gone), return_exceptions=True)

    async def close(self) -> None:
        if self._resolving is not None:
            self._resolving.cancel()
        if self._owners_task is not None:
            self._owners_task.cancel()
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*(r.client.close() for r in self.replicas), return_exceptions=True)
        self.replicas = []


async def rals_owners(client: Any) -> list[int]:
    """An :data:`OwnersLookup` for RALs, StatS and ThresholdS: the partitions one replica holds
    (``GetOwnership``); none on SQLite, where one process serves everything anyway."""
    from cgrates.v1 import common_pb2

    reply = await client.call("GetOwnership", common_pb2.Empty(), idempotent=True, attempts=1,
                              timeout=OWNERS_ASK_TIMEOUT_S)
    return list(reply.partitions) if reply.mode == "advisory-locks" else []


partition_owners = rals_owners  # the same question to any partitioned service
