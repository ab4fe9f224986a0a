"""Two StatS processes on one Postgres, every queue owned by one of them (partition leases):
events through either replica count as one process counts them, and kill -9 of an owner in the
middle of a stream loses and doubles nothing — the survivor takes the partitions over from what
the owner saved before each reply. The takeover time is printed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from cgrates.v1 import common_pb2, stats_pb2, stats_pb2_grpc
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
HEADER = ("#Tenant[0],Id[1],FilterIDs[2],ActivationInterval[3],QueueLength[4],TTL[5],MinItems[6],"
          "Metrics[7],MetricFilterIDs[8],Stored[9],Blocker[10],Weight[11],ThresholdIDs[12]")
# QA counts 1001's events, QB 1002's, QALL every event; Weight orders the reply.
QUEUES = {"QALL": ("", 30), "QA": ("*string:~*req.Account:1001", 20),
          "QB": ("*string:~*req.Account:1002", 10)}


def _plan(db_url: str, tmp: Path) -> None:
    rows = [f"{TENANT},{q},{flt},,0,,0,*sum:~*req.Value;*sum:~*req.One,,true,false,{w},*none"
            for q, (flt, w) in QUEUES.items()]
    (tmp / "Stats.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        replace_tariffplan(engine, "cgrpy", read_folder(tmp), source="test")
    finally:
        engine.dispose()


def _start(db_url: str, port: int, metrics: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
    env.update({"CGRPY_STORDB_URL": db_url, "CGRPY_STATS_GRPC_PORT": str(port),
                "CGRPY_STATS_METRICS_PORT": str(metrics), "CGRPY_GRACE_PERIOD": "1s"})
    return subprocess.Popen([sys.executable, "-m", "services.stats"], cwd=REPO, env=env,
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
        self.stub = stats_pb2_grpc.StatsServiceStub(self.channel)

    def send(self, eid: str, account: str, value: int, *, retried: bool = False) -> list[str]:
        ev = CGREvent(TENANT, eid, None, {"Account": account, "Value": value, "One": 1})
        md = ((RETRIED, "1"),) if retried else ()
        got = self.stub.ProcessEvent(stats_pb2.StatsProcessEventRequest(event=event_to_pb(ev)),
                                     timeout=10, metadata=md)
        return list(got.ids)

    def metrics(self, qid: str) -> dict[str, Decimal]:
        got = self.stub.GetQueueFloatMetrics(common_pb2.TenantID(tenant=TENANT, id=qid), timeout=10)
        return {k: Decimal(v) for k, v in got.metrics.items()}

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


def _expected(sent: list[tuple[str, int]]) -> dict[str, dict[str, Decimal]]:
    """What one process answers for ``sent`` (account, value) events."""
    def of(events: list[int]) -> dict[str, Decimal]:
        return {"*sum:~*req.Value": Decimal(sum(events)), "*sum:~*req.One": Decimal(len(events))}
    return {"QALL": of([v for _, v in sent]), "QA": of([v for a, v in sent if a == "1001"]),
            "QB": of([v for a, v in sent if a == "1002"])}


def _status_shows_ownership(a: Replica, b: Replica) -> None:
    """`cgr status --json` and the table: each StatS replica with the partitions it owns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
    env["CGRPY_STATS_ADDR"] = f"{a.addr},{b.addr}"
    out = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "status", "--json"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=60)
    reps = {r["grpc"]: r for r in json.loads(out.stdout)["stats"]["replicas"]}
    for r in (a, b):
        own = reps[r.addr]["ownership"]
        assert own["mode"] == "advisory-locks" and own["advertised"] == r.addr
        assert set(own["partitions"]) == r.owned() and own["partitions_total"] == 64
    text = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "status"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60).stdout
    (line,) = [ln for ln in text.splitlines() if ln.startswith("stats-") and b.addr in ln]
    assert f"1/64 partitions {_part('QB')} as {b.addr}" in line, text


def _part(qid: str) -> int:
    return partition_of(f"{TENANT}:{qid}")


