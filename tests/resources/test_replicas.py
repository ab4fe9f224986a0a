"""Two real ResourceS processes on one Postgres (replicas): both answer, one owns every
resource (one partition, cgrpy/runtime/partitions.py) and the other passes its requests to it,
so allocations made through both count as one; kill -9 of the owner while allocations and
releases stream through both loses no live allocation and frees no release twice, and the
survivor answers again within a few seconds (the takeover time is printed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import grpc
import psycopg
import pytest

from cgrates.v1 import common_pb2, resources_pb2, resources_pb2_grpc
from cgrpy.event import CGREvent
from cgrpy.runtime.healthcheck import check
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.wire import event_to_pb
from tests.conftest import TARIFFPLANS
from tests.stats.test_contract import store_rows
from tests.suite import REPO, free_ports

TENANT = "cgrates.org"
# a resource that is not Stored: on one process its usages live in memory only; replicated,
# every usage is committed so the replica taking over continues the count
STREAM = {"Tenant": TENANT, "Id": "RES_STREAM", "FilterIDs": "*string:~*req.Account:2001",
          "ActivationInterval": "", "TTL": "-1", "Limit": "10000", "AllocationMessage": "",
          "Blocker": "false", "Stored": "false", "Weight": "10", "ThresholdIDs": "*none"}


def _start(db_url: str, port: int, metrics: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
    env.update({"CGRPY_STORDB_URL": db_url, "CGRPY_RESOURCES_GRPC_PORT": str(port),
                "CGRPY_RESOURCES_METRICS_PORT": str(metrics), "CGRPY_GRACE_PERIOD": "1s",
                "CGRPY_THRESHOLDS_ADDR": f"127.0.0.1:{free_ports(1)[0]}"})
    return subprocess.Popen([sys.executable, "-m", "services.resources"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_serving(addr: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while check(addr, "", 0.5) != "SERVING":
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"{addr} not SERVING in {timeout} s"
        time.sleep(0.05)


def _req(uid: str, account: str) -> resources_pb2.ResourceUsageRequest:
    return resources_pb2.ResourceUsageRequest(
        event=event_to_pb(CGREvent(TENANT, f"ev-{uid}", None, {"Account": account})), usage_id=uid)


def _call(addr: str, method: str, req: object) -> object:
    with grpc.insecure_channel(addr) as ch:
        return getattr(resources_pb2_grpc.ResourcesServiceStub(ch), method)(req, timeout=5)


def _usages(addr: str, rid: str) -> set[str]:
    got = _call(addr, "GetResource", common_pb2.TenantID(tenant=TENANT, id=rid))
    return set(json.loads(got.json)["Usages"])  # type: ignore[attr-defined]


def _owns(addr: str) -> bool:
    return bool(_call(addr, "GetOwnership", common_pb2.Empty()).partitions)  # type: ignore[attr-defined]


def _saved(db_url: str, rid: str) -> set[str]:
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as c:
        rows = c.execute("SELECT usage_id FROM resource_usages WHERE resource_id = %s", (rid,))
        return {r[0] for r in rows.fetchall()}


@pytest.fixture
def pair(pg_url: str) -> Iterator[tuple[list[str], list[subprocess.Popen[bytes]]]]:
    rows = read_folder(TARIFFPLANS / "tutorial")
    rows["Resources"] = [*rows.get("Resources", []), STREAM]
    store_rows(pg_url, rows)
    ports = free_ports(4)
    addrs = [f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[2]}"]
    procs = [_start(pg_url, ports[0], ports[1]), _start(pg_url, ports[2], ports[3])]
    try:
        for a, p in zip(addrs, procs, strict=True):
            _wait_serving(a, p)
        yield addrs, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def test_allocations_through_both_replicas_count_as_one(
        pg_url: str, pair: tuple[list[str], list[subprocess.Popen[bytes]]]) -> None:
    (a, b), _procs = pair
    # ResGroup1: limit 7 over accounts 1001-1003, split between the replicas
    for i in range(7):
        _call((a, b)[i % 2], "AllocateResources", _req(f"u{i}", "1001"))
    assert _owns(a) != _owns(b)  # exactly one owner
    for addr in (a, b):
        with pytest.raises(grpc.RpcError) as info:
            _call(addr, "AllocateResources", _req("u7", "1002"))
        assert (info.value.details() or "") == "RESOURCE_UNAVAILABLE"  # type: ignore[attr-defined]
        assert _usages(addr, "ResGroup1") == {f"u{i}" for i in range(7)}
    _call(b, "ReleaseResources", _req("u0", "1001"))
    _call(a, "AllocateResources", _req("u7", "1003"))
    assert _usages(b, "ResGroup1") == {f"u{i}" for i in range(1, 8)} == _saved(pg_url, "ResGroup1")


class Stream:
    """Calls allocating and releasing RES_STREAM through both replicas from a few threads; each
    request that fails (its replica killed) is sent again to the other one, as SM's client does,
    until answered. ``held`` is what must be allocated at the end."""

    def __init__(self, addrs: list[str]) -> None:
        self.addrs = addrs
        self.held: set[str] = set()
        self.mutex = threading.Lock()
        self.stop = threading.Event()
        self.answered: list[tuple[float, float]] = []  # (sent, answered) of each request
        self.failed = 0

    def send(self, k: int, method: str, uid: str) -> None:
        deadline = time.monotonic() + 20
        while True:
            addr = self.addrs[k % len(self.addrs)]
            sent = time.monotonic()
            try:
                _call(addr, method, _req(uid, "2001"))
                with self.mutex:
                    self.answered.append((sent, time.monotonic()))
                return
            except grpc.RpcError:
                with self.mutex:
                    self.failed += 1
                assert time.monotonic() < deadline, f"{method} {uid} not answered in 20 s"
                k += 1
                time.sleep(0.02)

    def worker(self, w: int) -> None:
        mine: list[str] = []
        for n in range(10**6):
            if self.stop.is_set():
                return
            uid = f"w{w}-c{n}"
            self.send(n, "AllocateResources", uid)
            with self.mutex:
                self.held.add(uid)
            mine.append(uid)
            if len(mine) > 3:  # each worker holds a few calls up at a time
                gone = mine.pop(0)
                self.send(n + 1, "ReleaseResources", gone)
                with self.mutex:
                    self.held.discard(gone)


def test_kill_of_the_owner_mid_stream_loses_and_doubles_nothing(
        pg_url: str, pair: tuple[list[str], list[subprocess.Popen[bytes]]]) -> None:
    addrs, procs = pair
    stream = Stream(addrs)
    threads = [threading.Thread(target=stream.worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        owner = next(i for i, a in enumerate(addrs) if _owns(a))
        survivor = addrs[1 - owner]
        os.kill(procs[owner].pid, signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(2.5)
    finally:
        stream.stop.set()
        for t in threads:
            t.join(timeout=30)
    # takeover: from the kill to the first answer to a request sent after it
    after = sorted(done for sent, done in stream.answered if sent > killed)
    assert after, "nothing answered after the kill"
    takeover = after[0] - killed
    print(f"\nResourceS takeover: first answer {takeover:.2f} s after kill -9 of the owner; "
          f"{len(stream.answered)} answers, {stream.failed} failed attempts sent again")
    assert takeover < 5
    assert _owns(survivor)
    # every allocation answered and not released is held, once; every release freed it
    assert _usages(survivor, "RES_STREAM") == stream.held == _saved(pg_url, "RES_STREAM")
    assert len(stream.answered) > 40
