"""SM hands CDRs straight to cdre and spools only what cdre did not store (services/sm/cdrsend.py).
Real RALs, AttributeS, ChargerS, cdre and SM on loopback, on a Postgres StorDB of the test's own
(the shared ``sm_cdr_spool``); the CDRs are OpenSIPS's ProcessCDR of a *postpaid call through SM's
SessionService, rated and debited by cdre. The links SM -> cdre and cdre -> RALs are real TCP
relays (tests/relay.py): cdre is slowed by holding its RALs link, as on a loaded machine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

from cgrates.v1 import rals_pb2, rals_pb2_grpc, sm_pb2, sm_pb2_grpc
from cgrpy.config import load_settings
from cgrpy.event import CGREvent
from cgrpy.runtime.server import ServiceRunner
from cgrpy.storage.db import make_engine
from cgrpy.wire import event_to_pb
from services.attributes.server import AttributesServer
from services.cdre.server import CdreServer
from services.chargers.server import ChargersServer
from services.rals.server import RalsServer
from services.sm.cdrsend import CdrSender
from services.sm.server import SmServer
from tests.harness import Served, serve
from tests.provisioning.common import addrs
from tests.relay import Relay
from tests.suite import free_port

DIRECT_TIMEOUT = "800ms"  # long enough that a loaded machine still stores the normal path directly
RAW = ("*raw", "-1", "rated")  # the tutorial's *raw run (RequestType *none): not rated


@dataclass
class Stack:
    db: Engine
    rals: rals_pb2_grpc.RalsServiceStub
    sm: sm_pb2_grpc.SessionServiceStub
    sender: CdrSender
    rals_link: Relay  # cdre -> RALs
    cdre_link: Relay | None  # SM -> cdre
    spool_base: int = 0  # spool rows inserted before the CDR under test (see _warm)


def _cdr(origin: str) -> sm_pb2.SessionRequest:
    ev = CGREvent(tenant="cgrates.org", id=origin, event={
        "OriginID": origin, "OriginHost": "127.0.0.1", "RequestType": "*postpaid", "ToR": "*voice",
        "Account": "1001", "Subject": "1001", "Destination": "1002", "Category": "call",
        "SetupTime": "2014-08-04T13:00:00Z", "AnswerTime": "2014-08-04T13:00:00Z", "Usage": "60s",
    })
    return sm_pb2.SessionRequest(event=event_to_pb(ev))


def _spool_inserts(db: Engine) -> int:
    """Rows ever inserted into sm_cdr_spool (its id sequence), delivered ones included."""
    with db.connect() as c:
        seq = c.execute(text("SELECT pg_get_serial_sequence('sm_cdr_spool', 'id')")).scalar_one()
        last, called = c.execute(text(f"SELECT last_value, is_called FROM {seq}")).one()
        return int(last) if called else 0


def _spool_rows(db: Engine) -> int:
    with db.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM sm_cdr_spool")).scalar_one())


def _cdrs(db: Engine, origin: str) -> list[tuple[str, str | None, str]]:
    with db.connect() as c:
        return [tuple(r) for r in c.execute(text(
            "SELECT run_id, cost::text, rating_state FROM cdrs WHERE origin_id = :o ORDER BY run_id"),
            {"o": origin})]


async def _balance(rals: rals_pb2_grpc.RalsServiceStub) -> Decimal:
    acc = await rals.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1001"))
    return sum((Decimal(b.value) for b in acc.balances), Decimal(0))


async def _eventually(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


async def _warm(st: Stack) -> None:
    """A first CDR through every link. On a loaded machine it may miss the direct deadline and be
    spooled: wait until the spool delivered it and any late copy reached cdre, then count from
    zero, so the checks after it see only the CDR under test."""
    await st.sm.ProcessCDR(_cdr("warm-1"))
    await _eventually(lambda: _spool_rows(st.db) == 0 and len(_cdrs(st.db, "warm-1")) == 2)
    await asyncio.sleep(0.5)
    st.sender.counts = dict.fromkeys(st.sender.counts, 0)
    st.spool_base = _spool_inserts(st.db)


def _sm_env(tmp: Path, cdre_addr: str, **running: str) -> dict[str, str]:
    return {**addrs(cdre=cdre_addr, **running), "CGRPY_SM_SPOOL_PATH": str(tmp / "spool.sqlite"),
            "CGRPY_SM_CDR_DIRECT_TIMEOUT": DIRECT_TIMEOUT,
            # the relay stands in front of cdre's gRPC port: no frame lane around it
            "CGRPY_RPC_TRANSPORT": "mux",
            "CGRPY_OPENSIPS_LISTEN": "127.0.0.1:0", "CGRPY_OPENSIPS_EVENT_LISTEN": "127.0.0.1:0",
            "CGRPY_JSONRPC_LISTEN": "127.0.0.1:0", "CGRPY_HTTP_LISTEN": "127.0.0.1:0"}


@asynccontextmanager
async def _cdre_on(db_url: str, port: int, env: dict[str, str]) -> AsyncIterator[None]:
    """cdre on a fixed port (it comes up where SM already looks for it)."""
    settings = load_settings(env={"CGRPY_STORDB_URL": db_url, **env})
    runner = ServiceRunner(CdreServer(settings), grpc_port=port, metrics_port=-1)
    await runner.start()
    try:
        yield
    finally:
        await runner.stop(grace=0.5)


@asynccontextmanager
async def _stack(db_url: str, tmp: Path, *, cdre_up: bool = True) -> AsyncIterator[tuple[Stack, Served, dict]]:
    async with AsyncExitStack() as es:
        rals = await es.enter_async_context(serve(RalsServer, db_url))
        link = await es.enter_async_context(Relay(rals.addr))
        attrs = await es.enter_async_context(serve(AttributesServer, db_url, tariffplan=None))
        ch = await es.enter_async_context(serve(ChargersServer, db_url, tariffplan=None,
                                                env=addrs(attributes=attrs.addr)))
        cdre_env = {**addrs(rals=link.addr, attributes=attrs.addr, chargers=ch.addr),
                    "CGRPY_RPC_TRANSPORT": "mux", "CGRPY_RPC_TIMEOUT": "10s"}
        port = free_port()
        cdre_addr, cdre_link = f"127.0.0.1:{port}", None
        if cdre_up:
            await es.enter_async_context(_cdre_on(db_url, port, cdre_env))
            cdre_link = await es.enter_async_context(Relay(cdre_addr))
            cdre_addr = cdre_link.addr
        sm = await es.enter_async_context(serve(SmServer, db_url, tariffplan=None, env=_sm_env(
            tmp, cdre_addr, rals=rals.addr, attributes=attrs.addr, chargers=ch.addr)))
        db = make_engine(db_url)
        es.callback(db.dispose)
        service = sm.runner.service
        assert isinstance(service, SmServer) and service.backends is not None
        sender = service.backends.sender
        assert sender is not None and sender.timeout_s == 0.8
        stack = Stack(db, rals_pb2_grpc.RalsServiceStub(rals.channel),
                      sm_pb2_grpc.SessionServiceStub(sm.channel), sender, link, cdre_link)
        yield stack, sm, {"port": port, "env": cdre_env}


async def test_cdrs_stored_by_cdre_directly_touch_no_spool(pg_url, tmp_path) -> None:
    async with _stack(pg_url, tmp_path) as (st, _sm, _):
        before = await _balance(st.rals)
        t0 = time.monotonic()
        # calls ending together: their CDRs go in one ProcessCDRs
        await asyncio.gather(*(st.sm.ProcessCDR(_cdr(f"direct-{i}")) for i in range(6)))
        assert time.monotonic() - t0 < 2.0
        for i in range(6):  # stored when SM answered: no waiting
            assert _cdrs(st.db, f"direct-{i}") == [("*default", "0.6", "rated"), RAW]
        assert st.sender.counts == {"direct": 6, "spooled": 0}
        assert REGISTRY.get_sample_value("cgrpy_sm_cdrs_total", {"path": "direct"}) == 6
        assert REGISTRY.get_sample_value("cgrpy_sm_cdrs_total", {"path": "spooled"}) == 0
        assert _spool_inserts(st.db) == 0
        assert await _balance(st.rals) == before - Decimal("3.6")


async def test_a_cdr_cdre_refuses_is_spooled_and_kept_as_before(pg_url, tmp_path) -> None:
    """cdre refuses one CDR of a batch (a bad field): that one goes to the spool, whose forwarder
    keeps offering it as it always did (OpenSIPS has its OK: the CDR is kept, never dropped); the
    others of the batch are stored directly."""
    async with _stack(pg_url, tmp_path) as (st, _sm, _):
        bad = _cdr("bad-1")
        bad.event.fields["Usage"].string_value = "soon"
        errors = _processed("error")
        await asyncio.gather(st.sm.ProcessCDR(bad), st.sm.ProcessCDR(_cdr("good-1")))
        assert st.sender.counts == {"direct": 1, "spooled": 1}
        assert _cdrs(st.db, "good-1") == [("*default", "0.6", "rated"), RAW]
        await asyncio.sleep(1.0)  # the forwarder tried it: refused again, kept
        assert _spool_rows(st.db) == 1 and _cdrs(st.db, "bad-1") == []
        assert _processed("error") - errors >= 2  # refused directly, then from the spool


async def test_cdre_down_spools_and_the_spool_delivers_once(pg_url, tmp_path) -> None:
    async with _stack(pg_url, tmp_path, cdre_up=False) as (st, _sm, cdre):
        before = await _balance(st.rals)
        t0 = time.monotonic()
        await st.sm.ProcessCDR(_cdr("down-1"))  # OK: committed in the spool
        assert time.monotonic() - t0 < 2.0
        assert st.sender.counts == {"direct": 0, "spooled": 1}
        assert _spool_inserts(st.db) == 1 and _cdrs(st.db, "down-1") == []
        async with _cdre_on(pg_url, cdre["port"], cdre["env"]):
            await _eventually(lambda: _spool_rows(st.db) == 0 and len(_cdrs(st.db, "down-1")) == 2)
            await asyncio.sleep(0.5)  # nothing more comes
            assert _cdrs(st.db, "down-1") == [("*default", "0.6", "rated"), RAW]
            assert await _balance(st.rals) == before - Decimal("0.6")
            # cdre back: the next CDR goes straight to it again
            await st.sm.ProcessCDR(_cdr("down-2"))
            assert st.sender.counts == {"direct": 1, "spooled": 1}
            assert _spool_inserts(st.db) == 1


async def test_cdre_slower_than_the_direct_deadline_spools_and_stores_once(pg_url, tmp_path) -> None:
    """cdre reserved the run and is debiting it when SM's direct try ends (cdre itself answers
    "not stored" once the caller's deadline is near): SM spools the CDR and answers; the spool
    delivers it again while (and after) cdre finishes the first. One CDR per run, one debit."""
    async with _stack(pg_url, tmp_path) as (st, _sm, _):
        await _warm(st)  # every link is up
        before = await _balance(st.rals)
        st.rals_link.hold()  # RALs answers cdre late
        t0 = time.monotonic()
        await st.sm.ProcessCDR(_cdr("slow-1"))
        assert time.monotonic() - t0 < 2.0  # within the reply deadline
        assert st.sender.counts == {"direct": 0, "spooled": 1}
        assert _spool_inserts(st.db) - st.spool_base == 1
        await asyncio.sleep(1.0)  # the spool's deliveries reach cdre while the debit is held
        st.rals_link.release()
        await _settled(st, "slow-1", before)


async def test_a_stalled_link_to_cdre_past_the_deadline_spools_and_stores_once(pg_url, tmp_path) -> None:
    """SM's request reaches cdre only after SM's direct deadline (the link stalls): SM answers
    after spooling, and cdre then gets the CDR twice, the late request and the spool's delivery:
    one CDR per run, one debit."""
    async with _stack(pg_url, tmp_path) as (st, _sm, _):
        await _warm(st)
        before = await _balance(st.rals)
        assert st.cdre_link is not None
        st.cdre_link.hold()
        t0 = time.monotonic()
        await st.sm.ProcessCDR(_cdr("stalled-1"))
        took = time.monotonic() - t0
        assert 0.7 <= took < 2.0, took  # SM's own deadline ended the try; answered in time
        assert st.sender.counts == {"direct": 0, "spooled": 1}
        assert _spool_inserts(st.db) - st.spool_base == 1 and _cdrs(st.db, "stalled-1") == []
        await asyncio.sleep(0.5)
        dups = _processed("duplicate")
        st.cdre_link.release()
        await _settled(st, "stalled-1", before)
        assert _processed("duplicate") - dups == 2  # both runs came twice (late, then spooled): stored once


def _processed(result: str) -> float:
    """cdre's count of CDR runs by result (duplicate: given again, answered from what it had)."""
    return REGISTRY.get_sample_value("cgrpy_cdrs_processed_total", {"result": result}) or 0.0


