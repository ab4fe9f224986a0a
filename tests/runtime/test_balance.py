"""Client-side balancing over replicas: real attributes processes on loopback (one killed with
SIGKILL mid-run), real in-process servers for the rotation rules, and the dns:/// name lookup."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from cgrates.v1 import attributes_pb2, attributes_pb2_grpc, common_pb2, stats_pb2_grpc
from cgrpy.config import ConfigError, load_settings
from cgrpy.errors import CGRError
from cgrpy.runtime import balance
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.healthcheck import check
from cgrpy.runtime.server import ServiceRunner
from tests.harness import load_tariffplan
from tests.runtime.test_service_runtime import _TestService
from tests.suite import free_port


def _settings(**env: str):
    return load_settings(env=env)


def _stats_client(addr: str, **env: str) -> ServiceClient:
    return ServiceClient(_settings(**env), "stats", stats_pb2_grpc.StatsServiceStub, addr=addr)


@pytest.fixture
async def two():
    runners = [ServiceRunner(_TestService(_settings()), grpc_port=0, metrics_port=-1) for _ in range(2)]
    for r in runners:
        await r.start()
    yield runners
    for r in runners:
        if r.server is not None:
            await r.stop(grace=0.2)


def test_addr_setting_takes_a_list_or_a_dns_name_and_names_a_bad_one():
    s = _settings(CGRPY_ATTRIBUTES_ADDR="10.0.0.1:20051, 10.0.0.2:20051",
                  CGRPY_CDRE_ADDR="dns:///cdre:20057")
    assert s.addrs("attributes") == ("10.0.0.1:20051", "10.0.0.2:20051")
    assert s.addr("attributes") == "10.0.0.1:20051"  # one-off clients (health checks) take the first
    assert s.addrs("cdre") == ("dns:///cdre:20057",)
    assert s.addrs("rals") == ("127.0.0.1:20053",)
    assert _settings(CGRPY_STATS_ADDR="ipv4:127.0.0.1:1,127.0.0.1:2").addrs("stats") == (
        "ipv4:127.0.0.1:1,127.0.0.1:2",)  # gRPC's own multi-address target: left whole
    for bad in ("attributes", "dns://x/a:1", "a:1,b", "a:99999"):
        with pytest.raises(ConfigError, match="attributes_addr"):
            _settings(CGRPY_ATTRIBUTES_ADDR=bad)


async def test_one_address_takes_the_direct_path(two):
    client = _stats_client(f"127.0.0.1:{two[0].grpc_port}")
    try:
        assert client.balancer is None
        await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="t"))
        assert client.calls_by_transport == {"mux": 1, "unary": 0}
    finally:
        await client.close()


async def test_calls_are_spread_over_every_replica_each_on_its_own_stream(two):
    client = _stats_client(",".join(f"127.0.0.1:{r.grpc_port}" for r in two))
    try:
        for i in range(10):
            reply = await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant=f"t{i}"))
            assert list(reply.ids) == ["q1", f"t{i}"]
        per_replica = [r.client.calls_by_transport for r in client.balancer.replicas]
        assert per_replica == [{"mux": 5, "unary": 0}, {"mux": 5, "unary": 0}]
    finally:
        await client.close()


async def test_a_stopped_replica_is_skipped_and_no_call_fails(two):
    client = _stats_client(",".join(f"127.0.0.1:{r.grpc_port}" for r in two))
    try:
        await client.call("GetQueueIDs", common_pb2.TenantRequest(), idempotent=True)
        await two[0].stop(grace=0.2)
        for i in range(20):
            reply = await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant=f"t{i}"), idempotent=True)
            assert list(reply.ids) == ["q1", f"t{i}"]
        dead, live = client.balancer.replicas
        assert not dead.live(time.monotonic()) or dead.client.calls_by_transport["unary"] <= 2
        assert live.client.calls_by_transport["mux"] >= 19
    finally:
        await client.close()


async def test_a_non_idempotent_call_is_never_sent_twice(two):
    """Only the caller knows whether a call may run twice: the balancer does not retry one that
    was not marked idempotent, it only stops choosing the replica that failed."""
    client = _stats_client(",".join(f"127.0.0.1:{r.grpc_port}" for r in two))
    try:
        await two[0].stop(grace=0.2)
        results = []
        for _ in range(4):
            try:
                await client.call("GetQueueIDs", common_pb2.TenantRequest(), timeout=1)
                results.append("ok")
            except CGRError as exc:
                assert exc.transient
                results.append("failed")
        assert results.count("failed") <= 1 and results[-1] == "ok"
    finally:
        await client.close()


async def test_dns_name_is_resolved_to_every_replica_and_followed(two, monkeypatch):
    answers = {"now": [f"127.0.0.1:{two[0].grpc_port}"]}

    async def fake_resolve(target: str) -> list[str]:
        assert target == "dns:///attributes.test:20051"
        return list(answers["now"])

    monkeypatch.setattr(balance, "resolve", fake_resolve)
    client = _stats_client("dns:///attributes.test:20051", CGRPY_RPC_RESOLVE_INTERVAL="100ms")
    try:
        await client.call("GetQueueIDs", common_pb2.TenantRequest())
        assert [r.addr for r in client.balancer.replicas] == answers["now"]
        answers["now"] = [f"127.0.0.1:{r.grpc_port}" for r in two]  # a replica joined
        await asyncio.sleep(0.15)
        for _ in range(4):
            await client.call("GetQueueIDs", common_pb2.TenantRequest())
        await asyncio.sleep(0.05)
        assert [r.addr for r in client.balancer.replicas] == answers["now"]
        assert all(r.client.calls_by_transport["mux"] >= 1 for r in client.balancer.replicas)
    finally:
        await client.close()


async def test_real_name_lookup():
    found = await balance.resolve("dns:///localhost:20051")
    assert "127.0.0.1:20051" in found
    assert all(a.endswith(":20051") for a in found)


# -- two real attributes processes, one killed with SIGKILL mid-run ------------------------------


def _start_attributes(db_url: str, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
    env.update(CGRPY_STORDB_URL=db_url, CGRPY_ATTRIBUTES_GRPC_PORT=str(port),
               CGRPY_ATTRIBUTES_METRICS_PORT=str(free_port()))
    return subprocess.Popen([sys.executable, "-m", "services.attributes"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _wait_serving(addr: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while await asyncio.to_thread(check, addr, "", 0.5) != "SERVING":
        assert proc.poll() is None, f"attributes at {addr} exited with {proc.returncode}"
        assert time.monotonic() < deadline, f"attributes at {addr} not SERVING"
        await asyncio.sleep(0.2)


def _event(i: int) -> attributes_pb2.AttributesProcessEventRequest:
    ev = common_pb2.Event(tenant="cgrates.org", id=f"ev{i}")
    ev.fields["Account"].CopyFrom(common_pb2.Value(string_value="1001"))
    return attributes_pb2.AttributesProcessEventRequest(event=ev, context="*sessions")


async def test_two_real_replicas_one_killed_mid_run_every_call_answered(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'stordb.sqlite'}"
    await asyncio.to_thread(load_tariffplan, db_url, "tutorial")
    ports = [free_port(), free_port()]
    procs = [_start_attributes(db_url, p) for p in ports]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    client = ServiceClient(_settings(), "attributes", attributes_pb2_grpc.AttributesServiceStub,
                           addr=",".join(addrs))
    try:
        for addr, proc in zip(addrs, procs, strict=True):
            await _wait_serving(addr, proc)
        expected = await client.call("ProcessEvent", _event(0), idempotent=True)
        assert list(expected.matched_profiles)  # the tutorial plan really answers
        answered, stop = [], time.monotonic() + 4

        async def caller(worker: int) -> None:
            i = 0
            while time.monotonic() < stop:
                reply = await client.call("ProcessEvent", _event(i), idempotent=True)
                assert list(reply.matched_profiles) == list(expected.matched_profiles)
                answered.append((worker, time.monotonic()))
                i += 1

        async def killer() -> float:
            await asyncio.sleep(1.5)
            procs[0].send_signal(signal.SIGKILL)
            return time.monotonic()

        results = await asyncio.gather(*(caller(w) for w in range(4)), killer())
        killed_at = results[-1]
        before = sum(1 for _, t in answered if t < killed_at)
        after = sum(1 for _, t in answered if t > killed_at + 0.5)
        assert before > 20 and after > 20, (before, after)
        calls = [r.client.calls_by_transport for r in client.balancer.replicas]
        assert all(c["mux"] > 5 for c in calls), calls  # both replicas served before the kill
    finally:
        await client.close()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)


async def test_a_name_without_addresses_yet_is_looked_up_again_each_second(two, monkeypatch):
    """A headless Service has no address until its first pod is ready: calls meanwhile fail
    with a clear transient error, and the first ready replica is used within about a second."""
    answers: dict[str, list[str] | None] = {"now": None}

    async def fake_resolve(target: str) -> list[str]:
        if answers["now"] is None:
            raise OSError("Name or service not known")
        return list(answers["now"])

    monkeypatch.setattr(balance, "resolve", fake_resolve)
    client = _stats_client("dns:///stats.test:20055")  # default interval: 5 s
    try:
        with pytest.raises(CGRError) as err:
            await client.call("GetQueueIDs", common_pb2.TenantRequest(), idempotent=True)
        assert err.value.transient and "no address" in str(err.value)
        answers["now"] = [f"127.0.0.1:{two[1].grpc_port}"]
        await asyncio.sleep(balance.RESOLVE_AFTER_FAILURE_S + 0.1)
        reply = await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant="up"), idempotent=True)
        assert list(reply.ids) == ["q1", "up"]
    finally:
        await client.close()


async def test_a_hung_replica_is_skipped_after_one_timeout(two):
    """A hung process keeps its connection open (no TRANSIENT_FAILURE): its first timeout marks
    it down, the idempotent call is retried on the other replica, and the calls after it do not
    wait for the hung one again while it is down."""
    two[0].service.delay = 5.0  # replica 0 answers nothing within the deadline
    client = _stats_client(",".join(f"127.0.0.1:{r.grpc_port}" for r in two))
    try:
        t0 = time.monotonic()
        for i in range(10):
            reply = await client.call("GetQueueIDs", common_pb2.TenantRequest(tenant=f"t{i}"),
                                      idempotent=True, timeout=0.3)
            assert list(reply.ids) == ["q1", f"t{i}"]
        # one 0.3 s timeout; taking turns without skipping would wait 5 of them (1.5 s)
        assert time.monotonic() - t0 < 1.2, time.monotonic() - t0
        hung, live = client.balancer.replicas
        # tried once (the timeout), not every other call; each answer came from the live one
        assert hung.client.calls_by_transport["mux"] == 0  # counted only when answered
        assert live.client.calls_by_transport["mux"] == 10
        assert hung.down_until > 0
    finally:
        two[0].service.delay = 0.0
        await client.close()
