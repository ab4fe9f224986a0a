"""`cgr up --replicas 2`: two processes of each stateless service on their own ports (replica k
on the service's ports + 100*k), every one SERVING and shown by `cgr status`, a killed replica
restarted, and clients built from the same settings spreading calls over both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cgrates.v1 import attributes_pb2, attributes_pb2_grpc, common_pb2
from cgrpy.config import REPLICA_PORT_STEP, SERVICES, STATELESS_SERVICES, load_settings
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.healthcheck import check
from tests.suite import REPO, Suite, free_port_pairs, suite_env

pytestmark = pytest.mark.e2e


def _children(ppid: int) -> dict[int, str]:
    """pid -> `services.<name>` of the children of ``ppid``."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == ppid and b"-m" in cmd:
            out[int(entry.name)] = cmd[cmd.index(b"-m") + 1].decode()
    return out


def _pid_listening_on(port: int, pids: dict[int, str]) -> int:
    """Which of ``pids`` has the TCP listener on ``port`` (from /proc/net/tcp and its fds)."""
    lines = [line.split() for table in ("tcp", "tcp6")  # gRPC may listen on a v4-mapped socket
             for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]]
    inodes = {f[9] for f in lines if f[1].endswith(f":{port:04X}") and f[3] == "0A"}  # 0A = LISTEN
    for pid in pids:
        try:
            fds = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in fds for inode in inodes):
            return pid
    raise AssertionError(f"nobody listens on {port}")


async def test_up_with_two_replicas_of_each_stateless_service(sqlite_url):
    env = suite_env(sqlite_url, CGRPY_REPLICAS="2")
    pairs = iter(free_port_pairs(2 * len(STATELESS_SERVICES), REPLICA_PORT_STEP))
    for name in STATELESS_SERVICES:
        env[f"CGRPY_{name.upper()}_GRPC_PORT"] = str(next(pairs))
        env[f"CGRPY_{name.upper()}_METRICS_PORT"] = str(next(pairs))
    with Suite(env, "--tariffplan", "tariffplans/tutorial") as suite:
        assert suite.proc is not None
        kids = _children(suite.proc.pid)
        assert sorted(kids.values()) == sorted(
            [f"services.{n}" for n in SERVICES] + [f"services.{n}" for n in STATELESS_SERVICES])

        out = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "status", "--json"], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        status = json.loads(out.stdout)
        for name in SERVICES:
            reps = status[name]["replicas"]
            base, metrics = int(env[f"CGRPY_{name.upper()}_GRPC_PORT"]), int(env[f"CGRPY_{name.upper()}_METRICS_PORT"])
            n = 2 if name in STATELESS_SERVICES else 1
            assert [r["grpc"] for r in reps] == [f"127.0.0.1:{base + REPLICA_PORT_STEP * k}" for k in range(n)]
            assert [r["metrics"] for r in reps] == [f"127.0.0.1:{metrics + REPLICA_PORT_STEP * k}" for k in range(n)]
            assert all(r["status"] == "SERVING" for r in reps), reps
        assert status["sm"]["replicas"][0]["opensips"] == env["CGRPY_OPENSIPS_LISTEN"]
        text = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "status"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60).stdout
        assert "attributes-0" in text and "attributes-1" in text and "\nrals " in "\n" + text

        # a client from the same settings (as SM builds its own) spreads calls over both replicas
        settings = load_settings(env={k: v for k, v in env.items() if k.startswith("CGRPY_")})
        assert settings.addrs("attributes") == tuple(r["grpc"] for r in status["attributes"]["replicas"])
        client = ServiceClient(settings, "attributes", attributes_pb2_grpc.AttributesServiceStub)
        try:
            ev = common_pb2.Event(tenant="cgrates.org", id="e1")
            ev.fields["Account"].CopyFrom(common_pb2.Value(string_value="1001"))
            req = attributes_pb2.AttributesProcessEventRequest(event=ev, context="*sessions")
            for _ in range(4):
                reply = await client.call("ProcessEvent", req, idempotent=True)
                assert list(reply.matched_profiles) == ["ATTR_1001_SESSIONAUTH"]
            assert [r.client.calls_by_transport["mux"] for r in client.balancer.replicas] == [2, 2]
        finally:
            await client.close()

        # kill -9 replica 1 of attributes: the supervisor restarts it on the same port
        port1 = int(env["CGRPY_ATTRIBUTES_GRPC_PORT"]) + REPLICA_PORT_STEP
        victim = _pid_listening_on(port1, kids)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if check(f"127.0.0.1:{port1}", "", 0.5) == "SERVING" and victim not in _children(suite.proc.pid):
                break
            time.sleep(0.3)
        else:
            pytest.fail("attributes-1 was not restarted:\n" + suite.read_output()[-3000:])
        assert "attributes-1" in suite.read_output()
