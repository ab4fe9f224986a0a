"""A test client that speaks exactly what OpenSIPS's `cgrates` module sends (see the traces):
JSON-RPC objects back to back over TCP, with SM's own requests (DisconnectSession,
GetActiveSessionIDs) answered on the same connection. Like the module, a connection SM closed (SM
restarted) is opened again on the next request."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from services.sm.opensips.codec import StreamDecoder

FLAGS = {
    "Tenant": "cgrates.org", "ProcessStatQueues": True, "ProcessThresholds": True,
    "ReleaseResources": True, "AllocateResources": True, "AuthorizeResources": True,
    "GetSuppliers": True, "GetAttributes": True, "GetMaxUsage": True,
}


class FakeOpenSIPS:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.ids = itertools.count(448117104, 4)
        self.pending: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.engine_requests: list[dict[str, Any]] = []
        self.active_ids: list[str] = []

    async def __aenter__(self) -> FakeOpenSIPS:
        await self._connect()
        return self

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.closed = False
        self.reconnects = getattr(self, "reconnects", -1) + 1
        self._task = asyncio.create_task(self._read())

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        self.writer.close()

    async def _read(self) -> None:
        decoder = StreamDecoder()
        while True:
            try:
                data = await self.reader.read(65536)
            except ConnectionError:
                data = b""
            if not data:
                self.closed = True
                for fut in self.pending.values():  # lost with the connection, as in the module
                    if not fut.done():
                        fut.set_exception(ConnectionError("SM closed the connection"))
                self.pending.clear()
                return
            for msg in decoder.feed(data):
                if isinstance(msg, dict) and "method" in msg:
                    self.engine_requests.append(msg)
                    result: Any = "OK"
                    if msg["method"].endswith("GetActiveSessionIDs"):
                        result = [{"OriginID": i, "OriginHost": "127.0.0.1"} for i in self.active_ids]
                    self.writer.write(json.dumps({"id": msg["id"], "result": result, "error": None}).encode())
                elif isinstance(msg, dict) and msg.get("id") in self.pending:
                    self.pending.pop(msg["id"]).set_result(msg)

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are (garbage, split frames...)."""
        self.writer.write(data)

    async def wait_engine_request(self, method_suffix: str, timeout: float = 30) -> dict[str, Any]:
        """The first SM -> OpenSIPS request whose method ends with ``method_suffix``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for msg in self.engine_requests:
                if msg["method"].endswith(method_suffix):
                    return msg
            if loop.time() > deadline:
                raise TimeoutError(f"no {method_suffix} from SM in {timeout}s: {self.engine_requests}")
            await asyncio.sleep(0.05)

    async def call(self, method: str, event: dict[str, Any], timeout: float = 10, **top: Any) -> dict[str, Any]:
        if self.closed:
            await self._connect()
        rid = next(self.ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        body = {"method": method, "id": rid, "params": [{**FLAGS, **top, "Event": event}]}
        # the module writes with spaces after separators (json-c), like the traces
        self.writer.write(json.dumps(body, separators=(", ", ": ")).encode())
        return await asyncio.wait_for(fut, timeout)
