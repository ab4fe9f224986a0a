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
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf import descriptor_pool, message_factory

from cgrates.v1 import mux_pb2
from cgrpy.config import Settings, split_targets
from cgrpy.errors import CGRError
from cgrpy.runtime import auth
from cgrpy.runtime.balance import Balancer, OwnersLookup
from cgrpy.runtime.frame import FRAME_PORT_KEY, FrameLane, LaneBroken, LaneClosed, client_ssl
from cgrpy.runtime.mux import DRAINING, MUX_METHOD, Outbox
from cgrpy.security import BEARER, resolve_token

log = logging.getLogger("cgrpy.client")

T = TypeVar("T")

# Transient failures worth another try (for idempotent calls only).
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
_CODES = {c.value[0]: c for c in grpc.StatusCode}
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
# After the stream broke (or the server has no Mux), calls go unary this long before retrying it.
MUX_RETRY_AFTER_S = 5.0
# Channel options of every service-to-service channel. gRPC's own retries are off: ServiceClient
# retries (idempotent calls only) itself, and the retry layer otherwise buffers every message of
# a call until it commits. BDP probing is off: it sends a PING on received data to size the flow
# control window for bulk transfers over long links; the calls here are small and local, and the
# pings were extra frames and wake-ups per message (`bench transport`: 10-35 % less CPU per call
# with both off).
CHANNEL_OPTIONS: list[tuple[str, int]] = [("grpc.enable_retries", 0), ("grpc.http2.bdp_probe", 0)]


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
            for key, value in await self.call.initial_metadata() or ():
                if key == FRAME_PORT_KEY:
                    owner.offer_lane(int(value))
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

    def __init__(self, channel: grpc.aio.Channel, metadata: Any = None,
                 dial_lane: Callable[[int], FrameLane] | None = None) -> None:
        self._dial_lane = dial_lane  # None: the frame lane is not used (rpc_transport = mux)
        self.lane: FrameLane | None = None
        self._lane_port: int | None = None
        self._lane_task: asyncio.Task[None] | None = None
        self._lane_down_until = 0.0
        self.lane_calls = 0  # calls answered over the frame lane (tests, metrics)
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

    def offer_lane(self, port: int) -> None:
        """The server named its frame lane's port: dial it (in the background; calls go over the
        gRPC stream until the lane is up)."""
        if self._dial_lane is None:
            return
        self._lane_port = port
        self._redial()

    def _redial(self) -> None:
        if self._lane_port is None or (self._lane_task is not None and not self._lane_task.done()):
            return
        if time.monotonic() < self._lane_down_until:
            return
        self._lane_task = asyncio.create_task(self._open_lane(self._lane_port))

    async def _open_lane(self, port: int) -> None:
        lane = self._dial_lane(port)  # type: ignore[misc]
        try:
            await lane.connect()
        except Exception as exc:  # noqa: BLE001 - no lane: the gRPC stream carries the calls
            log.info("frame lane %s:%s not usable (%s); calls use the gRPC stream", lane.host, port, exc)
            self._lane_down_until = time.monotonic() + MUX_RETRY_AFTER_S
            return
        old, self.lane = self.lane, lane
        if old is not None:
            old.close()

    def _lane_failed(self, lane: FrameLane) -> None:
        if self.lane is lane:
            self.lane = None
            lane.close()
            self._lane_down_until = time.monotonic() + MUX_RETRY_AFTER_S

    async def request(self, method: str, payload: bytes, timeout: float) -> mux_pb2.MuxReply:
        lane = self.lane
        if lane is not None and lane.up:
            # the frame lane, inline rather than in a coroutine of its own: every level of the
            # call's coroutine chain is paid again when the reply wakes it, ~12 times a call
            rid = next(self._ids)
            req = mux_pb2.MuxRequest(id=rid, method=method, payload=payload, timeout_ns=int(timeout * 1e9))
            try:
                reply = await lane.request(rid, req, timeout)
            except LaneClosed:
                self._lane_failed(lane)  # not written: the gRPC stream below takes it
            except TimeoutError:
                raise StreamError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
            except LaneBroken as exc:
                self._lane_failed(lane)
                raise StreamError(grpc.StatusCode.UNAVAILABLE, str(exc)) from None
            else:
                if reply.code == _UNAVAILABLE and reply.details == DRAINING:
                    self._lane_failed(lane)
                    raise NotSent(DRAINING)
                self.lane_calls += 1
                return reply
        elif lane is not None:
            self._lane_failed(lane)
        elif self._lane_port is not None:
            self._redial()
        return await self._stream_request(method, payload, timeout)

    async def _stream_request(self, method: str, payload: bytes, timeout: float) -> mux_pb2.MuxReply:
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
        self._lane_port = None
        if self._lane_task is not None:
            self._lane_task.cancel()
        if self.lane is not None:
            self.lane.close()
            self.lane = None
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
                 mux: bool | None = None, owners: OwnersLookup | None = None) -> None:
        self.service = service
        self.timeout = settings.rpc_timeout / 1e9
        targets = split_targets(addr) if addr else settings.addrs(service)
        self.addr = ",".join(targets)
        self.balancer: Balancer | None = None
        if len(targets) > 1 or targets[0].startswith("dns:///"):
            self.balancer = Balancer(
                targets, lambda a: ServiceClient(settings, service, stub_cls, addr=a, mux=mux),
                _TransportError, settings.rpc_resolve_interval / 1e9, owners)
            self.channel = self.stub = self._proto = self._mux = None  # type: ignore[assignment]
            self.calls_by_transport = {"mux": 0, "unary": 0}
            return
        # the token goes as explicit call metadata (no client interceptor on the hot path)
        self.channel = auth.aio_channel(settings, self.addr, CHANNEL_OPTIONS, with_token=False)
        self._md = auth.call_metadata(settings)
        self.stub = stub_cls(self.channel)
        transport = settings.get("rpc_transport")
        if mux is None:
            mux = transport in ("mux", "frame")
        self._proto = _service_descriptor(stub_cls) if mux else None
        dial = _lane_dialer(settings, self.addr) if transport == "frame" else None
        self._mux = MuxStream(self.channel, self._md, dial) if self._proto is not None else None
        self._replies: dict[str, Any] = {}
        self._paths: dict[str, str] = {}
        self.calls_by_transport = {"mux": 0, "unary": 0}  # what carried each attempt (tests, metrics)

    def _reply_class(self, method: str) -> Any:
        cls = self._replies.get(method)
        if cls is None:
            cls = self._replies[method] = message_factory.GetMessageClass(
                self._proto.methods_by_name[method].output_type)
        return cls

    def _path(self, method: str) -> str:
        """The method's Mux path, built once per method (not per call)."""
        path = self._paths.get(method)
        if path is None:
            path = self._paths[method] = f"/{self._proto.full_name}/{method}"
        return path

    async def _attempt(self, method: str, request: Any, timeout: float) -> Any:
        mux = self._mux
        if mux is not None and mux.usable():
            try:
                reply = await mux.request(self._path(method), request.SerializeToString(), timeout)
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
        route: str | Sequence[str] | None = None,
    ) -> Any:
        """``route``: the call's partition key (``tenant:account`` for RALs), or keys (the
        items a StatS/ThresholdS event touches); with several replicas and an ``owners``
        lookup, the call goes straight to that key's owner (the owner of most of them)."""
        if self.balancer is not None:
            return await self.balancer.call(method, request, idempotent=idempotent,
                                            timeout=timeout or self.timeout, attempts=attempts, route=route)
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


def _lane_dialer(settings: Settings, addr: str) -> Callable[[int], FrameLane] | None:
    """How to dial the frame lane of the server at ``addr`` (the host of its gRPC address),
    or None for an address the lane cannot follow (a unix socket, several addresses)."""
    target = addr.removeprefix("ipv4:").removeprefix("dns:///")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or "," in target or target.startswith(("unix", "ipv6:", "vsock:")):
        return None
    host = host.strip("[]")
    token = resolve_token(settings)
    hello = (BEARER + token).encode() if token else b""
    ssl_ctx = client_ssl(settings)
    server_name = settings.get("grpc_tls_server_name") or host
    return lambda lane_port: FrameLane(host, lane_port, hello, ssl_ctx, server_name)


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
