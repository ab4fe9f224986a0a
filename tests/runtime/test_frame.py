"""The frame lane (Mux envelopes over a plain TCP connection) against real servers on loopback:
found through the gRPC stream, same answers and errors, the token checked, a broken or draining
lane falls back to gRPC without failing a call, and `rpc_transport = mux` never dials it."""

from __future__ import annotations

import asyncio

import pytest

from cgrates.v1 import common_pb2, mux_pb2, stats_pb2_grpc
from cgrpy.config import load_settings
from cgrpy.errors import CGRError
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.frame import HELLO, FrameLane, LaneBroken, LaneClosed, frame_of
from cgrpy.runtime.server import ServiceRunner
from tests.runtime.test_service_runtime import _TestService

REQ = common_pb2.TenantRequest(tenant="cgrates.org")


async def _start(**env: str) -> ServiceRunner:
    runner = ServiceRunner(_TestService(load_settings(env={"CGRPY_FRAME_PORT_OFFSET": "0", **env})),
                           grpc_port=0, metrics_port=-1)
    await runner.start()
    return runner


def _client(runner: ServiceRunner, **env: str) -> ServiceClient:
    return ServiceClient(load_settings(env=env), "stats", stats_pb2_grpc.StatsServiceStub,
                         addr=f"127.0.0.1:{runner.grpc_port}")


async def _until_lane(client: ServiceClient) -> None:
    """The first call opens the gRPC stream, which names the lane; it is dialled meanwhile."""
    for _ in range(100):
        await client.call("GetQueueIDs", REQ)
        if client._mux.lane is not None and client._mux.lane.up:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the frame lane never came up")


@pytest.fixture
async def running():
    runner = await _start()
    yield runner
    await runner.stop(grace=0.5)


async def test_calls_ride_the_lane_once_the_stream_names_it(running):
    assert running.frame is not None and running.mux.frame_port == running.frame.port
    client = _client(running)
    try:
        await _until_lane(client)
        before = client._mux.lane_calls
        replies = await asyncio.gather(*(client.call("GetQueueIDs", REQ) for _ in range(50)))
        assert client._mux.lane_calls == before + 50
        assert all(list(r.ids) == ["q1", "cgrates.org"] for r in replies)
        with pytest.raises(CGRError) as err:  # an error keeps its CGRateS word over the lane
            await client.call("ResetStatQueue", common_pb2.TenantID(tenant="t", id="nope"))
        assert "NOT_FOUND" in str(err.value)
        assert client._mux.lane_calls == before + 51
    finally:
        await client.close()


async def test_mux_transport_never_dials_the_lane(running):
    client = _client(running, CGRPY_RPC_TRANSPORT="mux")
    try:
        for _ in range(5):
            await client.call("GetQueueIDs", REQ)
            await asyncio.sleep(0.01)
        assert client._mux.lane is None and client._mux.lane_calls == 0
        assert client.calls_by_transport["mux"] == 5
    finally:
        await client.close()


async def test_a_lane_needs_the_token_the_grpc_port_needs():
    runner = await _start(CGRPY_API_TOKEN="s3cret")
    try:
        port = runner.frame.port
        with pytest.raises(LaneClosed, match="UNAUTHENTICATED"):
            await FrameLane("127.0.0.1", port, b"Bearer wrong", None, None).connect()
        with pytest.raises(LaneClosed, match="UNAUTHENTICATED"):
            await FrameLane("127.0.0.1", port, b"", None, None).connect()
        # a request without the hello is refused too, and never runs
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        frame = mux_pb2.MuxRequests(requests=[mux_pb2.MuxRequest(
            id=1, method="/cgrates.v1.StatsService/GetQueueIDs", payload=REQ.SerializeToString())]).SerializeToString()
        writer.write(len(frame).to_bytes(4, "big") + frame)
        size = int.from_bytes(await reader.readexactly(4), "big")
        reply = mux_pb2.MuxReplies.FromString(await reader.readexactly(size)).replies[0]
        assert reply.id == 0 and "UNAUTHENTICATED" in reply.details and not reply.payload
        assert await reader.read() == b""  # and the connection is closed
        writer.close()
        lane = FrameLane("127.0.0.1", port, b"Bearer s3cret", None, None)
        await lane.connect()
        reply = await lane.request(5, mux_pb2.MuxRequest(
            id=5, method="/cgrates.v1.StatsService/GetQueueIDs", payload=REQ.SerializeToString()))
        assert reply.code == 0 and list(common_pb2.IDsResponse.FromString(reply.payload).ids) == ["q1", "cgrates.org"]
        lane.close()
        client = _client(runner, CGRPY_API_TOKEN="s3cret")
        try:
            await _until_lane(client)
        finally:
            await client.close()
    finally:
        await runner.stop(grace=0.5)
    assert HELLO.startswith("/")


