"""Many unary calls over one bidirectional stream (``cgrates.v1.Mux/Call``).

A unary gRPC call costs a new HTTP/2 stream, its headers and trailers on both sides; for the
small, frequent calls between services that setup is most of the price. The Mux stream carries
each call as an envelope {id, method, payload} and dispatches it to the *same* handler the unary
RPC runs (with the same error translation and metrics), so both transports answer alike and every
unary RPC stays callable (grpcurl, contract tests).

Server side: :class:`HandlerTable` records the unary handlers as a service registers them (the
generated ``add_*Servicer_to_server`` functions call the server, which :class:`RecordingServer`
forwards); :class:`MuxServicer` answers the stream. The client side is in ``client.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from cgrates.v1 import mux_pb2, mux_pb2_grpc
from cgrpy.runtime.frame import FRAME_PORT_KEY

MUX_SERVICE = mux_pb2.DESCRIPTOR.services_by_name["Mux"].full_name
MUX_METHOD = f"/{MUX_SERVICE}/Call"
# The details of an UNAVAILABLE reply that means "not run: this server is stopping". With id 0
# it tells the client to send nothing more on this stream and to half-close it.
DRAINING = "MUX_DRAINING"

# (request, context) -> response: a unary behaviour already wrapped by the runtime's guards.
Behaviour = Callable[[Any, Any], Awaitable[Any]]
# Wraps a raw unary behaviour of ``method`` with the runtime's guards (errors, metrics).
Guard = Callable[[str, Behaviour], Behaviour]


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


class HandlerTable:
    """The unary handlers of one server by full method name, guarded once on first use."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._generic: list[grpc.GenericRpcHandler] = []
        self._registered: dict[str, grpc.RpcMethodHandler] = {}
        self._cache: dict[str, tuple[Behaviour, Any, Any] | None] = {}

    def add_generic(self, handlers: Any) -> None:
        self._generic.extend(handlers)

    def add_registered(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        for name, h in handlers.items():
            self._registered[f"/{service}/{name}"] = h

    def lookup(self, method: str) -> tuple[Behaviour, Any, Any] | None:
        """(guarded behaviour, request deserializer, response serializer), or None if unknown."""
        try:
            return self._cache[method]
        except KeyError:
            pass
        handler = self._registered.get(method)
        if handler is None:
            for g in self._generic:
                handler = g.service(_Details(method))
                if handler is not None:
                    break
        entry = None
        if handler is not None and handler.unary_unary is not None:
            entry = (self._guard(method, handler.unary_unary), handler.request_deserializer,
                     handler.response_serializer)
        self._cache[method] = entry
        return entry


class RecordingServer:
    """A ``grpc.aio.Server`` stand-in for ``BaseService.register``: forwards everything and
    records the unary handlers into a :class:`HandlerTable` on the way."""

    def __init__(self, server: grpc.aio.Server, table: HandlerTable) -> None:
        self._server = server
        self._table = table

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._table.add_generic(handlers)
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._table.add_registered(service, handlers)
        self._server.add_registered_method_handlers(service, handlers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class MuxContext:
    """The part of ``grpc.aio.ServicerContext`` a unary handler may use, for one stream call."""

    __slots__ = ("_code", "_deadline", "_details", "_peer", "expired")

    def __init__(self, timeout_ns: int, peer: str) -> None:
        self.expired = False  # the request's deadline passed and its task was cancelled
        self._code: Any = None
        self._details = ""
        self._deadline = time.monotonic() + timeout_ns / 1e9 if timeout_ns > 0 else None
        self._peer = peer

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        self._code, self._details = code, details
        raise grpc.aio.AbortError()

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> Any:
        return self._code

    def details(self) -> str:
        return self._details

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def peer(self) -> str:
        return self._peer

    def cancelled(self) -> bool:
        return False

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    async def send_initial_metadata(self, metadata: Any) -> None:
        pass


def _reply(rid: int, code: grpc.StatusCode, details: str) -> mux_pb2.MuxReply:
    return mux_pb2.MuxReply(id=rid, code=code.value[0], details=details)


class MuxServicer(mux_pb2_grpc.MuxServicer):
    """Answers ``Mux/Call``: every request runs concurrently; replies go back as they finish."""

    def __init__(self, table: HandlerTable) -> None:
        self.table = table
        self.frame_port: int | None = None  # the frame lane's port, named to every stream opened
        self._draining = False
        self._outboxes: set[Outbox] = set()

    def drain(self) -> None:
        """Graceful stop: tell every client to stop sending on its stream; requests that still
        arrive are answered "not run" (the client retries them elsewhere, as unary)."""
        self._draining = True
        for out in self._outboxes:
            asyncio.create_task(_quietly(out.send(_reply(0, grpc.StatusCode.UNAVAILABLE, DRAINING))))

    async def dispatch(self, req: mux_pb2.MuxRequest, peer: str) -> mux_pb2.MuxReply:
        """The reply to one envelope. Runs in a task of its own (the caller's: the lane's or the
        stream's per request), which the request's deadline cancels."""
        rid = req.id
        if self._draining:
            return _reply(rid, grpc.StatusCode.UNAVAILABLE, DRAINING)
        entry = self.table.lookup(req.method)
        if entry is None:
            return _reply(rid, grpc.StatusCode.UNIMPLEMENTED, f"NOT_IMPLEMENTED: {req.method}")
        behaviour, deserialize, serialize = entry
        try:
            request = deserialize(req.payload)
        except Exception as exc:  # noqa: BLE001 - a malformed payload is the caller's error
            return _reply(rid, grpc.StatusCode.INVALID_ARGUMENT, f"SERVER_ERROR: bad payload: {exc}")
        timeout_ns = req.timeout_ns
        ctx = MuxContext(timeout_ns, peer)
        # The deadline: one timer cancelling this task, the context remembering that it fired;
        # what an asyncio.timeout scope does at a third of its cost (~1.5 µs against ~5 µs under
        # uvloop), and every request between services carries a deadline.
        timer = task = None
        if timeout_ns > 0 and (task := asyncio.current_task()) is not None:
            cancelling = task.cancelling()
            timer = asyncio.get_running_loop().call_later(timeout_ns / 1e9, _expire, task, ctx)
        try:
            response = await behaviour(request, ctx)
        except grpc.aio.AbortError:
            return _reply(rid, ctx.code() or grpc.StatusCode.UNKNOWN, ctx.details())
        except asyncio.CancelledError:
            # this request's deadline only if the timer fired and nobody else (a lost
            # connection, a stopping server) cancelled the task meanwhile: else the task ends
            if ctx.expired and task is not None and task.uncancel() <= cancelling:
                return _reply(rid, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            raise
        finally:
            if timer is not None:
                timer.cancel()
        code = ctx.code()
        if code is not None and code != grpc.StatusCode.OK:
            return _reply(rid, code, ctx.details())
        try:
            return mux_pb2.MuxReply(id=rid, payload=serialize(response))
        except Exception as exc:  # noqa: BLE001 - the unary path would end INTERNAL too
            return _reply(rid, grpc.StatusCode.INTERNAL, f"SERVER_ERROR: {exc}")

    async def Call(self, request_iterator: AsyncIterator[mux_pb2.MuxRequests],  # noqa: N802 - gRPC name
                   context: grpc.aio.ServicerContext) -> None:
        out = Outbox(context.write, lambda replies: mux_pb2.MuxReplies(replies=replies))
        pending: set[asyncio.Task[None]] = set()
        peer = context.peer()
        if self.frame_port is not None:  # this stream passed the token check: offer the lane
            await context.send_initial_metadata(((FRAME_PORT_KEY, str(self.frame_port)),))

        async def answer(req: mux_pb2.MuxRequest) -> None:
            await _quietly(out.send(await self.dispatch(req, peer)))

        self._outboxes.add(out)
        try:
            if self._draining:
                await _quietly(out.send(_reply(0, grpc.StatusCode.UNAVAILABLE, DRAINING)))
            async for frame in request_iterator:
                for req in frame.requests:
                    task = asyncio.create_task(answer(req))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            self._outboxes.discard(out)
            for task in list(pending):
                task.cancel()


def _expire(task: asyncio.Task[Any], ctx: MuxContext) -> None:
    ctx.expired = True
    task.cancel()


async def _quietly(write: Awaitable[None]) -> None:
    try:
        await write
    except Exception:  # noqa: BLE001 - the client went away; its calls fail on its side
        return


class Outbox:
    """Envelopes for one gRPC stream, written one stream message at a time (gRPC allows one
    write in progress per call). The first sender writes at once (no extra task, no wait when
    calls are sparse); envelopes sent meanwhile queue up and go together in the next message,
    so a busy stream pays one write for several calls."""

    def __init__(self, write: Callable[[Any], Awaitable[None]], frame: Callable[[list[Any]], Any]) -> None:
        self._write = write
        self._frame = frame
        self._queue: list[tuple[Any, asyncio.Future[None]]] = []
        self._idle = asyncio.Event()
        self._idle.set()

    async def send(self, item: Any) -> None:
        """Returns once ``item`` is written; raises what the write raised."""
        if not self._idle.is_set():
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._queue.append((item, done))
            return await done
        self._idle.clear()
        try:
            await self._write(self._frame([item]))
        finally:
            if self._queue:
                asyncio.create_task(self._drain())
            else:
                self._idle.set()

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = [(item, done) for item, done in self._queue if not done.done()]  # senders still waiting
                self._queue = []
                if not batch:
                    continue
                try:
                    await self._write(self._frame([item for item, _ in batch]))
                except Exception as exc:  # noqa: BLE001 - handed to the items' senders
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._idle.set()

    async def close(self, finish: Callable[[], Awaitable[None]]) -> None:
        """``finish()`` (e.g. half-close the stream) once everything queued is written."""
        while not self._idle.is_set():
            await self._idle.wait()
        self._idle.clear()
        try:
            await finish()
        finally:
            self._idle.set()
