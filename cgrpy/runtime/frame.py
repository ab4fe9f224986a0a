"""The Mux envelopes over a plain TCP connection: the *frame lane* between services.

Why: one message on a grpc.aio stream costs ~0.3 ms of CPU on each side on this machine (gRPC
core's HTTP/2 framing, its completion queue and the poller thread handing every event to the
event loop), against ~0.08 ms for the same bytes over a plain asyncio connection (`bench
transport`, cases ``mux`` and ``frame``). A call between two services is two messages, and a call
through the suite makes about a dozen such calls, so this is a large share of a call's CPU.

What stays gRPC: every RPC is still a unary gRPC method (grpcurl, the contract tests, clients
of other languages), health and reflection are gRPC, and a client finds the lane only through
the gRPC Mux stream: the server names the lane's port in that stream's initial metadata, which it
sends only to a client that passed the token check. The envelopes are the Mux ones
(``protos/cgrates/v1/mux.proto``), each frame a 4-byte big-endian length and one ``MuxRequests``
(client to server) or ``MuxReplies`` (server to client); the server dispatches them to the very
handlers, guards and metrics the unary RPCs run (``MuxServicer.dispatch``), so every transport
answers alike.

Security is the gRPC port's: the first frame a client sends is a hello carrying the API token
(checked in constant time when one is configured), and with ``grpc_tls_cert`` the lane is TLS
with the same certificate, requiring a client certificate signed by ``grpc_tls_client_ca`` when
that is set. A server that cannot bind its lane port (``frame_port_offset`` above its gRPC port)
logs it and serves through gRPC only; clients then use the gRPC stream, as they do when the lane
breaks (until it is re-opened after a pause).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

import grpc

from cgrates.v1 import mux_pb2
from cgrpy.security import token_matches

log = logging.getLogger("cgrpy.frame")

FRAME_PORT_KEY = "cgrpy-frame-port"
HELLO = "/cgrpy.Frame/Hello"
MAX_FRAME = 64 * 1024 * 1024  # as gRPC's own message limit between the services
# A peer that stops reading: past this many unsent bytes its connection is dropped.
MAX_BACKLOG = 64 * 1024 * 1024
HELLO_TIMEOUT_S = 5.0


class LaneClosed(Exception):
    """The lane's connection is gone (or never came up)."""


class _Framed(asyncio.Protocol):
    """Length-prefixed frames over a transport; envelopes handed over in the same loop turn
    go out together as one frame (one ``send`` system call for several calls when busy)."""

    def __init__(self, wrapper: Callable[[list[Any]], Any]) -> None:
        self._wrapper = wrapper  # several envelopes -> MuxRequests or MuxReplies
        self._buf = bytearray()
        self._out: list[Any] = []
        self._flush_soon = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()  # looked up once, not on every put
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # a request or reply goes out whole at once: Nagle would only hold it back
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, end = 0, len(buf)
        while end - pos >= 4:
            size = int.from_bytes(buf[pos:pos + 4], "big")
            if size > MAX_FRAME:
                self.abort(f"frame of {size} bytes exceeds {MAX_FRAME}")
                return
            if end - pos - 4 < size:
                break
            frame = bytes(buf[pos + 4:pos + 4 + size])
            pos += 4 + size
            try:
                self.on_frame(frame)
            except Exception as exc:  # noqa: BLE001 - a malformed frame ends this connection only
                self.abort(f"bad frame: {exc}")
                return
        if pos:
            del buf[:pos]

    def on_frame(self, frame: bytes) -> None:
        raise NotImplementedError

    def put(self, item: Any) -> None:
        """Queue ``item`` for the next frame, written at the end of this loop turn."""
        if self.closed:
            raise LaneClosed("connection closed")
        self._out.append(item)
        if not self._flush_soon:
            self._flush_soon = True
            (self._loop or asyncio.get_running_loop()).call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        items, self._out = self._out, []
        if not items or self.closed or self.transport is None:
            return
        self.transport.write(frame_of(items, self._wrapper))
        if self.transport.get_write_buffer_size() > MAX_BACKLOG:
            self.abort("peer does not read its replies")

    def abort(self, why: str) -> None:
        log.warning("frame lane connection dropped: %s", why)
        if self.transport is not None:
            self.transport.abort()


