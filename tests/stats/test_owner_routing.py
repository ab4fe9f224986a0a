"""Clients route StatS events to the replica owning the queues they update: two real StatS
processes on one Postgres, tenant t1's queues owned by A and t2's by B; the forwards each replica
makes (``cgrpy_partition_forwards_total``, from their /metrics) are counted. A client taking the
replicas in turn has about half its events forwarded (measured and printed); cdre's and SM's
clients (single events and cdre's outbox batches mixing both tenants) have none, and every
queue counts exactly what it was sent."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cgrates.v1 import common_pb2, stats_pb2, stats_pb2_grpc
from cgrpy.config import load_settings
from cgrpy.event import CGREvent
from cgrpy.runtime import balance, owner_routes
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.partitions import partition_of
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.storage.tariffplans import replace_tariffplan
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.wire import event_to_pb
from services.cdre.clients import GrpcBackends as CdreBackends
from services.sm.clients import GrpcBackends as SmBackends
from tests.stats.test_partitioned import HEADER, _start, _wait_serving
from tests.suite import free_ports

TENANTS = ("t1.org", "t2.org")
# QX counts every event of its tenant, QY the events of 1001
QUEUES = {"QX": "", "QY": "*string:~*req.Account:1001"}


def _plan(db_url: str, tmp: Path) -> None:
    rows = [f"{t},{q},{flt},,0,,0,*sum:~*req.Value;*sum:~*req.One,,true,false,10,*none"
            for t in TENANTS for q, flt in QUEUES.items()]
    (tmp / "Stats.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        replace_tariffplan(engine, "cgrpy", read_folder(tmp), source="test")
    finally:
        engine.dispose()


class Proc:
    def __init__(self, grpc_port: int, metrics_port: int, db_url: str) -> None:
        self.addr = f"127.0.0.1:{grpc_port}"
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.proc = _start(db_url, grpc_port, metrics_port)

    def forwards(self) -> int:
        text = urllib.request.urlopen(self.metrics_url, timeout=5).read().decode()
        m = re.search(r'^cgrpy_partition_forwards_total\{service="stats"\} ([0-9.e+]+)$', text, re.M)
        return int(float(m.group(1))) if m else 0


@pytest.fixture
def two(pg_url: str, tmp_path: Path) -> Iterator[list[Proc]]:
    _plan(pg_url, tmp_path)
    ga, ma, gb, mb = free_ports(4)
    out = [Proc(ga, ma, pg_url), Proc(gb, mb, pg_url)]
    try:
        for p in out:
            _wait_serving(p.addr, p.proc)
        yield out
    finally:
        for p in out:
            if p.proc.poll() is None:
                p.proc.kill()
            p.proc.wait()


def _ev(tenant: str, eid: str, account: str, value: int) -> CGREvent:
    return CGREvent(tenant, eid, None, {"Account": account, "Value": value, "One": 1})


async def _direct(settings, addr: str, method: str, req):
    one = ServiceClient(settings, "stats", stats_pb2_grpc.StatsServiceStub, addr=addr)
    try:
        return await one.call(method, req)
    finally:
        await one.close()


def _forwards(two: list[Proc]) -> int:
    return sum(p.forwards() for p in two)


async def _until(cond, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_clients_send_each_event_to_the_owner_of_its_queues(two: list[Proc], monkeypatch) -> None:
    a, b = two
    assert len({partition_of(f"{t}:{q}") for t in TENANTS for q in QUEUES}) == 4
    settings = load_settings(env={"CGRPY_STATS_ADDR": f"{a.addr},{b.addr}"})
    sent: list[tuple[str, str, int]] = []
    # A is asked first about t1 (takes QX, QY of t1), B about t2
    for p, tenant in ((a, "t1.org"), (b, "t2.org")):
        ev = _ev(tenant, f"warm-{tenant}", "1001", 1)
        await _direct(settings, p.addr, "ProcessEvent", stats_pb2.StatsProcessEventRequest(event=event_to_pb(ev)))
        sent.append((tenant, "1001", 1))
    assert _forwards(two) == 0

    # the old way: a client taking the replicas in turn; half the events take the hop
    plain = ServiceClient(settings, "stats", stats_pb2_grpc.StatsServiceStub)
    try:
        for i in range(20):
            tenant, acc = TENANTS[(i // 2) % 2], ("1001", "1002")[i % 3 == 0]
            await plain.call("ProcessEvent", stats_pb2.StatsProcessEventRequest(
                event=event_to_pb(_ev(tenant, f"plain{i}", acc, i))))
            sent.append((tenant, acc, i))
    finally:
        await plain.close()
    plain_fwd = _forwards(two)
    print(f"\nStatS, two replicas, a client taking them in turn: {plain_fwd}/20 events forwarded")
    assert plain_fwd >= 5

    monkeypatch.setattr(balance, "OWNERS_REFRESH_S", 0.1)
    monkeypatch.setattr(owner_routes, "REFRESH_S", 0.1)
    cdre, sm = CdreBackends(settings), SmBackends(settings)
    try:
        await _warm(cdre, sm, sent)
        monkeypatch.setattr(balance, "OWNERS_REFRESH_S", 1000.0)
        before = _forwards(two)
        for i in range(20):  # single events through cdre's and SM's clients
            tenant, acc = TENANTS[(i // 2) % 2], ("1001", "1002")[i % 3 == 0]
            ev = _ev(tenant, f"single{i}", acc, 100 + i)
            await (cdre.stats_process_event(ev) if i % 2 else sm.stats_process_event(ev))
            sent.append((tenant, acc, 100 + i))
        for n in range(3):  # cdre's outbox: batches mixing both tenants
            batch = [_ev(TENANTS[i % 2], f"batch{n}-{i}", ("1001", "1002")[i % 3 == 0], 1000 + i)
                     for i in range(12)]
            await cdre.stats_process_events(batch)
            sent += [(e.tenant, e.event["Account"], e.event["Value"]) for e in batch]
        routed_fwd = _forwards(two) - before
        print(f"StatS, cdre's and SM's clients routing to owners: {routed_fwd}/56 events forwarded")
        assert routed_fwd == 0
        await _check_counts(settings, a.addr, sent)
    finally:
        await cdre.close()
        await sm.close()


async def _warm(cdre: CdreBackends, sm: SmBackends, sent: list[tuple[str, str, int]]) -> None:
    """One event per tenant through each client (which looks the tenant's queues up), then
    wait until both know every queue's owner (a client that does not route never does: then
    the forwards counted after show it)."""
    for tenant in TENANTS:
        for c, eid in ((cdre, f"cw-{tenant}"), (sm, f"sw-{tenant}")):
            await c.stats_process_event(_ev(tenant, eid, "1002", 0))
            sent.append((tenant, "1002", 0))
    stats_client = cdre._client("stats")  # noqa: SLF001

    def known() -> bool:
        routes = [getattr(c, "stat_routes", None) for c in (cdre, sm)]
        return None not in routes and all(
            stats_client.balancer.owner(routes[0].route(t)) is not None
            and sm.stats.balancer.owner(routes[1].route(t)) is not None for t in TENANTS)
    await _until(known)


async def _check_counts(settings, addr: str, sent: list[tuple[str, str, int]]) -> None:
    for tenant in TENANTS:
        mine = [(acc, v) for t, acc, v in sent if t == tenant]
        want = {"QX": mine, "QY": [(acc, v) for acc, v in mine if acc == "1001"]}
        for q, evs in want.items():
            got = await _direct(settings, addr, "GetQueueFloatMetrics", common_pb2.TenantID(tenant=tenant, id=q))
            assert {k: Decimal(v) for k, v in got.metrics.items()} == {
                "*sum:~*req.Value": Decimal(sum(v for _, v in evs)), "*sum:~*req.One": Decimal(len(evs))}, (tenant, q)
