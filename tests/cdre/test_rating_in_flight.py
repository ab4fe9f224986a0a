"""A run whose RALs charge is still in flight: readers never see it half-done, and its
ProcessCDR answers with the rated CDR. Real RALs and cdre on loopback; the link between them is
a real TCP relay that can stall (tests/relay.py)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import grpc

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, rals_pb2, rals_pb2_grpc
from cgrpy.config import load_settings
from cgrpy.event import CGREvent
from cgrpy.runtime.server import ServiceRunner
from cgrpy.storage.db import make_engine
from cgrpy.wire import event_to_pb
from services.cdre.server import CdreServer
from services.cdre.store import CdrFilter, CdrStore
from services.rals.server import RalsServer
from tests.harness import load_tariffplan, serve
from tests.relay import Relay
from tests.suite import free_port

FLAGS = ["*attributes:false", "*chargers:false", "*stats:false", "*thresholds:false"]


def _cdr(origin: str, account: str, request_type: str = "*postpaid") -> cdre_pb2.ProcessCDRRequest:
    ev = CGREvent("cgrates.org", origin, None, {
        "OriginID": origin, "OriginHost": "127.0.0.1", "RequestType": request_type,
        "Account": account, "Destination": "1002", "AnswerTime": "2024-01-15T10:00:00Z", "Usage": "60s",
    })
    return cdre_pb2.ProcessCDRRequest(event=event_to_pb(ev), flags=FLAGS)


async def _wait_pending(db_url: str, origin: str, timeout: float = 10.0) -> None:
    """Until the run's row is reserved (pending), i.e. its debit has been sent to RALs."""
    engine = make_engine(db_url)
    store = CdrStore(engine)
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = await asyncio.to_thread(store.get_stored, CdrFilter(origin_ids=[origin]))
            if rows:
                assert [r.rating_state for r in rows] == ["pending"]
                return
            assert time.monotonic() < deadline, f"{origin} never reserved"
            await asyncio.sleep(0.02)
    finally:
        store.close()
        engine.dispose()


async def _balance(rals: rals_pb2_grpc.RalsServiceStub, account: str) -> Decimal:
    acc = await rals.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account=account))
    return sum((Decimal(b.value) for b in acc.balances), Decimal(0))


async def test_a_run_being_charged_is_not_read_as_unrated(db_url, tmp_path):
    async with serve(RalsServer, db_url) as rals, Relay(rals.addr) as relay, serve(
            CdreServer, db_url, tariffplan=None,
            # the relay stands in front of RALs's gRPC port: calls must not take the frame lane,
            # which a client dials at the lane port of the host it reached (around the relay)
            env={"CGRPY_RALS_ADDR": relay.addr, "CGRPY_RPC_TIMEOUT": "10s", "CGRPY_RPC_TRANSPORT": "mux",
                 "CGRPY_CDRE_EXPORT_PATH": str(tmp_path)}) as cdre:
        stub = cdre_pb2_grpc.CdrServiceStub(cdre.channel)
        await stub.ProcessCDR(_cdr("warm-1", "1002"))  # cdre's channel to RALs is up
        relay.hold()  # RALs slow to answer (a loaded machine): the debit stays in flight
        charging = asyncio.ensure_future(stub.ProcessCDR(_cdr("held-1", "1001")))
        await _wait_pending(db_url, "held-1")
        flt = cdre_pb2.CDRFilter(origin_ids=["held-1"])
        assert list((await stub.GetCDRs(flt)).cdrs) == []
        assert (await stub.CountCDRs(flt)).count == 0
        export = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(filter=flt, format="*dry_run"))
        assert export.total_records == 0
        assert not charging.done()
        relay.release()
        resp = await charging
        assert [(c.run_id, c.cost) for c in resp.cdrs] == [("*default", "0.6")]
        assert [c.cost for c in (await stub.GetCDRs(flt)).cdrs] == ["0.6"]
        assert (await stub.CountCDRs(flt)).count == 1
        assert await _balance(rals_pb2_grpc.RalsServiceStub(rals.channel), "1001") == Decimal("9.4")


async def test_rals_back_within_the_deadline_answers_rated_cdrs(sqlite_url):
    """RALs restarting when CDRs arrive: nothing listens at its address for a moment. Within the
    ProcessCDR's deadline cdre tries again, and answers with the rated CDRs (a Debit and a
    GetCost), not "retry later" with the runs left pending for the 60 s sweep."""
    await asyncio.to_thread(load_tariffplan, sqlite_url, "tutorial")
    port = free_port()
    async with serve(CdreServer, sqlite_url, tariffplan=None,
                     env={"CGRPY_RALS_ADDR": f"127.0.0.1:{port}"}) as cdre:
        stub = cdre_pb2_grpc.CdrServiceStub(cdre.channel)
        postpaid = asyncio.ensure_future(stub.ProcessCDR(_cdr("late-1", "1001"), timeout=15))
        rated = asyncio.ensure_future(stub.ProcessCDR(_cdr("late-2", "1001", "*rated"), timeout=15))
        await asyncio.sleep(0.8)  # longer than the client's own quick retries
        assert not postpaid.done() and not rated.done()
        rals = ServiceRunner(RalsServer(load_settings(env={"CGRPY_STORDB_URL": sqlite_url})),
                             grpc_port=port, metrics_port=-1)
        await rals.start()
        try:
            assert [(c.run_id, c.cost) for c in (await postpaid).cdrs] == [("*default", "0.6")]
            assert [(c.run_id, c.cost) for c in (await rated).cdrs] == [("*default", "0.6")]
            got = await stub.GetCDRs(cdre_pb2.CDRFilter(origin_ids=["late-1", "late-2"]))
            assert sorted((c.origin_id, c.cost) for c in got.cdrs) == [("late-1", "0.6"), ("late-2", "0.6")]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                ralss = rals_pb2_grpc.RalsServiceStub(ch)
                # the postpaid run charged once; the *rated one only priced
                assert await _balance(ralss, "1001") == Decimal("9.4")
        finally:
            await rals.stop(grace=0.5)