def frame_of(items: list[Any], wrapper: Any) -> bytes:
    """One frame: the 4-byte length, then ``wrapper`` (``MuxRequests`` or ``MuxReplies``) of
    ``items``. Both are a single repeated message field 1, so a lone envelope (every frame when
    calls are sparse, the common case between services) is serialized and tagged here: building
    the wrapper costs more than the envelope itself (~2.4 µs against ~1.4 µs a frame, on both
    ends). Several envelopes go through the wrapper, whose C loop beats one in Python. Same
    bytes either way (tests/runtime/test_frame.py)."""
    if len(items) == 1:
        body = items[0].SerializeToString()
        payload = _ITEM_TAG + _varint(len(body)) + body
    else:
        payload = wrapper(items).SerializeToString()
    return len(payload).to_bytes(4, "big") + payload


_ITEM_TAG = b"\x0a"  # field 1, wire type 2 (length-delimited)
_SMALL_VARINTS = [bytes((n,)) for n in range(0x80)]


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# ---------------------------------------------------------------------------------- server side


class _ServerConn(_Framed):
    def __init__(self, server: FrameServer) -> None:
        super().__init__(lambda replies: mux_pb2.MuxReplies(replies=replies))
        self._server = server
        self._authed = False
        self._tasks: set[asyncio.Task[mux_pb2.MuxReply]] = set()
        self.peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        host, port = (transport.get_extra_info("peername") or ("?", 0))[:2]
        self.peer = f"frame:{host}:{port}"
        self._server.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._server.conns.discard(self)
        for t in self._tasks:
            t.cancel()

    def on_frame(self, frame: bytes) -> None:
        requests = mux_pb2.MuxRequests.FromString(frame).requests
        if not self._authed:
            self._hello(requests)
            return
        # a task per request runs dispatch itself, and one callback both forgets it and sends
        # its reply: no answering coroutine wrapped around dispatch, no second callback
        create_task, dispatch, peer = self._loop.create_task, self._server.mux.dispatch, self.peer  # type: ignore[union-attr]
        tasks, answered = self._tasks, self._answered
        for req in requests:
            task = create_task(dispatch(req, peer))
            tasks.add(task)
            task.add_done_callback(answered)

    def _hello(self, requests: Any) -> None:
        first = requests[0] if requests else None
        if first is None or first.method != HELLO or not token_matches(first.payload, self._server.token):
            self.put(mux_pb2.MuxReply(id=0, code=grpc.StatusCode.UNAUTHENTICATED.value[0],
                                      details="UNAUTHENTICATED: missing or wrong API token"))
            self._flush()
            if self.transport is not None:
                self.transport.close()
            return
        self._authed = True
        self.put(mux_pb2.MuxReply(id=0))
        if self._server.draining:
            self.put(self._server.draining_reply())

    def _answered(self, task: asyncio.Task[mux_pb2.MuxReply]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self.closed:
            return
        exc = task.exception()
        if exc is not None:  # dispatch answers every outcome; this is a bug, and the client times out
            log.error("frame lane: request failed without a reply", exc_info=exc)
            return
        self.put(task.result())


class FrameServer:
    """The lane's listener beside a service's gRPC port; requests go to ``mux.dispatch``."""

    def __init__(self, mux: Any, token: bytes, ssl_ctx: ssl.SSLContext | None) -> None:
        self.mux = mux
        self.token = token
        self._ssl = ssl_ctx
        self._server: asyncio.AbstractServer | None = None
        self.conns: set[_ServerConn] = set()
        self.draining = False
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int | None:
        """Listen; the bound port, or None (logged) when it cannot: gRPC then carries it all."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: _ServerConn(self), host, port,
                                                    ssl=self._ssl, reuse_address=True)
        except OSError as exc:
            log.warning("frame lane: cannot listen on %s:%s (%s); calls between services use gRPC",
                        host, port, exc.strerror)
            return None
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def draining_reply(self) -> mux_pb2.MuxReply:
        from cgrpy.runtime.mux import DRAINING

        return mux_pb2.MuxReply(id=0, code=grpc.StatusCode.UNAVAILABLE.value[0], details=DRAINING)

    def drain(self) -> None:
        """Tell every client to send nothing more here (they go to another replica or gRPC);
        requests already running are still answered on their connection."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.conns):
            if not conn.closed and conn._authed:
                conn.put(self.draining_reply())

    async def close(self, grace: float) -> None:
        """Stop listening; let running requests finish for ``grace`` seconds, then drop them."""
        if self._server is not None:
            self._server.close()
        deadline = asyncio.get_running_loop().time() + grace
        while any(c._tasks for c in self.conns) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0)  # replies put by the last answers are flushed this turn
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.close()
        self.conns.clear()