async def test_a_broken_lane_falls_back_to_grpc_and_is_dialled_again(running, monkeypatch):
    from cgrpy.runtime import client as client_mod

    monkeypatch.setattr(client_mod, "MUX_RETRY_AFTER_S", 0.2)
    client = _client(running)
    try:
        await _until_lane(client)
        for conn in list(running.frame.conns):  # the server side of every lane connection dies
            conn.transport.abort()
        await asyncio.sleep(0.05)
        replies = [await client.call("GetQueueIDs", REQ) for _ in range(10)]  # no call fails
        assert all(list(r.ids) == ["q1", "cgrates.org"] for r in replies)
        await asyncio.sleep(0.3)
        await _until_lane(client)  # and the lane comes back after the pause
    finally:
        await client.close()


async def test_a_draining_server_sends_lane_clients_elsewhere_without_failing_a_call():
    runner = await _start()
    client = _client(runner)
    try:
        await _until_lane(client)
        stopping = asyncio.create_task(runner.stop(grace=1.0))
        await asyncio.sleep(0.05)
        assert client._mux.lane is None or not client._mux.lane.up
        await stopping
    finally:
        await client.close()


async def test_a_server_whose_lane_port_is_taken_serves_through_grpc():
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    taken = blocker.sockets[0].getsockname()[1]
    runner = ServiceRunner(_TestService(load_settings(env={"CGRPY_FRAME_PORT_OFFSET": "1000"})),
                           grpc_port=taken - 1000, metrics_port=-1)
    try:
        await runner.start()
    except Exception:
        pytest.skip("the gRPC port below the taken one is busy too")  # pragma: no cover
    try:
        assert runner.mux.frame_port is None
        client = _client(runner)
        try:
            for _ in range(3):
                assert list((await client.call("GetQueueIDs", REQ)).ids) == ["q1", "cgrates.org"]
            assert client._mux.lane is None and client.calls_by_transport["mux"] == 3
        finally:
            await client.close()
    finally:
        await runner.stop(grace=0.5)
        blocker.close()


async def test_a_lane_request_past_its_timeout_fails_alone_and_leaves_nothing_pending():
    """The reply's timer (not an asyncio.timeout scope) ends a request the server never answers;
    a later request on the same connection is answered, and nothing stays pending."""
    answered: list[int] = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            size = int.from_bytes(await reader.readexactly(4), "big")
            for req in mux_pb2.MuxRequests.FromString(await reader.readexactly(size)).requests:
                if req.method == "/slow":
                    continue  # never answered
                answered.append(req.id)
                out = mux_pb2.MuxReplies(replies=[mux_pb2.MuxReply(id=req.id)]).SerializeToString()
                writer.write(len(out).to_bytes(4, "big") + out)

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    lane = FrameLane("127.0.0.1", server.sockets[0].getsockname()[1], b"", None, None)
    try:
        await lane.connect()
        with pytest.raises(TimeoutError):
            await lane.request(1, mux_pb2.MuxRequest(id=1, method="/slow"), 0.05)
        assert lane.pending == {}
        reply = await lane.request(2, mux_pb2.MuxRequest(id=2, method="/fast"), 1.0)
        assert reply.id == 2 and answered == [0, 2] and lane.pending == {} and lane.up
    finally:
        lane.close()
        server.close()


