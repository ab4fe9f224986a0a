"""Two ThresholdS processes on one Postgres, every threshold owned by one of them (partition
leases): events through either replica hit as one process hits, a threshold removed at MaxHits
is gone for both, and kill -9 of an owner in the middle of a stream loses and doubles no hit —
the survivor takes the partitions over from what the owner saved before each reply."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cgrates.v1 import common_pb2, thresholds_pb2, thresholds_pb2_grpc
from cgrpy.event import CGREvent
from cgrpy.runtime.healthcheck import check
from cgrpy.runtime.partitions import RETRIED, partition_of
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.storage.tariffplans import replace_tariffplan
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.wire import event_to_pb
from tests.suite import REPO, free_ports

TENANT = "cgrates.org"
HEADER = ("#Tenant[0],Id[1],FilterIDs[2],ActivationInterval[3],MaxHits[4],MinHits[5],MinSleep[6],"
          "Blocker[7],Weight[8],ActionIDs[9],Async[10]")
# THA counts 1001's events, THB and THMAX 1002's (THMAX is removed at its 3rd hit), THALL every one
THRESHOLDS = {"THALL": ("", -1, 30), "THA": ("*string:~*req.Account:1001", -1, 20),
              "THB": ("*string:~*req.Account:1002", -1, 10),
              "THMAX": ("*string:~*req.Account:1002", 3, 5)}


def _plan(db_url: str, tmp: Path) -> None:
    rows = [f"{TENANT},{t},{flt},,{mx},0,0,false,{w},,false" for t, (flt, mx, w) in THRESHOLDS.items()]
    (tmp / "Thresholds.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        replace_tariffplan(engine, "cgrpy", read_folder(tmp), source="test")
    finally:
        engine.dispose()


def _start(db_url: str, port: int, metrics: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
    env.update({"CGRPY_STORDB_URL": db_url, "CGRPY_THRESHOLDS_GRPC_PORT": str(port),
                "CGRPY_THRESHOLDS_METRICS_PORT": str(metrics), "CGRPY_GRACE_PERIOD": "1s"})
    return subprocess.Popen([sys.executable, "-m", "services.thresholds"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_serving(addr: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while check(addr, "", 0.5) != "SERVING":
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"{addr} not SERVING"
        time.sleep(0.05)


class Replica:
    def __init__(self, addr: str, proc: subprocess.Popen[bytes]) -> None:
        self.addr = addr
        self.proc = proc
        self.channel = grpc.insecure_channel(addr)
        self.stub = thresholds_pb2_grpc.ThresholdsServiceStub(self.channel)

    def send(self, eid: str, account: str, *, retried: bool = False) -> list[str]:
        ev = CGREvent(TENANT, eid, None, {"Account": account})
        md = ((RETRIED, "1"),) if retried else ()
        got = self.stub.ProcessEvent(
            thresholds_pb2.ThresholdsProcessEventRequest(event=event_to_pb(ev)), timeout=10, metadata=md)
        return list(got.ids)

    def hits(self, tid: str) -> int | None:
        try:
            got = self.stub.GetThreshold(common_pb2.TenantID(tenant=TENANT, id=tid), timeout=10)
        except grpc.RpcError as exc:
            assert "NOT_FOUND" in (exc.details() or ""), exc  # type: ignore[attr-defined]
            return None
        return int(json.loads(got.json)["Hits"])

    def ids(self) -> list[str]:
        return list(self.stub.GetThresholdIDs(common_pb2.TenantRequest(tenant=TENANT), timeout=10).ids)

    def owned(self) -> set[int]:
        return set(self.stub.GetOwnership(common_pb2.Empty(), timeout=5).partitions)


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[list[Replica]]:
    _plan(pg_url, tmp_path)
    pa, ma, pb, mb = free_ports(4)
    out = [Replica(f"127.0.0.1:{p}", _start(pg_url, p, m)) for p, m in ((pa, ma), (pb, mb))]
    try:
        for r in out:
            _wait_serving(r.addr, r.proc)
        yield out
    finally:
        for r in out:
            r.channel.close()
            if r.proc.poll() is None:
                r.proc.kill()
            r.proc.wait()


def _expected(sent: list[str]) -> dict[str, int | None]:
    """Hits one process shows after ``sent`` accounts' events."""
    n1002 = sent.count("1002")
    return {"THALL": len(sent), "THA": sent.count("1001"), "THB": n1002,
            "THMAX": n1002 if n1002 < 3 else None}


def _part(tid: str) -> int:
    return partition_of(f"{TENANT}:{tid}")


