"""Calling another service: one channel per service, a deadline on every call, retries only
for calls the caller marks idempotent, CGRateS error words turned back into CGRError.

Calls travel over the channel's Mux stream (``cgrpy.runtime.mux``: one long-lived bidirectional
stream carrying many calls) when the server offers it, else as plain unary RPCs. Both transports
run the same server handler, so the answer, the error word and the status code are the same. A
broken stream fails only the calls in flight on it (as UNAVAILABLE, retried if idempotent like a
unary call); the next attempt goes unary while the stream is re-opened after a pause.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, TypeVar

import grpc
from google.protobuf import descriptor_pool, message_factory

from cgrates.v1 import mux_pb2
from cgrpy.config import Settings, split_targets
from cgrpy.errors import CGRError
from cgrpy.runtime import auth
from cgrpy.runtime.balance import Balancer
from cgrpy.runtime.mux import DRAINING, MUX_METHOD, Outbox

T = TypeVar("T")

# Transient failures worth another try (for idempotent calls only).
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
_CODES = {c.value[0]: c for c in grpc.StatusCode}
# After the stream broke (or the server has no Mux), calls go unary this long before retrying it.
MUX_RETRY_AFTER_S = 5.0


class StreamError(Exception):
    """A call on the Mux stream ended without a reply from the handler."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class NotSent(Exception):
    """The server never ran the request (not written, no Mux service, or the server drains)."""


