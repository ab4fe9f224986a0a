"""The generator's side of the OpenSIPS `cgrates` module wire (opensips-protocol.md Part A).

A pool of TCP connections to SM. Like an OpenSIPS worker, each connection carries at most
``per_conn`` outstanding requests (OpenSIPS: one — a worker blocks on its synchronous command), so
a request first waits for a free connection: that wait is queueing and counts in its latency.
Requests are written json-c "spaced" with no delimiter, as the module does; SM's own requests
(DisconnectSession, GetActiveSessionIDs) arriving on any connection are answered at once in the
module's reply shape, whatever the connection is waiting for.

A connection SM closed (SM restarted) is opened again on its next request, as the module does;
if SM does not accept yet, that request fails (``connection_refused``) and the next one tries
again.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

# The tutorial script's $cgr_opt flags, sent on every message of a call (spec A.4.1).
FLAGS: dict[str, Any] = {
    "Tenant": "cgrates.org", "ProcessStatQueues": True, "ProcessThresholds": True,
    "ReleaseResources": True, "AllocateResources": True, "AuthorizeResources": True,
    "GetSuppliers": True, "GetAttributes": True, "GetMaxUsage": True,
}


def jsonc(value: Any) -> str:
    """json-c's JSON_C_TO_STRING_SPACED output: ``{ "a": 1, "b": [ 2 ] }``."""
    if isinstance(value, dict):
        if not value:
            return "{ }"
        return "{ " + ", ".join(f"{json.dumps(k)}: {jsonc(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(jsonc(v) for v in value) + " ]"
    return json.dumps(value)


class RequestFailed(Exception):
    """No reply: timeout or the connection went away. ``kind`` is a short error label."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


# SM request handler: (method, params) -> result to reply ("OK", a list, ...).
EngineHandler = Callable[[str, Any], Any]


class Connection:
    def __init__(self, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_engine_request: EngineHandler) -> None:
        self.index = index
        self.reader, self.writer = reader, writer
        self.on_engine_request = on_engine_request
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ids = random.randrange(10**8, 10**9)  # a per-process random seed, then steps of 4
        self.closed = False
        self.engine_requests = 0
        self.task = asyncio.create_task(self._read())

    def next_id(self) -> int:
        self.ids += 4
        return self.ids

    async def _read(self) -> None:
        decoder = json.JSONDecoder()
        buf = ""
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                buf += data.decode()
                pos = 0
                while True:
                    while pos < len(buf) and buf[pos] in " \t\r\n":
                        pos += 1
                    if pos >= len(buf):
                        break
                    try:
                        msg, pos = decoder.raw_decode(buf, pos)
                    except json.JSONDecodeError:
                        break  # incomplete object: wait for the rest
                    self._dispatch(msg)
                buf = buf[pos:]
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(RequestFailed("connection_closed"))

    def _dispatch(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        if isinstance(msg.get("method"), str):
            self.engine_requests += 1
            params = msg.get("params")
            arg = params[0] if isinstance(params, list) and len(params) == 1 else params
            try:
                reply: dict[str, Any] = {"error": None, "result": self.on_engine_request(msg["method"], arg)}
            except Exception as exc:  # the module answers bad requests with an error string
                reply = {"error": str(exc), "result": None}
            if "id" in msg:
                reply["id"] = msg["id"]
            self.write(jsonc(reply))
            return
        fut = self.pending.pop(msg.get("id"), None)  # type: ignore[arg-type]
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def write(self, text: str) -> None:
        if not self.closed:
            self.writer.write(text.encode())

    async def call(self, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.closed:
            raise RequestFailed("connection_closed")
        rid = self.next_id()
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        self.write(jsonc({"method": method, "id": rid, "params": [params]}))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise RequestFailed("timeout") from None
        finally:
            self.pending.pop(rid, None)

    async def close(self) -> None:
        self.task.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class Pool:
    """``connections`` TCP connections to SM, each lent out to ``per_conn`` requests at a time."""

    def __init__(self, host: str, port: int, connections: int, per_conn: int,
                 on_engine_request: EngineHandler, *, failover: list[tuple[str, int]] | None = None) -> None:
        if connections < 1 or per_conn < 1:
            raise ValueError("need at least one connection and one request per connection")
        self.host, self.port = host, port
        # Further engines, as OpenSIPS's several cgrates_engine entries: a connection that cannot
        # be reopened to the current engine is opened to the next one (a request in flight when
        # its engine died fails, as in OpenSIPS; the next one goes to the live engine).
        self.engines = [(host, port), *(failover or [])]
        self.failovers = 0
        self.n, self.per_conn = connections, per_conn
        self.on_engine_request = on_engine_request
        self.conns: list[Connection] = []
        self.free: asyncio.Queue[Connection] = asyncio.Queue()
        self.reconnects = 0

    async def open(self) -> None:
        for i in range(self.n):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            conn = Connection(i, reader, writer, self.on_engine_request)
            self.conns.append(conn)
            for _ in range(self.per_conn):
                self.free.put_nowait(conn)

    async def call(self, method: str, event: dict[str, Any], timeout: float,
                   **top: Any) -> dict[str, Any]:
        """Wait for a free connection, send, wait for the reply; the whole wait is bounded."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            conn = await asyncio.wait_for(self.free.get(), timeout)
        except TimeoutError:
            raise RequestFailed("timeout_queued") from None
        try:
            if conn.closed:
                conn = await self._reopen(conn)
            return await conn.call(method, {**FLAGS, "Event": event, **top}, max(0.001, deadline - loop.time()))
        finally:
            self.free.put_nowait(conn)

    async def _reopen(self, old: Connection) -> Connection:
        """A fresh connection in ``old``'s place (SM restarted); the caller's slot goes back to
        whichever connection is current."""
        current = self.conns[old.index]
        if not current.closed:
            return current  # another request already reopened it
        for _ in self.engines:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                break
            except OSError:
                if len(self.engines) == 1:
                    raise RequestFailed("connection_refused") from None
                i = self.engines.index((self.host, self.port))
                self.host, self.port = self.engines[(i + 1) % len(self.engines)]
                self.failovers += 1
        else:
            raise RequestFailed("connection_refused")
        conn = Connection(old.index, reader, writer, self.on_engine_request)
        self.conns[old.index] = conn
        self.reconnects += 1
        await current.close()
        return conn

    async def close(self) -> None:
        for c in self.conns:
            await c.close()

    @property
    def engine_requests(self) -> int:
        return sum(c.engine_requests for c in self.conns)