def test_two_replicas_hit_as_one_and_survive_the_owners_kill(replicas: list[Replica]) -> None:
    a, b = replicas
    assert len({_part(t) for t in ("THALL", "THA", "THB")}) == 3
    assert a.send("e0", "1001") == ["THALL", "THA"]  # A takes THALL and THA
    assert b.send("e1", "1002") == ["THALL", "THB", "THMAX"]  # B takes THB (and THMAX unless A has it)
    assert {_part("THALL"), _part("THA")} <= a.owned() and _part("THB") in b.owned()
    sent = ["1001", "1002"]
    for i in range(2, 30):  # through either replica, either account: the replies as one process's
        acc = "1001" if i % 3 else "1002"
        want = ["THALL", "THA"] if acc == "1001" else ["THALL", "THB"] + (
            ["THMAX"] if sent.count("1002") < 3 else [])
        assert (a, b)[i % 2].send(f"e{i}", acc) == want, i
        sent.append(acc)
    for r in (a, b):
        assert {t: r.hits(t) for t in THRESHOLDS} == _expected(sent)
        assert r.ids() == ["THA", "THALL", "THB"]  # THMAX removed at MaxHits, for both

    acked: list[str] = []
    errors: list[str] = []
    failed_over: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        i = 1000
        while not stop.is_set():
            acc = "1001" if i % 3 else "1002"
            try:
                try:
                    (a, b)[i % 2].send(f"s{i}", acc)
                except grpc.RpcError:
                    failed_over.append(i)
                    b.send(f"s{i}", acc, retried=True)
            except grpc.RpcError as exc:
                errors.append(f"s{i}: {exc.details()}")  # type: ignore[attr-defined]
            else:
                acked.append(acc)
            i += 1

    worker = threading.Thread(target=stream)
    worker.start()
    time.sleep(1.5)
    os.kill(a.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    before = len(acked)
    takeover = None
    while time.monotonic() - killed < 20:
        if {_part("THALL"), _part("THA")} <= b.owned():
            takeover = time.monotonic() - killed
            break
        time.sleep(0.01)
    time.sleep(1.5)
    stop.set()
    worker.join(timeout=30)
    print(f"\nThresholdS takeover after kill -9 of the owner: {takeover} s; {len(acked)} events "
          f"acked in the stream ({before} before the kill), {len(failed_over)} sent again to the "
          f"survivor, errors {errors[:3]}")
    assert takeover is not None and takeover < 5
    assert not errors
    assert before > 10 and len(acked) - before > 10 and failed_over
    assert {t: b.hits(t) for t in THRESHOLDS} == _expected(sent + acked)  # none lost or doubled


def _batch(r: Replica, events: list[tuple[str, str]]) -> list[list[str]]:
    """cdre's outbox delivery: one ProcessEvents of (event id, account)."""
    req = thresholds_pb2.ThresholdsProcessEventsRequest(events=[
        thresholds_pb2.ThresholdsProcessEventRequest(
            event=event_to_pb(CGREvent(TENANT, eid, None, {"Account": acc})))
        for eid, acc in events])
    got = r.stub.ProcessEvents(req, timeout=10)
    assert all(not x.error for x in got.results), got
    return [list(x.ids) for x in got.results]


def test_a_batch_resent_to_the_other_replica_or_after_a_kill_hits_once(
        replicas: list[Replica]) -> None:
    """An outbox batch delivered to A, then again to B (A's answer lost); another delivered to
    A, then to B after kill -9 of A (B takes A's thresholds over): every event hits each
    threshold once, and new events still hit."""
    a, b = replicas
    assert a.send("a0", "1001") == ["THALL", "THA"]  # A takes THALL and THA
    assert b.send("b0", "1002") == ["THALL", "THB", "THMAX"]  # B takes THB (THMAX too, or A)
    sent = ["1001", "1002"]

    def batch(lo: int, hi: int) -> list[tuple[str, str]]:
        return [(f"cgrid{i}:*default", "1001" if i % 3 else "1002") for i in range(lo, hi)]

    one, two = batch(0, 12), batch(12, 24)
    first = _batch(b, one)  # B counts THB's (and THMAX's), forwards THALL's and THA's to A
    assert first[1] == ["THALL", "THA"] and first[3] == ["THALL", "THB", "THMAX"]
    _batch(a, one)  # again through A: nothing counted again
    sent += [acc for _, acc in one]
    for r in (a, b):
        assert {t: r.hits(t) for t in THRESHOLDS} == _expected(sent)

    _batch(a, two)
    sent += [acc for _, acc in two]
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait()
    _batch(b, two)  # B takes THALL and THA over with the ids A had counted
    assert {_part("THALL"), _part("THA")} <= b.owned()
    assert {t: b.hits(t) for t in THRESHOLDS} == _expected(sent)
    three = batch(24, 27)
    _batch(b, three + two[:3] + one[:3])  # new events hit, old ones do not
    sent += [acc for _, acc in three]
    assert {t: b.hits(t) for t in THRESHOLDS} == _expected(sent)
