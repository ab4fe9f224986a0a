"""The CGRateS-compatible JSON-RPC endpoints: TCP (objects back to back, like CGRateS's :2012)
and HTTP POST ``/jsonrpc`` (like :2080), both on the same dispatcher.

The HTTP side is a deliberately small HTTP/1.1 server on asyncio streams (POST with a
Content-Length body, keep-alive): the endpoint needs nothing more, and no extra dependency."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from cgrpy.config import Settings
from cgrpy.netaddr import split_host_port
from cgrpy.security import bearer, server_ssl_context
from services.sm.apier.backends import Backends
from services.sm.apier.core import Context
from services.sm.apier.dispatch import Dispatcher
from services.sm.opensips.codec import MAX_FRAME_BYTES, StreamDecoder
from services.sm.opensips.jsonrpc import encode_error
from services.sm.opensips.listener import INCOMPLETE
from services.sm.sessions.core import SessionManager

log = logging.getLogger(__name__)

MAX_INFLIGHT_PER_CONNECTION = 64
MAX_HEADER_BYTES = 16 * 1024
HTTP_PATH = "/jsonrpc"


class ApiServer:
    """``await ApiServer(settings, sessions=sm).start()`` serves ``settings.jsonrpc_listen``
    (TCP) and ``settings.http_listen`` (HTTP); ``await stop()`` closes both."""

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: SessionManager | None = None,
        engine: Callable[[], Engine] | None = None,
        jsonrpc_listen: str | None = None,
        http_listen: str | None = None,
    ) -> None:
        self.settings = settings
        self.backends = Backends(settings)
        self._own_engine: Engine | None = None
        self.ctx = Context(settings, self.backends, sessions, engine or self._engine)
        self.dispatcher = Dispatcher(self.ctx)
        self.jsonrpc_listen = jsonrpc_listen or settings.jsonrpc_listen
        self.http_listen = http_listen or settings.http_listen
        self._servers: list[asyncio.base_events.Server] = []
        self._conns: set[asyncio.Task[Any]] = set()
        self.tcp_port = 0
        self.http_port = 0

    def _engine(self) -> Engine:
        if self._own_engine is None:
            from cgrpy.storage.db import make_engine
            from cgrpy.storage.migrate import ensure_schema

            ensure_schema(self.settings.stordb_url, auto_migrate=self.settings.stordb_auto_migrate)
            self._own_engine = make_engine(self.settings.stordb_url)
        return self._own_engine

    async def start(self) -> None:
        host, port = split_host_port(self.jsonrpc_listen, "127.0.0.1")
        tcp = await asyncio.start_server(self._on_tcp, host, port)
        self._servers.append(tcp)
        self.tcp_port = tcp.sockets[0].getsockname()[1]
        host, port = split_host_port(self.http_listen, "127.0.0.1")
        tls = server_ssl_context(self.settings.http_tls_cert, self.settings.http_tls_key)
        http = await asyncio.start_server(self._on_http, host, port, limit=MAX_HEADER_BYTES, ssl=tls)
        self._servers.append(http)
        self.http_port = http.sockets[0].getsockname()[1]
        log.info("CGRateS JSON-RPC API on tcp %s:%d, http %s:%d%s",
                 host, self.tcp_port, host, self.http_port, HTTP_PATH)

    async def stop(self) -> None:
        for srv in self._servers:
            srv.close()
        for t in list(self._conns):
            t.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await srv.wait_closed()
        self._servers.clear()
        await self.backends.close()
        if self._own_engine is not None:
            self._own_engine.dispose()
            self._own_engine = None

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)

    # --- TCP: JSON objects back to back, replies as soon as each is ready --------------------

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track()
        decoder = StreamDecoder(MAX_FRAME_BYTES)
        slots = asyncio.Semaphore(MAX_INFLIGHT_PER_CONNECTION)
        pending: set[asyncio.Task[None]] = set()

        async def answer(msg: Any) -> None:
            try:
                reply = await self.dispatcher.handle(msg)
                if reply is not None and not writer.is_closing():
                    writer.write(reply)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                slots.release()

        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for msg in decoder.feed(data):
                    await slots.acquire()  # back-pressure: stop reading while 64 are in flight
                    t = asyncio.create_task(answer(msg))
                    pending.add(t)
                    t.add_done_callback(pending.discard)
            if decoder.pending and not writer.is_closing():
                writer.write(encode_error(None, INCOMPLETE))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # --- HTTP: POST /jsonrpc, one JSON-RPC object per request ------------------------------

    async def _on_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track()
        try:
            while await self._http_exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, asyncio.CancelledError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _http_exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to be closed."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await _respond(writer, 400, b"bad request line\n", close=True)
            return False
        verb, path, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if headers.get("transfer-encoding"):
            await _respond(writer, 411, b"Content-Length required\n", close=True)
            return False
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            await _respond(writer, 400, b"bad Content-Length\n", close=True)
            return False
        if length < 0 or length > MAX_FRAME_BYTES:
            await _respond(writer, 413, b"request too large\n", close=True)
            return False
        body = await reader.readexactly(length) if length else b""
        if path.split("?", 1)[0] != HTTP_PATH:
            await _respond(writer, 404, b"not found: use POST /jsonrpc\n", close=not keep)
            return keep
        if verb != "POST":
            await _respond(writer, 405, b"use POST\n", close=not keep, extra=b"Allow: POST\r\n")
            return keep
        decoder = StreamDecoder(MAX_FRAME_BYTES)
        msgs = decoder.feed(body)
        if len(msgs) != 1 or decoder.pending:
            reply = encode_error(None, "SERVER_ERROR: expected exactly one JSON-RPC object")
        else:
            reply = (await self.dispatcher.handle(msgs[0], bearer(headers.get("authorization")))
                     or encode_error(None, "SERVER_ERROR: not a request"))
        await _respond(writer, 200, reply, close=not keep, content_type=b"application/json")
        return keep


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, *, close: bool,
                   content_type: bytes = b"text/plain; charset=utf-8", extra: bytes = b"") -> None:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed",
              411: b"Length Required", 413: b"Payload Too Large"}[status]
    head = (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n"
            % (status, reason, content_type, len(body), extra, b"Connection: close\r\n" if close else b""))
    writer.write(head + body)
    await writer.drain()
