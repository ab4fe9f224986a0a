"""A request for a session another live SM replica owns is passed to that replica.

OpenSIPS sends every command to the first engine it can reach and goes back to an engine once its
``retry_timeout`` has passed, so after a failover and a restart the Terminate, Update or
ProcessCDR of a call can reach a replica other than the one charging it. That replica must not
charge the call itself (a one-shot debit beside the owner's loop): it looks the session's owner up
in ``sm_sessions`` (the owner name starts with the owner's gRPC address) and sends the request to
it over SessionService, marked as forwarded so it is never passed on again. An owner that does
not answer is dead or dying: its session is adopted here by the next sweep.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from cgrates.v1 import sm_pb2, sm_pb2_grpc
from cgrpy.cgrid import cgrid_of
from cgrpy.event import CGREvent
from cgrpy.runtime import auth
from cgrpy.runtime.client import to_cgr_error
from cgrpy.runtime.logs import get_logger
from cgrpy.wire import event_from_pb, event_to_pb
from services.sm.sessions.core import LOCAL, NOT_OURS
from services.sm.sessions.types import AttributesReply, SessionFlags, UpdateResult
from services.sm.sqlstore import SqlSessionStore

FORWARDED = "x-cgrpy-sm-forwarded"
# set while a forwarded request is served here: it is answered here, whatever happens
forwarded: contextvars.ContextVar[bool] = contextvars.ContextVar("sm_forwarded", default=False)
log = get_logger("sm")


def owner_address(owner: str) -> str:
    return owner.rsplit("/", 1)[0]


def _flags_pb(flags: SessionFlags | None) -> sm_pb2.SessionFlags:
    f = flags or SessionFlags()
    return sm_pb2.SessionFlags(
        get_max_usage=f.get_max_usage, get_attributes=f.get_attributes, get_suppliers=f.get_suppliers,
        process_thresholds=f.process_thresholds, process_stat_queues=f.process_stats,
        release_resources=f.release_resources)


class OwnerForwarder:
    def __init__(self, settings: Any, store: SqlSessionStore, timeout_s: float,
                 adopt: Callable[[], Awaitable[None]]) -> None:
        self.settings = settings
        self.store = store
        self.timeout_s = timeout_s
        self.adopt = adopt
        self._peers: dict[str, tuple[grpc.aio.Channel, sm_pb2_grpc.SessionServiceStub]] = {}
        self.forwarded = 0

    async def __call__(self, method: str, event: CGREvent, flags: SessionFlags | None) -> Any:
        """The owner's answer (an error word or None; an UpdateResult for Update), NOT_OURS or
        LOCAL. An owner that does not answer is waited for (its lock frees when it is dead, then
        the session is adopted here) for up to ``timeout_s``."""
        if forwarded.get():
            return NOT_OURS
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while True:
            owner = await asyncio.to_thread(self.store.owner_of, cgrid_of(event))
            if owner is None:
                return NOT_OURS
            if owner == self.store.owner:
                return LOCAL
            answer = await self._send(owner, method, event, flags)
            if answer is not LOCAL:
                return answer
            if loop.time() >= deadline:
                return "SERVER_ERROR" if method != "UpdateSession" else UpdateResult(0, error="SERVER_ERROR")
            await asyncio.sleep(0.1)
            await self.adopt()

    async def _send(self, owner: str, method: str, event: CGREvent, flags: SessionFlags | None) -> Any:
        addr = owner_address(owner)
        if addr not in self._peers:
            ch = auth.aio_channel(self.settings, addr)
            self._peers[addr] = (ch, sm_pb2_grpc.SessionServiceStub(ch))
        req = sm_pb2.SessionRequest(event=event_to_pb(event), flags=_flags_pb(flags))
        try:
            reply = await getattr(self._peers[addr][1], method)(
                req, timeout=self.timeout_s, metadata=((FORWARDED, "1"),))
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                log.info("sm.owner_unreachable", owner=owner, method=method)
                return LOCAL  # try again: a sweep adopts it here once its lock is free
            word = to_cgr_error("sm", method, err).word
            return UpdateResult(max_usage_ns=0, error=word) if method == "UpdateSession" else word
        self.forwarded += 1
        if method == "UpdateSession":
            attributes = None
            if reply.HasField("event"):  # the owner ran AttributeS (GetAttributes)
                attributes = AttributesReply(
                    event=event_from_pb(reply.event, event.tenant),
                    matched_profiles=list(reply.attribute_profiles),
                    altered_fields=list(reply.altered_fields))
            return UpdateResult(max_usage_ns=reply.max_usage_ns if reply.max_usage_ns >= 0 else None,
                                attributes=attributes)
        return None

    async def close(self) -> None:
        for ch, _ in self._peers.values():
            await ch.close()
        self._peers.clear()
