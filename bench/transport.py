"""`python -m bench transport`: what one call between two services costs, per transport.

One do-nothing RALs (``python -m bench.echo rals``, the real ServiceRunner and guard) in its own
process; this process calls ``Debit`` on it ``--calls`` times per case through
:class:`cgrpy.runtime.client.ServiceClient`, as the services do: unary RPCs, or the Mux stream
(many calls over one bidirectional stream per channel), each with 1 call in flight (a call
every few ms, the common case between services) and with ``--concurrency`` in flight. Reported per
case: calls/s, and CPU µs per call of the client (this process) and of the server (/proc), the
sum being what the suite pays per hop. Every reply is checked (usage echoed back).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.measure import loadavg
from bench.procstats import cpu_seconds
from bench.target import commit
from cgrpy.runtime.loop import run as run_loop


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transport", help="CPU per call between two services: unary, the Mux stream, the frame lane")
    p.add_argument("--calls", type=int, default=3000, help="calls per case")
    p.add_argument("--concurrency", type=int, default=16, help="calls in flight in the concurrent cases")
    p.add_argument("--out", type=Path, help="write the result JSON here")
    p.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop",
                   help="event loop of both sides (the echo server gets it as CGRPY_EVENT_LOOP)")
    p.add_argument("--transports", default="unary,mux,frame",
                   help="comma-separated cases to run (e.g. frame, to compare lane changes quickly)")
    p.set_defaults(func=run)


def _start_server(event_loop: str) -> tuple[subprocess.Popen[bytes], str]:
    from tests.suite import free_port, suite_env

    port = free_port()
    env = suite_env("sqlite:///:memory:", CGRPY_RALS_GRPC_PORT=str(port), CGRPY_RALS_METRICS_PORT=str(free_port()),
                    CGRPY_LOG_LEVEL="WARNING", CGRPY_EVENT_LOOP=event_loop)
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "bench.echo", "rals"], cwd=repo, env=env)
    addr = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(addr) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return proc, addr
            except grpc.RpcError:
                time.sleep(0.2)
    proc.kill()
    raise RuntimeError("bench transport: echo RALs did not start")


async def _case(addr: str, transport: str, calls: int, inflight: int, server_pid: int) -> dict[str, Any]:
    from cgrates.v1 import rals_pb2, rals_pb2_grpc
    from cgrpy.config import load_settings
    from cgrpy.runtime.client import ServiceClient

    client = ServiceClient(load_settings(env={"CGRPY_RPC_TRANSPORT": transport}), "rals",
                           rals_pb2_grpc.RalsServiceStub, addr=addr)
    bad = 0

    async def worker(n: int, base: int) -> None:
        nonlocal bad
        for i in range(n):
            req = rals_pb2.DebitRequest(request_id=f"r{base + i}", call=rals_pb2.CallDescriptor(
                tenant="cgrates.org", account="1001", destination="1002", usage_ns=base + i + 1))
            reply = await client.call("Debit", req, idempotent=True)
            bad += reply.usage_ns != base + i + 1

    try:
        await worker(50, 10**9)  # warm up: channel, stream, caches (and the lane, dialled meanwhile)
        await asyncio.sleep(0.1)
        await worker(10, 2 * 10**9)
        per = calls // inflight
        cpu0, srv0, t0 = time.process_time(), cpu_seconds(server_pid), time.perf_counter()
        await asyncio.gather(*(worker(per, k * per) for k in range(inflight)))
        wall = time.perf_counter() - t0
        cpu, srv = time.process_time() - cpu0, cpu_seconds(server_pid) - srv0
    finally:
        await client.close()
    n = per * inflight
    via = dict(client.calls_by_transport)
    if client._mux is not None:
        via["frame"] = client._mux.lane_calls
    return {"transport": transport, "in_flight": inflight, "calls": n,
            "calls_per_s": round(n / wall), "client_cpu_us": round(1e6 * cpu / n),
            "server_cpu_us": round(1e6 * srv / n), "total_cpu_us": round(1e6 * (cpu + srv) / n),
            "wrong_replies": bad, "via": via}


def table(result: dict[str, Any]) -> str:
    lines = [f"cgrpy transport micro-benchmark  {result['started_utc']}  commit {result['commit']}  "
             f"load {result['loadavg_before']}",
             f"{'transport':<10}{'in flight':>10}{'calls/s':>10}{'client µs':>11}{'server µs':>11}{'total µs':>10}"]
    for c in result["cases"]:
        lines.append(f"{c['transport']:<10}{c['in_flight']:>10}{c['calls_per_s']:>10}{c['client_cpu_us']:>11}"
                     f"{c['server_cpu_us']:>11}{c['total_cpu_us']:>10}"
                     + ("" if not c["wrong_replies"] else f"  !!! {c['wrong_replies']} wrong replies"))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    result: dict[str, Any] = {"mode": "transport", "started_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "commit": commit(), "loadavg_before": loadavg(), "cases": []}
    proc, addr = _start_server(args.event_loop)
    try:
        for inflight in (1, args.concurrency):
            for transport in args.transports.split(","):
                result["cases"].append(run_loop(_case(addr, transport, args.calls, inflight, proc.pid),
                                                args.event_loop))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    result["loadavg_after"] = loadavg()
    ok = all(c["wrong_replies"] == 0 for c in result["cases"])
    result["consistency"] = {"ok": ok}
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if ok else 3