def server_ssl(settings: Any) -> ssl.SSLContext | None:
    """TLS for the lane from the gRPC port's settings (None: plaintext, as gRPC then is)."""
    cert = settings.get("grpc_tls_cert")
    if not cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, settings.get("grpc_tls_key") or None)
    client_ca = settings.get("grpc_tls_client_ca")
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# ---------------------------------------------------------------------------------- client side


class _ClientConn(_Framed):
    def __init__(self, lane: FrameLane) -> None:
        super().__init__(lambda requests: mux_pb2.MuxRequests(requests=requests))
        self._lane = lane
        self.hello: asyncio.Future[mux_pb2.MuxReply] = asyncio.get_running_loop().create_future()

    def on_frame(self, frame: bytes) -> None:
        pending = self._lane.pending
        for reply in mux_pb2.MuxReplies.FromString(frame).replies:
            if reply.id == 0:
                if not self.hello.done():
                    self.hello.set_result(reply)
                else:  # the server drains: nothing new on this connection
                    self._lane.retire(self)
                continue
            fut = pending.pop(reply.id, None)
            if fut is not None and not fut.done():
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.hello.done():
            self.hello.set_exception(LaneClosed(f"connection lost: {exc}"))
        self._lane.lost(self)


class FrameLane:
    """A client's connection to one server's lane. ``request`` has the Mux stream's contract:
    a reply (the handler's answer, maybe an error code), or ``LaneClosed`` when the request was
    not written (safe to send elsewhere), or ``LaneBroken`` when it may have run."""

    def __init__(self, host: str, port: int, hello: bytes, ssl_ctx: ssl.SSLContext | None,
                 server_hostname: str | None) -> None:
        self.host, self.port = host, port
        self._hello = hello
        self._ssl = ssl_ctx
        self._server_hostname = server_hostname if ssl_ctx is not None else None
        self.conn: _ClientConn | None = None
        self.pending: dict[int, asyncio.Future[mux_pb2.MuxReply]] = {}
        self.up = False

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _t, conn = await asyncio.wait_for(loop.create_connection(
            lambda: _ClientConn(self), self.host, self.port, ssl=self._ssl,
            server_hostname=self._server_hostname), HELLO_TIMEOUT_S)
        conn.put(mux_pb2.MuxRequest(id=0, method=HELLO, payload=self._hello))
        reply = await asyncio.wait_for(conn.hello, HELLO_TIMEOUT_S)
        if reply.code:
            conn.transport.close()  # type: ignore[union-attr]
            raise LaneClosed(reply.details)
        self.conn = conn
        self.up = not conn.closed

    def retire(self, conn: _ClientConn) -> None:
        if self.conn is conn:
            self.up = False

    def lost(self, conn: _ClientConn) -> None:
        if self.conn is conn:
            self.up = False
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(LaneBroken("frame lane connection lost"))
            self.pending.clear()

    async def request(self, rid: int, req: mux_pb2.MuxRequest, timeout: float | None = None) -> mux_pb2.MuxReply:
        """``timeout``: seconds before ``TimeoutError`` (the request stays written: it may run).
        One timer on the reply's future, not an ``asyncio.timeout`` scope: that costs a
        ``Timeout`` object, a task cancel and its undoing per call, and SM makes ~10 per call."""
        conn = self.conn
        if not self.up or conn is None or conn.closed:
            raise LaneClosed("lane down")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[mux_pb2.MuxReply] = loop.create_future()
        self.pending[rid] = fut
        timer = loop.call_later(timeout, _expire, fut) if timeout is not None else None
        try:
            conn.put(req)
            return await fut
        finally:
            if timer is not None:
                timer.cancel()
            self.pending.pop(rid, None)

    def close(self) -> None:
        self.up = False
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class LaneBroken(Exception):
    """The connection broke with the request written: it may have run."""


def client_ssl(settings: Any) -> ssl.SSLContext | None:
    """TLS for dialling a lane, from the gRPC client's settings (None: plaintext)."""
    ca = settings.get("grpc_tls_ca")
    if not ca:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    cert = settings.get("grpc_tls_cert")
    if cert:
        ctx.load_cert_chain(cert, settings.get("grpc_tls_key") or None)
    return ctx


__all__ = ["FRAME_PORT_KEY", "FrameLane", "FrameServer", "LaneBroken", "LaneClosed", "client_ssl",
           "frame_of", "server_ssl"]
