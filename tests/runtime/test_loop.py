"""The services' event loop: uvloop by default, the standard one on request, and gRPC (unary and
the Mux stream, server and client) working on both. Each case runs in a fresh interpreter, as a
service process does, so the loop under test is the only one grpc.aio has seen there."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cgrpy.config import ConfigError, load_settings
from cgrpy.runtime.loop import loop_factory

REPO = Path(__file__).resolve().parents[2]

_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from cgrates.v1 import common_pb2, stats_pb2_grpc
    from cgrpy.config import load_settings
    from cgrpy.runtime.client import ServiceClient
    from cgrpy.runtime.loop import run
    from cgrpy.runtime.server import ServiceRunner
    from tests.runtime.test_service_runtime import _TestService

    async def main():
        settings = load_settings(env={})
        runner = ServiceRunner(_TestService(settings), grpc_port=0, metrics_port=-1)
        await runner.start()
        addr = f"127.0.0.1:{runner.grpc_port}"
        clients = [ServiceClient(settings, "stats", stats_pb2_grpc.StatsServiceStub, addr=addr, mux=m)
                   for m in (True, False)]
        try:
            for c in clients:
                replies = await asyncio.gather(*(c.call("GetQueueIDs", common_pb2.TenantRequest(tenant=f"t{i}"))
                                                 for i in range(50)))
                assert [list(r.ids) for r in replies] == [["q1", f"t{i}"] for i in range(50)], replies
            assert clients[0].calls_by_transport == {"mux": 50, "unary": 0}
            assert clients[1].calls_by_transport == {"mux": 0, "unary": 50}
        finally:
            for c in clients:
                await c.close()
            await runner.stop(grace=0.5)
        return type(asyncio.get_running_loop()).__module__

    print(run(main(), sys.argv[1]))
""")


@pytest.mark.parametrize(("name", "module"), [("uvloop", "uvloop"), ("asyncio", "asyncio.unix_events")])
def test_grpc_server_and_client_run_on_the_loop(name, module):
    out = subprocess.run([sys.executable, "-c", _SCRIPT, name], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == module


def test_default_is_uvloop_and_a_bad_name_is_refused():
    assert load_settings(env={}).event_loop == "uvloop"
    assert loop_factory("asyncio") is None
    with pytest.raises(ConfigError, match="event_loop"):
        load_settings(env={"CGRPY_EVENT_LOOP": "trio"})
    with pytest.raises(ValueError, match="trio"):
        loop_factory("trio")
