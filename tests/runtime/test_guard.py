"""The runtime's guard (``cgrpy.runtime.server.make_guard``: metrics, readiness gate, error
translation in one coroutine per call) on a real server over loopback, on the unary RPC and on
the Mux stream alike: every outcome keeps its status code, its text and its metric labels."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import pytest

from cgrates.v1 import common_pb2, mux_pb2, mux_pb2_grpc, stats_pb2_grpc
from cgrpy.config import load_settings
from cgrpy.runtime.server import ServiceRunner
from tests.runtime.test_service_runtime import _SlowStats, _TestService

TID = common_pb2.TenantID(tenant="t", id="x")


class _FailingStats(_SlowStats):
    async def GetStatQueue(self, request, context):
        raise RuntimeError("boom")


class _FailingService(_TestService):
    def register(self, server):
        names = super().register(_Skip(server))
        stats_pb2_grpc.add_StatsServiceServicer_to_server(_FailingStats(self), server)
        return names


class _Skip:
    """Swallows the base service's registration: the failing servicer replaces it."""

    def __init__(self, server) -> None:
        self.server = server

    def add_generic_rpc_handlers(self, handlers) -> None:
        pass

    def add_registered_method_handlers(self, service, handlers) -> None:
        pass


async def _mux_call(addr: str, method: str, payload: bytes) -> mux_pb2.MuxReply:
    async with grpc.aio.insecure_channel(addr) as ch:
        call = mux_pb2_grpc.MuxStub(ch).Call()
        await call.write(mux_pb2.MuxRequests(requests=[mux_pb2.MuxRequest(
            id=1, method=f"/cgrates.v1.StatsService/{method}", payload=payload, timeout_ns=2_000_000_000)]))
        reply = (await call.read()).replies[0]
        await call.done_writing()
        return reply


async def _metrics(runner: ServiceRunner) -> str:
    return await asyncio.to_thread(lambda: urllib.request.urlopen(
        f"http://127.0.0.1:{runner.metrics_port}/metrics", timeout=5).read().decode())


async def test_an_unexpected_error_is_internal_with_its_text_on_both_transports():
    runner = ServiceRunner(_FailingService(load_settings(env={})), grpc_port=0, metrics_port=0)
    await runner.start()
    addr = f"127.0.0.1:{runner.grpc_port}"
    try:
        async with grpc.aio.insecure_channel(addr) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stats_pb2_grpc.StatsServiceStub(ch).GetStatQueue(TID, timeout=2)
        assert (err.value.code(), err.value.details()) == (grpc.StatusCode.INTERNAL, "SERVER_ERROR: boom")
        reply = await _mux_call(addr, "GetStatQueue", TID.SerializeToString())
        assert (reply.code, reply.details) == (grpc.StatusCode.INTERNAL.value[0], "SERVER_ERROR: boom")
        body = await _metrics(runner)
        assert ('grpc_server_handled_total{grpc_code="INTERNAL",grpc_method="GetStatQueue",'
                'grpc_service="cgrates.v1.StatsService",grpc_type="unary"} 2.0') in body
        assert ('grpc_server_started_total{grpc_method="GetStatQueue",'
                'grpc_service="cgrates.v1.StatsService",grpc_type="unary"} 2.0') in body
    finally:
        await runner.stop(grace=0.5)


async def test_a_call_before_load_is_unavailable_not_ready_and_health_still_answers():
    gate = asyncio.Event()
    runner = ServiceRunner(_TestService(load_settings(env={}), load_gate=gate), grpc_port=0, metrics_port=0)
    start = asyncio.create_task(runner.start())
    try:
        for _ in range(200):
            if runner.mux is not None and runner.grpc_port and runner.server is not None:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        addr = f"127.0.0.1:{runner.grpc_port}"
        req = common_pb2.TenantRequest(tenant="t")
        async with grpc.aio.insecure_channel(addr) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stats_pb2_grpc.StatsServiceStub(ch).GetQueueIDs(req, timeout=2)
        assert (err.value.code(), err.value.details()) == (grpc.StatusCode.UNAVAILABLE, "NOT_READY: stats is loading")
        reply = await _mux_call(addr, "GetQueueIDs", req.SerializeToString())
        assert (reply.code, reply.details) == (grpc.StatusCode.UNAVAILABLE.value[0], "NOT_READY: stats is loading")
        body = await _metrics(runner)
        assert ('grpc_server_handled_total{grpc_code="UNAVAILABLE",grpc_method="GetQueueIDs",'
                'grpc_service="cgrates.v1.StatsService",grpc_type="unary"} 2.0') in body
        gate.set()
        await start
        reply = await _mux_call(addr, "GetQueueIDs", req.SerializeToString())
        assert reply.code == 0 and list(common_pb2.IDsResponse.FromString(reply.payload).ids) == ["q1", "t"]
    finally:
        gate.set()
        await start
        await runner.stop(grace=0.5)