async def _settled(st: Stack, origin: str, before: Decimal) -> None:
    """The spool drained, the CDR stored rated once per run, the account debited once."""
    await _eventually(lambda: _spool_rows(st.db) == 0 and len(rows := _cdrs(st.db, origin)) == 2
                      and all(r[2] == "rated" for r in rows))
    await asyncio.sleep(0.5)  # nothing more comes
    assert _cdrs(st.db, origin) == [("*default", "0.6", "rated"), RAW]
    assert await _balance(st.rals) == before - Decimal("0.6")


@pytest.mark.parametrize("reply_timeout", ["2s", "400ms"])
async def test_the_direct_deadline_leaves_the_spool_half_the_reply_deadline(reply_timeout) -> None:
    from services.sm.clients import GrpcBackends

    class _Spool:
        async def aput(self, event: CGREvent, flags: dict[str, bool]) -> int:
            return 1

    s = load_settings(env={"CGRPY_SM_REPLY_TIMEOUT": reply_timeout, "CGRPY_SM_CDR_DIRECT_TIMEOUT": "500ms"})
    b = GrpcBackends(s, _Spool())  # type: ignore[arg-type]
    assert b.sender is not None
    assert b.sender.timeout_s == (0.5 if reply_timeout == "2s" else 0.2)
    off = GrpcBackends(load_settings(env={"CGRPY_SM_CDR_DIRECT_TIMEOUT": "0s"}), _Spool())  # type: ignore[arg-type]
    assert off.sender is None  # 0s: every CDR through the spool, as before
    await b.close()
    await off.close()

