"""The shared service runtime on real gRPC servers over loopback: health, reflection (real
grpcurl), metrics, error mapping, graceful shutdown with a call in flight."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cgrates.v1 import common_pb2, stats_pb2, stats_pb2_grpc
from cgrpy.config import ConfigError, load_settings
from cgrpy.errors import CGRError
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.server import BaseService, ServiceRunner

GRPCURL = shutil.which("grpcurl") or str(__import__("pathlib").Path(__import__("sys").prefix) / "bin" / "grpcurl")


class _SlowStats(stats_pb2_grpc.StatsServiceServicer):
    def __init__(self, owner: _TestService) -> None:
        self.owner = owner

    async def GetQueueIDs(self, request, context):
        await asyncio.sleep(self.owner.delay)
        return common_pb2.IDsResponse(ids=["q1", request.tenant])

    async def ResetStatQueue(self, request, context):
        raise CGRError("NOT_FOUND", request.id)


class _TestService(BaseService):
    name = "stats"

    def __init__(self, settings, delay: float = 0.0, load_gate: asyncio.Event | None = None) -> None:
        super().__init__(settings)
        self.delay = delay
        self.load_gate = load_gate

    def register(self, server):
        stats_pb2_grpc.add_StatsServiceServicer_to_server(_SlowStats(self), server)
        return [stats_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name]

    async def load(self):
        if self.load_gate is not None:
            await self.load_gate.wait()


def _settings():
    return load_settings(env={})


async def _health(addr: str, service: str = "") -> str:
    async with grpc.aio.insecure_channel(addr) as ch:
        resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


async def test_health_is_serving_only_after_load():
    gate = asyncio.Event()
    runner = ServiceRunner(_TestService(_settings(), load_gate=gate), grpc_port=0, metrics_port=0)
    start = asyncio.create_task(runner.start())
    for _ in range(100):
        if runner.server is not None and runner.grpc_port:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    addr = f"127.0.0.1:{runner.grpc_port}"
    assert await _health(addr) == "NOT_SERVING"
    assert await _health(addr, "cgrates.v1.StatsService") == "NOT_SERVING"
    gate.set()
    await start
    assert await _health(addr) == "SERVING"
    assert await _health(addr, "cgrates.v1.StatsService") == "SERVING"
    await runner.stop(grace=0.5)


@pytest.fixture
async def running():
    runner = ServiceRunner(_TestService(_settings(), delay=0.0), grpc_port=0, metrics_port=0)
    await runner.start()
    yield runner
    await runner.stop(grace=0.5)


def _grpcurl(*args: str) -> str:
    out = subprocess.run([GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_reflection_with_real_grpcurl(running):
    addr = f"127.0.0.1:{running.grpc_port}"
    listed = (await asyncio.to_thread(_grpcurl, addr, "list")).split()
    assert {"cgrates.v1.StatsService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(listed)
    described = await asyncio.to_thread(_grpcurl, addr, "describe", "cgrates.v1.StatsService")
    assert "rpc GetQueueStringMetrics ( .cgrates.v1.TenantID ) returns ( .cgrates.v1.MetricsResponse );" in described
    reply = await asyncio.to_thread(_grpcurl, "-d", '{"tenant":"cgrates.org"}', addr, "cgrates.v1.StatsService/GetQueueIDs")
    assert json.loads(reply) == {"ids": ["q1", "cgrates.org"]}


async def test_metrics_count_rpcs_with_codes(running):
    addr = f"127.0.0.1:{running.grpc_port}"
    client = ServiceClient(_settings(), "stats", stats_pb2_grpc.StatsServiceStub, addr=addr)
    await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="t"))
    with pytest.raises(CGRError) as err:
        await client.call("ResetStatQueue", common_pb2.TenantID(tenant="t", id="nope"))
    assert err.value.word == "NOT_FOUND" and err.value.detail == "nope"
    await client.close()
    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=5).read().decode()
    )
    assert 'grpc_server_started_total{grpc_method="GetQueueIDs",grpc_service="cgrates.v1.StatsService",grpc_type="unary"}' in body
    assert 'grpc_server_handled_total{grpc_code="NOT_FOUND",grpc_method="ResetStatQueue",grpc_service="cgrates.v1.StatsService",grpc_type="unary"}' in body
    assert "grpc_server_handling_seconds_bucket" in body
    assert "process_resident_memory_bytes" in body


async def test_graceful_shutdown_finishes_call_in_flight():
    runner = ServiceRunner(_TestService(_settings(), delay=0.6), grpc_port=0, metrics_port=0)
    await runner.start()
    addr = f"127.0.0.1:{runner.grpc_port}"
    async with grpc.aio.insecure_channel(addr) as ch:
        stub = stats_pb2_grpc.StatsServiceStub(ch)
        call = asyncio.ensure_future(stub.GetQueueIDs(common_pb2.TenantRequest(tenant="inflight"), timeout=5))
        await asyncio.sleep(0.2)  # the call is now sleeping inside the handler
        stop = asyncio.create_task(runner.stop(grace=3))
        reply = await call
        assert list(reply.ids) == ["q1", "inflight"]
        await stop
    # after the stop nothing listens any more
    async with grpc.aio.insecure_channel(addr) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stats_pb2_grpc.StatsServiceStub(ch).GetQueueIDs(common_pb2.TenantRequest(), timeout=0.5)
        assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_unimplemented_rpc_answers_unimplemented(running):
    addr = f"127.0.0.1:{running.grpc_port}"
    async with grpc.aio.insecure_channel(addr) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stats_pb2_grpc.StatsServiceStub(ch).GetQueueStringMetrics(common_pb2.TenantID(), timeout=2)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED



class _BadLoad(_TestService):
    async def load(self):
        raise ConfigError("stats: bad profiles file")


async def test_failed_load_stops_the_server_it_started():
    """load() fails after the gRPC server started: start() stops it again. A server left running
    keeps gRPC's poller alive and closing the event loop then waits on it: the process (or the
    test run, seen with cdre's bad-profiles test) hangs instead of exiting with the error."""
    runner = ServiceRunner(_BadLoad(_settings()), grpc_port=0, metrics_port=0)
    with pytest.raises(ConfigError, match="bad profiles file"):
        await runner.start()
    assert runner.grpc_port > 0 and runner._metrics_server is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", runner.grpc_port), timeout=2).close()
