"""The Mux stream (many unary calls over one bidirectional stream) against real gRPC servers on
loopback: same answers and errors as unary, deadlines, graceful drain, dead servers, and servers
without the stream."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from cgrates.v1 import common_pb2, mux_pb2, mux_pb2_grpc, stats_pb2_grpc
from cgrpy.config import load_settings
from cgrpy.errors import CGRError
from cgrpy.runtime import client as client_mod
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.server import ServiceRunner
from cgrpy.runtime.status import status_code
from tests.runtime.test_service_runtime import _SlowStats, _TestService
from tests.suite import free_port


def _settings(**env: str):
    return load_settings(env=env)


@pytest.fixture
async def running():
    runner = ServiceRunner(_TestService(_settings()), grpc_port=0, metrics_port=-1)
    await runner.start()
    yield runner
    await runner.stop(grace=0.5)


def _client(runner: ServiceRunner, **kw) -> ServiceClient:
    return ServiceClient(_settings(), "stats", stats_pb2_grpc.StatsServiceStub,
                         addr=f"127.0.0.1:{runner.grpc_port}", **kw)


async def test_stream_and_unary_give_the_same_answer(running):
    mux, unary = _client(running), _client(running, mux=False)
    try:
        req = common_pb2.TenantRequest(tenant="cgrates.org")
        a = await mux.call("GetQueueIDs", req)
        b = await unary.call("GetQueueIDs", req)
        assert a == b and list(a.ids) == ["q1", "cgrates.org"]
        assert mux.calls_by_transport == {"mux": 1, "unary": 0}
        assert unary.calls_by_transport == {"mux": 0, "unary": 1}
    finally:
        await mux.close()
        await unary.close()


async def test_unary_rpcs_stay_callable_and_the_default_transport_is_the_stream(running):
    client = ServiceClient(_settings(), "stats", stats_pb2_grpc.StatsServiceStub, addr=f"127.0.0.1:{running.grpc_port}")
    unary_off = ServiceClient(_settings(CGRPY_RPC_TRANSPORT="unary"), "stats", stats_pb2_grpc.StatsServiceStub,
                              addr=f"127.0.0.1:{running.grpc_port}")
    try:
        await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="t"))
        await unary_off.call("GetQueueIDs", common_pb2.TenantRequest(tenant="t"))
        assert client.calls_by_transport["mux"] == 1 and unary_off.calls_by_transport["unary"] == 1
    finally:
        await client.close()
        await unary_off.close()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as ch:
        reply = await stats_pb2_grpc.StatsServiceStub(ch).GetQueueIDs(common_pb2.TenantRequest(tenant="u"), timeout=2)
        assert list(reply.ids) == ["q1", "u"]


async def test_an_error_keeps_its_word_and_status_on_the_stream(running):
    addr = f"127.0.0.1:{running.grpc_port}"
    req = common_pb2.TenantID(tenant="t", id="nope")
    async with grpc.aio.insecure_channel(addr) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as unary_err:
            await stats_pb2_grpc.StatsServiceStub(ch).ResetStatQueue(req, timeout=2)
        call = mux_pb2_grpc.MuxStub(ch).Call()
        await call.write(mux_pb2.MuxRequests(requests=[
            mux_pb2.MuxRequest(id=7, method="/cgrates.v1.StatsService/ResetStatQueue",
                               payload=req.SerializeToString(), timeout_ns=2_000_000_000),
            mux_pb2.MuxRequest(id=8, method="/cgrates.v1.StatsService/NoSuchMethod")]))
        replies: dict[int, mux_pb2.MuxReply] = {}
        while len(replies) < 2:
            replies.update({r.id: r for r in (await call.read()).replies})
        await call.done_writing()
    assert replies[7].code == unary_err.value.code().value[0] == grpc.StatusCode.NOT_FOUND.value[0]
    assert replies[7].details == unary_err.value.details() == "NOT_FOUND:nope"
    assert replies[8].code == grpc.StatusCode.UNIMPLEMENTED.value[0]
    client = _client(running)
    try:
        with pytest.raises(CGRError) as err:
            await client.call("ResetStatQueue", req)
        assert (err.value.word, err.value.detail, status_code(err.value)) == ("NOT_FOUND", "nope", grpc.StatusCode.NOT_FOUND)
        assert client.calls_by_transport["mux"] == 1
    finally:
        await client.close()


async def test_many_calls_in_flight_on_one_stream_each_get_their_answer(running):
    running.service.delay = 0.01
    client = _client(running)
    try:
        replies = await asyncio.gather(*(client.call("GetQueueIDs", common_pb2.TenantRequest(tenant=f"t{i}"))
                                         for i in range(200)))
        assert [list(r.ids) for r in replies] == [["q1", f"t{i}"] for i in range(200)]
        assert client.calls_by_transport == {"mux": 200, "unary": 0}
    finally:
        await client.close()


async def test_a_deadline_on_the_stream_is_per_request(running):
    running.service.delay = 1.0
    client = _client(running)
    try:
        with pytest.raises(CGRError) as err:
            await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="slow"), timeout=0.2)
        assert err.value.word == "SERVER_ERROR" and err.value.transient and "DEADLINE_EXCEEDED" in err.value.detail
        running.service.delay = 0.0
        reply = await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="fast"))
        assert list(reply.ids) == ["q1", "fast"] and client.calls_by_transport["mux"] == 1  # the stream survived
    finally:
        await client.close()


async def test_graceful_stop_answers_calls_on_the_stream_and_does_not_wait_for_it():
    runner = ServiceRunner(_TestService(_settings(), delay=0.5), grpc_port=0, metrics_port=-1)
    await runner.start()
    client = _client(runner)
    try:
        call = asyncio.create_task(client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="inflight")))
        await asyncio.sleep(0.2)  # the call sleeps inside the handler
        t0 = time.monotonic()
        await runner.stop(grace=5)
        assert time.monotonic() - t0 < 3  # the stream ended with its last answer, not at the grace
        assert list((await call).ids) == ["q1", "inflight"]
        with pytest.raises(CGRError) as err:  # nothing listens now: a clean transient error
            await client.call("GetQueueIDs", common_pb2.TenantRequest(), idempotent=True, timeout=0.5)
        assert err.value.transient
    finally:
        await client.close()


async def test_a_dead_server_fails_cleanly_and_a_restarted_one_is_used_again(monkeypatch):
    monkeypatch.setattr(client_mod, "MUX_RETRY_AFTER_S", 0.5)
    port = free_port()
    client = ServiceClient(_settings(), "stats", stats_pb2_grpc.StatsServiceStub, addr=f"127.0.0.1:{port}")
    try:
        t0 = time.monotonic()
        with pytest.raises(CGRError) as err:
            await client.call("GetQueueIDs", common_pb2.TenantRequest(), idempotent=True, timeout=0.3)
        assert err.value.word == "SERVER_ERROR" and err.value.transient and time.monotonic() - t0 < 3
        runner = ServiceRunner(_TestService(_settings()), grpc_port=port, metrics_port=-1)
        await runner.start()
        try:
            # gRPC's reconnect backoff may still refuse the first tries, as it does for unary calls
            deadline = time.monotonic() + 20
            while True:
                try:
                    reply = await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="back"), idempotent=True)
                    break
                except CGRError:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
            assert list(reply.ids) == ["q1", "back"]
            await asyncio.sleep(0.6)  # the broken stream's rest is over: calls take the stream again
            # on a loaded machine the retry loop above may already have outlived the rest and used
            # the stream once, so count only this call
            on_mux = client.calls_by_transport["mux"]
            await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="again"))
            assert client.calls_by_transport["mux"] == on_mux + 1
        finally:
            await runner.stop(grace=0.5)
    finally:
        await client.close()


async def test_a_server_without_the_stream_is_called_unary():
    server = grpc.aio.server()
    stats_pb2_grpc.add_StatsServiceServicer_to_server(_SlowStats(_TestService(_settings())), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = ServiceClient(_settings(), "stats", stats_pb2_grpc.StatsServiceStub, addr=f"127.0.0.1:{port}")
    try:
        reply = await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="old"))
        assert list(reply.ids) == ["q1", "old"]
        assert client.calls_by_transport == {"mux": 0, "unary": 1}
    finally:
        await client.close()
        await server.stop(0)


async def test_with_two_replicas_a_stopped_one_fails_over_to_the_other():
    """A client given both replicas (gRPC's ``ipv4:a,b`` target, pick-first) keeps answering when
    the one its stream runs on stops: the stream drains, the calls go to the other replica."""
    a = ServiceRunner(_TestService(_settings()), grpc_port=0, metrics_port=-1)
    b = ServiceRunner(_TestService(_settings()), grpc_port=0, metrics_port=-1)
    await a.start()
    await b.start()
    client = ServiceClient(_settings(), "stats", stats_pb2_grpc.StatsServiceStub,
                           addr=f"ipv4:127.0.0.1:{a.grpc_port},127.0.0.1:{b.grpc_port}")
    try:
        await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="first"), idempotent=True)
        assert client.calls_by_transport["mux"] == 1
        await a.stop(grace=1)
        for i in range(20):  # every call answered, none lost while the client switches over
            reply = await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant=f"t{i}"), idempotent=True)
            assert list(reply.ids) == ["q1", f"t{i}"]
    finally:
        await client.close()
        await b.stop(grace=0.5)