def test_two_replicas_count_as_one_and_survive_the_owners_kill(replicas: list[Replica]) -> None:
    a, b = replicas
    assert len({_part(q) for q in QUEUES}) == 3
    # A is asked first about 1001 (QALL, QA), B about 1002 (QB; QALL is A's: forwarded)
    assert a.send("e0", "1001", 1) == ["QALL", "QA"]
    assert b.send("e1", "1002", 2) == ["QALL", "QB"]
    assert a.owned() == {_part("QALL"), _part("QA")} and b.owned() == {_part("QB")}
    sent = [("1001", 1), ("1002", 2)]
    for i in range(2, 40):  # through either replica, either account: the replies as one process's
        acc = "1001" if i % 3 else "1002"
        via = (a, b)[i % 2]
        assert via.send(f"e{i}", acc, i) == ["QALL", "QA" if acc == "1001" else "QB"]
        sent.append((acc, i))
    for q, want in _expected(sent).items():
        assert a.metrics(q) == want and b.metrics(q) == want, q
        items_a, items_b = (json.loads(r.stub.GetStatQueue(
            common_pb2.TenantID(tenant=TENANT, id=q), timeout=10).json)["SQItems"] for r in (a, b))
        assert items_a == items_b and len(items_a) == want["*sum:~*req.One"], q  # the owner's
    _status_shows_ownership(a, b)

    # a stream through both replicas; kill -9 of A (owner of QALL and QA) in the middle of it.
    # A call to A that fails is sent again to B marked retried, as a client that fails over does.
    acked: list[tuple[str, int]] = []
    errors: list[str] = []
    stop = threading.Event()
    latency: list[float] = []
    failed_over: list[int] = []

    def stream() -> None:
        i = 1000
        while not stop.is_set():
            acc = "1001" if i % 3 else "1002"
            t0 = time.monotonic()
            try:
                try:
                    (a, b)[i % 2].send(f"s{i}", acc, i)
                except grpc.RpcError:
                    failed_over.append(i)
                    b.send(f"s{i}", acc, i, retried=True)
            except grpc.RpcError as exc:
                errors.append(f"s{i}: {exc.details()}")  # type: ignore[attr-defined]
            else:
                acked.append((acc, i))
            latency.append(time.monotonic() - t0)
            i += 1

    worker = threading.Thread(target=stream)
    worker.start()
    time.sleep(1.5)
    os.kill(a.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    before = len(acked)
    takeover = None
    while time.monotonic() - killed < 20:
        if {_part("QALL"), _part("QA")} <= b.owned():
            takeover = time.monotonic() - killed
            break
        time.sleep(0.01)
    time.sleep(1.5)
    stop.set()
    worker.join(timeout=30)
    print(f"\nStatS takeover after kill -9 of the owner: {takeover} s; {len(acked)} events acked in "
          f"the stream ({before} before the kill), {len(failed_over)} sent again to the survivor, "
          f"slowest call {max(latency):.3f} s, errors {errors[:3]}")
    assert takeover is not None and takeover < 5
    assert not errors
    assert before > 10 and len(acked) - before > 10 and failed_over
    for q, want in _expected(sent + acked).items():  # nothing lost, nothing counted twice
        assert b.metrics(q) == want, q
    assert b.owned() >= {_part(q) for q in QUEUES}


def _batch(r: Replica, events: list[tuple[str, str, int]]) -> list[list[str]]:
    """cdre's outbox delivery: one ProcessEvents of (event id, account, value)."""
    req = stats_pb2.StatsProcessEventsRequest(events=[stats_pb2.StatsProcessEventRequest(
        event=event_to_pb(CGREvent(TENANT, eid, None, {"Account": acc, "Value": v, "One": 1})))
        for eid, acc, v in events])
    got = r.stub.ProcessEvents(req, timeout=10)
    assert all(not x.error for x in got.results), got
    return [list(x.ids) for x in got.results]


def test_a_batch_resent_to_the_other_replica_or_after_a_kill_counts_once(
        replicas: list[Replica]) -> None:
    """An outbox batch delivered to A, then again to B (A's answer lost); another delivered to
    A, then to B after kill -9 of A (B takes A's queues over): every event counts once in every
    queue, and new events still count."""
    a, b = replicas
    assert b.send("b0", "1002", 5) == ["QALL", "QB"]  # B owns QALL and QB, A nothing yet
    assert a.send("a0", "1001", 7) == ["QALL", "QA"]  # A takes QA; QALL is forwarded to B
    assert a.owned() == {_part("QA")} and b.owned() == {_part("QALL"), _part("QB")}
    sent = [("1002", 5), ("1001", 7)]

    def batch(lo: int, hi: int) -> list[tuple[str, str, int]]:
        return [(f"cgrid{i}:*default", "1001" if i % 2 else "1002", 10 + i) for i in range(lo, hi)]

    def answer(events: list[tuple[str, str, int]]) -> list[list[str]]:
        return [["QALL", "QA" if acc == "1001" else "QB"] for _, acc, _v in events]

    one, two = batch(0, 12), batch(12, 24)
    assert _batch(a, one) == answer(one)  # A counts QA's, forwards QALL's and QB's to B
    assert _batch(b, one) == answer(one)  # the same answer, counted nowhere again
    sent += [(acc, v) for _, acc, v in one]
    for q, want in _expected(sent).items():
        assert a.metrics(q) == want and b.metrics(q) == want, q

    assert _batch(a, two) == answer(two)
    sent += [(acc, v) for _, acc, v in two]
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait()
    assert _batch(b, two) == answer(two)  # B takes QA over with the ids A had counted
    assert _part("QA") in b.owned()
    for q, want in _expected(sent).items():
        assert b.metrics(q) == want, q
    three = batch(24, 27)
    _batch(b, three + two[:3] + one[:3])  # new events count, old ones do not
    sent += [(acc, v) for _, acc, v in three]
    for q, want in _expected(sent).items():
        assert b.metrics(q) == want, q