async def test_the_server_ends_a_request_past_its_deadline_alone_and_the_connection_goes_on(running):
    """The request's own deadline (timeout_ns), enforced by the server whatever the client waits:
    DEADLINE_EXCEEDED for it, the requests beside it and after it answered on the same connection."""
    lane = FrameLane("127.0.0.1", running.frame.port, b"", None, None)
    method = "/cgrates.v1.StatsService/GetQueueIDs"
    try:
        await lane.connect()
        running.service.delay = 0.3
        slow = asyncio.ensure_future(lane.request(1, mux_pb2.MuxRequest(
            id=1, method=method, payload=REQ.SerializeToString(), timeout_ns=50_000_000), 5.0))
        patient = asyncio.ensure_future(lane.request(2, mux_pb2.MuxRequest(
            id=2, method=method, payload=REQ.SerializeToString(), timeout_ns=5_000_000_000), 5.0))
        reply = await slow
        assert (reply.code, reply.details, reply.payload) == (4, "Deadline Exceeded", b"")  # 4: DEADLINE_EXCEEDED
        assert not patient.done()
        reply = await patient
        assert reply.code == 0 and list(common_pb2.IDsResponse.FromString(reply.payload).ids) == ["q1", "cgrates.org"]
        running.service.delay = 0.0
        reply = await lane.request(3, mux_pb2.MuxRequest(id=3, method=method, payload=REQ.SerializeToString(),
                                                         timeout_ns=1_000_000_000), 5.0)
        assert reply.code == 0 and lane.up and lane.pending == {}
    finally:
        lane.close()


async def test_a_lost_lane_connection_cancels_the_requests_it_was_running(running):
    """Cancellation reaches the handler (its task is cancelled, not left running for nobody),
    with or without a deadline on the request."""
    lane = FrameLane("127.0.0.1", running.frame.port, b"", None, None)
    method = "/cgrates.v1.StatsService/GetQueueIDs"
    await lane.connect()
    running.service.delay = 30.0
    calls = [asyncio.ensure_future(lane.request(i, mux_pb2.MuxRequest(
        id=i, method=method, payload=REQ.SerializeToString(), timeout_ns=t), 60.0))
        for i, t in ((1, 0), (2, 20_000_000_000))]
    for _ in range(200):
        if sum(len(c._tasks) for c in running.frame.conns) == 2:
            break
        await asyncio.sleep(0.01)
    tasks = [t for c in running.frame.conns for t in c._tasks]
    assert len(tasks) == 2
    lane.close()
    done, _ = await asyncio.wait(tasks, timeout=5)
    assert len(done) == 2 and all(t.cancelled() for t in tasks)
    for c in calls:  # the client side: broken with the request written (it may have run)
        with pytest.raises(LaneBroken):
            await c


@pytest.mark.parametrize("sizes", [[], [0], [100], [127, 128], [16_383, 16_384, 3], [300_000, 1, 2_100_000]])
def test_a_frame_is_the_wrapper_message_a_peer_parses(sizes):
    """frame_of tags each envelope by hand: the bytes must be exactly MuxRequests/MuxReplies
    (length varints of 1, 2, 3 and 4 bytes), so any protobuf peer reads them."""
    requests = [mux_pb2.MuxRequest(id=i + 1, method="/m", payload=b"x" * n, timeout_ns=2_000_000_000)
                for i, n in enumerate(sizes)]
    replies = [mux_pb2.MuxReply(id=i + 1, code=i, details="d" * n) for i, n in enumerate(sizes)]
    for items, wrap in ((requests, lambda r: mux_pb2.MuxRequests(requests=r)),
                        (replies, lambda r: mux_pb2.MuxReplies(replies=r))):
        for some in ([i] for i in items):  # one envelope: tagged by hand
            body = wrap(some).SerializeToString()
            assert frame_of(some, wrap) == len(body).to_bytes(4, "big") + body
        body = wrap(items).SerializeToString()
        assert frame_of(items, wrap) == len(body).to_bytes(4, "big") + body
        assert type(wrap(items)).FromString(frame_of(items, wrap)[4:]) == wrap(items)