class _Stream:
    """One open ``Mux/Call``: its writer, its calls waiting for a reply, its reader task."""

    def __init__(self, call: Any, owner: MuxStream) -> None:
        self.call = call
        self.pending: dict[int, asyncio.Future[mux_pb2.MuxReply]] = {}
        self.outbox = Outbox(call.write, lambda requests: mux_pb2.MuxRequests(requests=requests))
        self.reader = asyncio.create_task(self._read(owner))

    async def _read(self, owner: MuxStream) -> None:
        code, details = grpc.StatusCode.UNAVAILABLE, "Mux stream ended"
        try:
            while (frame := await self.call.read()) is not grpc.aio.EOF:
                for reply in frame.replies:
                    if reply.id == 0 and reply.details == DRAINING:
                        # the server stops: no new calls here; half-close so it can end the
                        # stream once the calls it runs are answered (they still arrive below)
                        owner.retire(self)
                        asyncio.create_task(self.outbox.close(self.call.done_writing))
                        continue
                    fut = self.pending.pop(reply.id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(reply)
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details() or ""
        except asyncio.CancelledError:
            code, details = grpc.StatusCode.CANCELLED, "client closed"
            self.call.cancel()
        finally:
            owner.retire(self)
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(StreamError(code, details))
            self.pending.clear()


class MuxStream:
    """The channel's current ``Mux/Call`` stream, opened on first use, shared by concurrent
    calls; a broken or draining one is retired and a fresh one opened after a pause."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Any = None) -> None:
        self._open_call = channel.stream_stream(
            MUX_METHOD,
            request_serializer=mux_pb2.MuxRequests.SerializeToString,
            response_deserializer=mux_pb2.MuxReplies.FromString,
        )
        self._metadata = metadata  # checked once, when the stream opens
        self._ids = itertools.count(1)
        self._stream: _Stream | None = None
        self._streams: set[_Stream] = set()  # every stream whose reader still runs
        self.down_until = 0.0  # monotonic time before which callers should not use the stream

    def usable(self) -> bool:
        return time.monotonic() >= self.down_until

    def retire(self, stream: _Stream) -> None:
        if self._stream is stream:
            self._stream = None
            self.down_until = time.monotonic() + MUX_RETRY_AFTER_S
        if stream.reader.done():
            self._streams.discard(stream)

    async def request(self, method: str, payload: bytes, timeout: float) -> mux_pb2.MuxReply:
        stream = self._stream
        if stream is None:
            stream = self._stream = _Stream(self._open_call(metadata=self._metadata), self)
            self._streams.add(stream)
            stream.reader.add_done_callback(lambda _t, s=stream: self._streams.discard(s))
        rid = next(self._ids)
        fut: asyncio.Future[mux_pb2.MuxReply] = asyncio.get_running_loop().create_future()
        stream.pending[rid] = fut
        try:
            async with asyncio.timeout(timeout):
                try:
                    await stream.outbox.send(mux_pb2.MuxRequest(id=rid, method=method, payload=payload,
                                                                timeout_ns=int(timeout * 1e9)))
                except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
                    self.retire(stream)
                    raise NotSent(repr(exc)) from None
                reply = await fut
        except TimeoutError:
            raise StreamError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        finally:
            stream.pending.pop(rid, None)
        if reply.code == grpc.StatusCode.UNAVAILABLE.value[0] and reply.details == DRAINING:
            self.retire(stream)
            raise NotSent(DRAINING)
        return reply

    async def close(self) -> None:
        self._stream = None
        for stream in list(self._streams):
            stream.reader.cancel()
        await asyncio.gather(*(s.reader for s in self._streams), return_exceptions=True)
        self._streams.clear()


def _service_descriptor(stub_cls: type) -> Any:
    """The proto service of a generated stub (``cgrates.v1.rals_pb2_grpc.RalsServiceStub``)."""
    package = stub_cls.__module__.rsplit(".", 1)[0]
    try:
        return descriptor_pool.Default().FindServiceByName(f"{package}.{stub_cls.__name__.removesuffix('Stub')}")
    except KeyError:
        return None


class ServiceClient:
    """A channel to one service plus a stub; ``await client.call("GetCost", req)``.

    ``mux=False`` (or the ``rpc_transport = unary`` setting) keeps every call a unary RPC.
    Several targets (``addr="a:1,b:2"``, or the ``<service>_addr`` setting) or a ``dns:///``
    target make it a balancer over the replicas (``cgrpy.runtime.balance``); one plain
    ``host:port`` takes the direct path below, unchanged.
    """

    def __init__(self, settings: Settings, service: str, stub_cls: type, *, addr: str | None = None,
                 mux: bool | None = None) -> None:
        self.service = service
        self.timeout = settings.rpc_timeout / 1e9
        targets = split_targets(addr) if addr else settings.addrs(service)
        self.addr = ",".join(targets)
        self.balancer: Balancer | None = None
        if len(targets) > 1 or targets[0].startswith("dns:///"):
            self.balancer = Balancer(
                targets, lambda a: ServiceClient(settings, service, stub_cls, addr=a, mux=mux),
                _TransportError, settings.rpc_resolve_interval / 1e9)
            self.channel = self.stub = self._proto = self._mux = None  # type: ignore[assignment]
            self.calls_by_transport = {"mux": 0, "unary": 0}
            return
        # the token goes as explicit call metadata (no client interceptor on the hot path)
        self.channel = auth.aio_channel(settings, self.addr, with_token=False)
        self._md = auth.call_metadata(settings)
        self.stub = stub_cls(self.channel)
        if mux is None:
            mux = settings.get("rpc_transport") == "mux"
        self._proto = _service_descriptor(stub_cls) if mux else None
        self._mux = MuxStream(self.channel, self._md) if self._proto is not None else None
        self._replies: dict[str, Any] = {}
        self.calls_by_transport = {"mux": 0, "unary": 0}  # what carried each attempt (tests, metrics)

    def _reply_class(self, method: str) -> Any:
        cls = self._replies.get(method)
        if cls is None:
            cls = self._replies[method] = message_factory.GetMessageClass(
                self._proto.methods_by_name[method].output_type)
        return cls

    async def _attempt(self, method: str, request: Any, timeout: float) -> Any:
        mux = self._mux
        if mux is not None and mux.usable():
            try:
                reply = await mux.request(f"/{self._proto.full_name}/{method}", request.SerializeToString(), timeout)
            except NotSent:
                return await self._unary(method, request, timeout)  # the server never saw it
            except StreamError as exc:
                if exc.code == grpc.StatusCode.UNIMPLEMENTED:
                    # a server without the Mux service never saw the call: unary is safe
                    return await self._unary(method, request, timeout)
                raise _error(self.service, method, exc.code, exc.details) from None
            self.calls_by_transport["mux"] += 1
            if reply.code:
                raise _error(self.service, method, _CODES.get(reply.code, grpc.StatusCode.UNKNOWN), reply.details)
            return self._reply_class(method).FromString(reply.payload)
        return await self._unary(method, request, timeout)

    async def _unary(self, method: str, request: Any, timeout: float) -> Any:
        self.calls_by_transport["unary"] += 1
        try:
            return await getattr(self.stub, method)(request, timeout=timeout, metadata=self._md)
        except grpc.aio.AioRpcError as exc:
            raise _error(self.service, method, exc.code(), exc.details() or "") from None

    async def call(
        self,
        method: str,
        request: Any,
        *,
        idempotent: bool = False,
        timeout: float | None = None,
        attempts: int = 3,
    ) -> Any:
        if self.balancer is not None:
            return await self.balancer.call(method, request, idempotent=idempotent,
                                            timeout=timeout or self.timeout, attempts=attempts)
        tries = attempts if idempotent else 1
        delay = 0.05
        for attempt in range(1, tries + 1):
            try:
                return await self._attempt(method, request, timeout or self.timeout)
            except _TransportError as exc:
                if attempt < tries:
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                raise exc.error from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.balancer is not None:
            await self.balancer.close()
            return
        if self._mux is not None:
            await self._mux.close()
        await self.channel.close()


class _TransportError(Exception):
    """A retryable failure (UNAVAILABLE, DEADLINE_EXCEEDED) and the CGRError it becomes."""

    def __init__(self, error: CGRError, code: grpc.StatusCode) -> None:
        super().__init__(str(error))
        self.error = error
        self.code = code


def _error(service: str, method: str, code: grpc.StatusCode, details: str) -> Exception:
    if code in _RETRYABLE:
        return _TransportError(CGRError("SERVER_ERROR", f"{service}.{method} {code.name}: {details}", transient=True),
                               code)
    return CGRError.from_message(details) if details else CGRError("SERVER_ERROR", code.name)


def to_cgr_error(service: str, method: str, exc: grpc.aio.AioRpcError) -> CGRError:
    err = _error(service, method, exc.code(), exc.details() or "")
    return err.error if isinstance(err, _TransportError) else err  # type: ignore[return-value]
