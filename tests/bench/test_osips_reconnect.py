"""bench/osips.py's pool reconnects like OpenSIPS's module: after the server dropped a connection
(SM restarted), the next request opens a new one; while nothing listens, requests fail at once."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.osips import Pool, RequestFailed


async def _server(drop_after: int) -> tuple[asyncio.Server, int, list[int]]:
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder, buf, answered = json.JSONDecoder(), "", 0
        while data := await reader.read(65536):
            buf += data.decode()
            msg, end = decoder.raw_decode(buf)
            buf = buf[end:]
            seen.append(msg["id"])
            writer.write(json.dumps({"id": msg["id"], "result": "OK", "error": None}).encode())
            answered += 1
            if answered >= drop_after:
                writer.close()  # the "SM" goes away after this reply
                return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


async def test_pool_reopens_a_dropped_connection():
    server, port, seen = await _server(drop_after=1)
    pool = Pool("127.0.0.1", port, 1, 1, lambda m, a: "OK")
    await pool.open()
    try:
        assert (await pool.call("SessionSv1.ProcessCDR", {}, 5))["result"] == "OK"
        await asyncio.sleep(0.1)  # the server closed it
        assert (await pool.call("SessionSv1.ProcessCDR", {}, 5))["result"] == "OK"
        assert pool.reconnects == 1 and len(seen) == 2
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.1)
        with pytest.raises(RequestFailed) as err:  # nothing listens: fails, no hang
            await pool.call("SessionSv1.ProcessCDR", {}, 5)
        assert err.value.kind == "connection_refused"
    finally:
        await pool.close()
