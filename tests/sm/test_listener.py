"""Listener robustness: garbage never crashes SM nor disturbs other connections; slow backends."""

from __future__ import annotations

import asyncio
import json
import time

from services.sm.opensips.codec import StreamDecoder
from services.sm.opensips.listener import CgratesListener
from services.sm.sessions.core import SessionManager, SMConfig
from tests.sm.fakes import FakeBackends

AUTH = (
    '{ "method": "SessionSv1.AuthorizeEventWithDigest", "id": 7, "params": [ { "Tenant": "cgrates.org",'
    ' "GetMaxUsage": true, "Event": { "RequestType": "*prepaid", "OriginID": "x@h",'
    ' "Account": "1001", "SetupTime": "1795677153", "Destination": "1002" } } ] }'
)


async def _read(reader: asyncio.StreamReader, dec: StreamDecoder, n: int = 1) -> list:
    out: list = []
    while len(out) < n:
        data = await asyncio.wait_for(reader.read(65536), 3)
        assert data
        out += dec.feed(data)
    return out


async def test_thousand_garbage_frames_no_crash_and_other_connection_unaffected() -> None:
    sm = SessionManager(FakeBackends(), SMConfig())
    listener = CgratesListener(sm, port=0)
    port = await listener.start()
    try:
        r1, w1 = await asyncio.open_connection("127.0.0.1", port)
        r2, w2 = await asyncio.open_connection("127.0.0.1", port)
        garbage = b"".join(
            [b"nonsense ", b'{"method": 5, "params": []}', b'{"a": tru}', b'{"method":"X"}'] * 250
        )
        w1.write(garbage)
        await w1.drain()
        w2.write(AUTH.encode())
        await w2.drain()
        (reply,) = await _read(r2, StreamDecoder())
        assert reply["id"] == 7 and reply["result"]["MaxUsage"] == 100  # 100.00 at 0.01 per 10 ms
        # the garbage connection still works
        w1.write(AUTH.replace('"id": 7', '"id": 8').encode())
        await w1.drain()
        replies = await _read(r1, StreamDecoder(), 1001)
        errors, last = replies[:-1], replies[-1]
        assert len(errors) == 1000  # one error reply per bad frame / malformed request
        assert all(e["result"] is None and isinstance(e["error"], str) for e in errors)
        assert last["id"] == 8 and last["error"] is None
        w1.close()
        w2.close()
    finally:
        await listener.stop()
        await sm.shutdown()


async def test_slow_rals_still_answered_within_deadline() -> None:
    sm = SessionManager(FakeBackends(delay={"max_usage": 5.0}), SMConfig(reply_deadline_s=0.2))
    listener = CgratesListener(sm, port=0)
    port = await listener.start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        t0 = time.monotonic()
        w.write(AUTH.encode())
        await w.drain()
        (reply,) = await _read(r, StreamDecoder())
        assert time.monotonic() - t0 < 1.0
        assert reply == {"id": 7, "result": None, "error": "SERVER_ERROR"}
        assert sm.metrics.get("replies_over_deadline", "authorize") == 1
        w.close()
    finally:
        await listener.stop()
        await sm.shutdown()


async def test_unknown_method_and_two_element_params() -> None:
    sm = SessionManager(FakeBackends(), SMConfig())
    listener = CgratesListener(sm, port=0)
    port = await listener.start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(json.dumps({"method": "Foo.Bar", "id": 1, "params": [{}]}).encode()
                + json.dumps({"method": "SessionSv1.Ping", "id": 2, "params": ["", ""]}).encode()
                + json.dumps({"method": "SessionSv1.Ping", "id": 3, "params": [""]}).encode())
        await w.drain()
        a, b, c = await _read(r, StreamDecoder(), 3)
        assert a["id"] == 1 and "Foo.Bar" in a["error"]
        assert b["id"] == 2 and b["error"]
        assert c == {"id": 3, "result": "Pong", "error": None}
        w.close()
    finally:
        await listener.stop()
        await sm.shutdown()
