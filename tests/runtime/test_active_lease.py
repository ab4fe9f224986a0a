"""Two processes of a service whose state is in memory (ResourceS) on one Postgres: one
serves, the other waits NOT_SERVING without loading anything; kill -9 of the active one and the
standby takes over within seconds, continuing the counts from what the active one saved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import psycopg
import pytest

from cgrates.v1 import common_pb2, resources_pb2, resources_pb2_grpc
from cgrpy.event import CGREvent
from cgrpy.runtime.healthcheck import check
from cgrpy.wire import event_to_pb
from tests.harness import load_tariffplan
from tests.suite import REPO, free_ports

TENANT = "cgrates.org"


def _start(db_url: str, port: int, metrics: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
    env.update({"CGRPY_STORDB_URL": db_url, "CGRPY_RESOURCES_GRPC_PORT": str(port),
                "CGRPY_RESOURCES_METRICS_PORT": str(metrics), "CGRPY_GRACE_PERIOD": "1s"})
    return subprocess.Popen([sys.executable, "-m", "services.resources"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_serving(addr: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    started = time.monotonic()
    while check(addr, "", 0.5) != "SERVING":
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{addr} not SERVING in {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def _lease_names(pg_url: str) -> set[str]:
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
        rows = c.execute("SELECT application_name FROM pg_stat_activity "
                         "WHERE datname = current_database()").fetchall()
    return {r[0] for r in rows}


def _hits(addr: str) -> int:
    """Usages ResGroup1 holds (Stored: saved with every allocation)."""
    with grpc.insecure_channel(addr) as ch:
        out = resources_pb2_grpc.ResourcesServiceStub(ch).GetResource(
            common_pb2.TenantID(tenant=TENANT, id="ResGroup1"), timeout=5)
    return len(json.loads(out.json)["Usages"])


def _hit(addr: str, eid: str) -> None:
    req = resources_pb2.ResourceUsageRequest(
        event=event_to_pb(CGREvent(TENANT, eid, None, {"Account": "1002"})), usage_id=eid)
    with grpc.insecure_channel(addr) as ch:
        resources_pb2_grpc.ResourcesServiceStub(ch).AllocateResources(req, timeout=5)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_one_active_the_other_waits_then_takes_over_with_the_counts(
    pg_url: str, procs: list[subprocess.Popen[bytes]],
) -> None:
    load_tariffplan(pg_url, "tutorial")
    pa, ma, pb, mb, pc, mc = free_ports(6)
    a_addr, b_addr, c_addr = (f"127.0.0.1:{p}" for p in (pa, pb, pc))
    procs.append(_start(pg_url, pa, ma))
    _wait_serving(a_addr, procs[0], 60)
    procs.append(_start(pg_url, pb, mb))
    _hit(a_addr, "e1")
    assert _hits(a_addr) == 1
    # B stays a standby while A lives: never SERVING, its state not loaded
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert check(b_addr, "", 0.5) in ("NOT_SERVING", "UNREACHABLE")
        assert procs[1].poll() is None
        time.sleep(0.1)

    os.kill(procs[0].pid, signal.SIGKILL)
    killed = time.monotonic()
    _wait_serving(b_addr, procs[1], 20)
    takeover = time.monotonic() - killed
    print(f"\nResourceS standby took over {takeover:.2f} s after kill -9 of the active process")
    assert takeover < 5
    assert _hits(b_addr) == 1  # the count continues from what A saved
    _hit(b_addr, "e2")
    assert _hits(b_addr) == 2

    # a standby asked to stop while it waits stops at once, cleanly
    procs.append(_start(pg_url, pc, mc))
    deadline = time.monotonic() + 30
    while f"cgrpy-active 127.0.0.1:{pc}" not in _lease_names(pg_url):  # it is waiting now
        assert procs[2].poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    assert check(c_addr, "", 0.5) == "NOT_SERVING"
    procs[2].send_signal(signal.SIGTERM)
    assert procs[2].wait(timeout=10) == 0
    err = procs[2].stderr.read().decode()  # type: ignore[union-attr]
    assert "lease.standby" in err and f"127.0.0.1:{pb}" in err  # it named the holder
