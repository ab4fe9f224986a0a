"""Clients route ThresholdS events to the replica owning the thresholds they hit: two real
ThresholdS processes on one Postgres, tenant t1's thresholds owned by A and t2's by B. StatS's
client (StatUpdates naming their thresholds, alone and in batches), cdre's (outbox batches mixing
both tenants) and SM's (single events) make the replicas forward nothing
(``cgrpy_partition_forwards_total``), and every threshold counts exactly what it was sent."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cgrates.v1 import common_pb2, thresholds_pb2, thresholds_pb2_grpc
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
from services.stats.clients import ThresholdSClient
from tests.suite import free_ports
from tests.thresholds.test_partitioned import HEADER, _start, _wait_serving

TENANTS = ("t1.org", "t2.org")
# TX counts every event of its tenant, TY the events of 1001
THRESHOLDS = {"TX": "", "TY": "*string:~*req.Account:1001"}


def _plan(db_url: str, tmp: Path) -> None:
    rows = [f"{t},{th},{flt},,-1,0,0,false,10,,false" for t in TENANTS for th, flt in THRESHOLDS.items()]
    (tmp / "Thresholds.csv").write_text("\n".join([HEADER, *rows]) + "\n")
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
        m = re.search(r'^cgrpy_partition_forwards_total\{service="thresholds"\} ([0-9.e+]+)$', text, re.M)
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


def _ev(tenant: str, eid: str, account: str) -> CGREvent:
    return CGREvent(tenant, eid, None, {"Account": account})


async def _direct(settings, addr: str, method: str, req):
    one = ServiceClient(settings, "thresholds", thresholds_pb2_grpc.ThresholdsServiceStub, addr=addr)
    try:
        return await one.call(method, req)
    finally:
        await one.close()


async def _until(cond, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_clients_send_each_event_to_the_owner_of_its_thresholds(two: list[Proc], monkeypatch) -> None:
    a, b = two
    assert len({partition_of(f"{t}:{th}") for t in TENANTS for th in THRESHOLDS}) == 4
    settings = load_settings(env={"CGRPY_THRESHOLDS_ADDR": f"{a.addr},{b.addr}"})
    sent: list[tuple[str, str]] = []
    for p, tenant in ((a, "t1.org"), (b, "t2.org")):  # A takes t1's thresholds, B t2's
        await _direct(settings, p.addr, "ProcessEvent", thresholds_pb2.ThresholdsProcessEventRequest(
            event=event_to_pb(_ev(tenant, f"warm-{tenant}", "1001"))))
        sent.append((tenant, "1001"))
    monkeypatch.setattr(balance, "OWNERS_REFRESH_S", 0.1)
    monkeypatch.setattr(owner_routes, "REFRESH_S", 0.1)
    stats, cdre, sm = ThresholdSClient(settings), CdreBackends(settings), SmBackends(settings)
    try:
        for tenant in TENANTS:  # each client looks the tenant's thresholds up
            await cdre.thresholds_process_event(_ev(tenant, f"cw-{tenant}", "1002"))
            await sm.thresholds_process_event(_ev(tenant, f"sw-{tenant}", "1002"))
            sent += [(tenant, "1002")] * 2
        t_client = cdre._client("thresholds")  # noqa: SLF001

        def known() -> bool:
            routes = [getattr(c, "threshold_routes", None) for c in (cdre, sm)]
            return None not in routes and all(
                t_client.balancer.owner(routes[0].route(t)) is not None
                and sm.thresholds.balancer.owner(routes[1].route(t)) is not None
                and stats.client.balancer.owner(f"{t}:TX") is not None for t in TENANTS)
        await _until(known)
        monkeypatch.setattr(balance, "OWNERS_REFRESH_S", 1000.0)
        before = sum(p.forwards() for p in two)
        sent += await _send_through_every_client(stats, cdre, sm)
        forwarded = sum(p.forwards() for p in two) - before
        print(f"\nThresholdS, StatS's, cdre's and SM's clients routing to owners: {forwarded} forwarded")
        assert forwarded == 0
    finally:
        await stats.close()
        await cdre.close()
        await sm.close()
    for tenant in TENANTS:
        mine = [acc for t, acc in sent if t == tenant]
        for th, want in (("TX", len(mine)), ("TY", mine.count("1001"))):
            got = await _direct(settings, a.addr, "GetThreshold", common_pb2.TenantID(tenant=tenant, id=th))
            assert json.loads(got.json)["Hits"] == want, (tenant, th)


async def _send_through_every_client(stats: ThresholdSClient, cdre: CdreBackends,
                                     sm: SmBackends) -> list[tuple[str, str]]:
    sent: list[tuple[str, str]] = []
    for i in range(12):
        tenant, acc = TENANTS[(i // 2) % 2], ("1001", "1002")[i % 3 == 0]
        ev = _ev(tenant, f"single{i}", acc)
        if i % 3 == 0:  # a StatUpdate names its thresholds
            await stats.process_event(ev, ["TX", "TY"] if acc == "1001" else ["TX"])
        else:
            await (cdre.thresholds_process_event(ev) if i % 2 else sm.thresholds_process_event(ev))
        sent.append((tenant, acc))
    batch = [_ev(TENANTS[i % 2], f"batch-{i}", ("1001", "1002")[i % 3 == 0]) for i in range(12)]
    await cdre.thresholds_process_events(batch)
    named = [_ev(TENANTS[i % 2], f"named-{i}", "1002") for i in range(6)]
    await stats.process_events([(e, ["TX"]) for e in named])
    return sent + [(e.tenant, e.event["Account"]) for e in batch + named]
