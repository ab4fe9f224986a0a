"""SM replicas on one Postgres StorDB: sessions in ``sm_sessions``, one owner each, adopted when
their owner dies (real Postgres, the owners' advisory locks; RALs is the in-memory fake that
applies a request id once, as RALs does)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import Engine, make_url, select, text

from cgrpy.event import CGREvent
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.storage.models.sm import SmSession
from services.sm.adoption import Adopter
from services.sm.owners import OwnerLease, new_owner
from services.sm.sessions.core import SessionManager, SMConfig
from services.sm.sessions.types import SessionFlags
from services.sm.sqlstore import SqlSessionStore
from tests.sm.fakes import FakeBackends

MS = 1_000_000
ORIGIN = ("call-1@h", "127.0.0.1")


def _event(**extra: object) -> CGREvent:
    fields = {"OriginID": ORIGIN[0], "OriginHost": ORIGIN[1], "RequestType": "*prepaid",
              "Account": "1001", "Destination": "1002", "AnswerTime": "1795677153",
              "DialogID": 515806928, "DialogEntry": 1891}
    fields.update(extra)
    return CGREvent(event=fields)


@dataclass
class Replica:
    sm: SessionManager
    store: SqlSessionStore
    lease: OwnerLease
    adopter: Adopter
    lost: list[int]

    async def die(self) -> None:
        """What SIGKILL leaves: the rows as last written, the owner lock gone with its connection.
        Postgres frees the lock when the backend has exited, a moment after the client closed:
        on a loaded machine a survivor that looked at once could still see it held."""
        await self.sm.shutdown()
        await self.adopter.close()
        self.store.close()
        pid = self.lease._conn.info.backend_pid if self.lease._conn is not None else None
        self.lease.close()
        if pid is not None:
            await _backend_gone(self.store, pid)


async def _backend_gone(store: SqlSessionStore, pid: int, timeout_s: float = 10.0) -> None:
    eng = store.engine
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with eng.connect() as c:
            if c.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).first() is None:
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the dead replica's Postgres backend {pid} is still there after {timeout_s} s")


@pytest.fixture
def engine(pg_url: str) -> Iterator[tuple[Engine, str]]:
    upgrade(pg_url)
    eng = make_engine(pg_url)
    yield eng, make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    eng.dispose()


def _replica(engine: tuple[Engine, str], fb: FakeBackends, name: str, heartbeat_s: float = 0.1) -> Replica:
    eng, conninfo = engine
    lost: list[int] = []
    lease = OwnerLease(conninfo, new_owner(name), on_lost=lambda: lost.append(1), heartbeat_s=heartbeat_s)
    lease.acquire()
    store = SqlSessionStore(eng, lease.owner)
    sm = SessionManager(fb, SMConfig(debit_interval_ns=100 * MS, reply_deadline_s=2.0), store=store)
    adopter = Adopter(sm, store, lease, on_adopted=lambda _a: None)
    sm.on_unknown = adopter.missing
    return Replica(sm, store, lease, adopter, lost)


def _owners(eng: Engine) -> list[str]:
    with eng.connect() as c:
        return [r[0] for r in c.execute(select(SmSession.__table__.c.owner))]


async def test_a_dead_replicas_call_is_adopted_charged_on_and_terminated_once(engine) -> None:
    fb = FakeBackends()  # 0.01 per 10 ms increment, balance 100
    a, b = _replica(engine, fb, "a:2014"), _replica(engine, fb, "b:2114")
    assert (await a.sm.initiate(_event(), SessionFlags())).error is None
    await asyncio.sleep(0.25)  # debits at 0, 100, 200 ms
    assert a.store.flush()
    assert await b.adopter.sweep() == 0  # A lives: nothing to adopt
    await a.die()
    charged = fb.balances["1001"]
    assert charged <= Decimal("99.70")

    assert await b.adopter.sweep() == 1
    assert _owners(engine[0]) == [b.lease.owner]
    (s,) = b.sm.awaiting_switch()
    await b.sm.confirm_restored({ORIGIN})  # the switch still has the call: charging resumes
    await asyncio.sleep(0.25)
    assert fb.balances["1001"] < charged  # B's debit loop goes on where A's stopped
    assert await b.sm.terminate(_event(Usage="700ms")) is None
    assert fb.balances["1001"] == Decimal("99.30")  # 700 ms, exactly once across both replicas
    ids = [rid for rid, _ in fb.debit_calls]
    assert len(ids) == len(set(ids))  # no debit key charged twice
    assert b.store.flush()
    with engine[0].connect() as c:
        assert c.execute(text("SELECT closed FROM sm_sessions")).scalar_one() is True
    await b.die()


async def test_terminate_sent_to_the_survivor_right_after_the_kill_finds_the_session(engine) -> None:
    """OpenSIPS fails over at once: the Terminate reaches B before any periodic sweep ran."""
    fb = FakeBackends()
    a, b = _replica(engine, fb, "a:2014"), _replica(engine, fb, "b:2114")
    await a.sm.initiate(_event(), SessionFlags())
    await asyncio.sleep(0.05)
    a.store.flush()
    await a.die()
    assert await b.sm.terminate(_event(Usage="150ms")) is None  # adopted on demand, not one-shot
    assert fb.balances["1001"] == Decimal("99.85")
    assert b.adopter.adopted == 1
    assert await b.sm.process_cdr(_event(Usage="150ms")) is None
    await asyncio.sleep(0.05)
    assert len(fb.cdrs) == 1  # the adopted session's CDR, posted once
    await b.die()


async def test_two_survivors_adopt_a_dead_owner_once_and_fence_it(engine) -> None:
    fb = FakeBackends()
    # A's heartbeat is slow: the survivors look while A is cut off, before it could reconnect
    a = _replica(engine, fb, "a:2014", heartbeat_s=1.0)
    b, c = (_replica(engine, fb, n) for n in ("b:2114", "c:2214"))
    await a.sm.initiate(_event(), SessionFlags())
    assert a.store.flush()
    a.lease._conn.close()  # A is cut off from Postgres (not dead): its lock is free meanwhile
    got = await asyncio.gather(b.adopter.sweep(), c.adopter.sweep())
    assert sorted(got) == [0, 1]
    await asyncio.sleep(1.5)  # A's heartbeat reconnects, finds its lock held: it must stop
    assert a.lost == [1]
    # and a late write of A's changes nothing of what the adopter owns
    (s,) = a.sm.active_sessions()
    a.store.save(s)
    a.store.save_progress(s, closed=True)
    assert a.store.flush()
    adopter = b if got[0] else c
    assert _owners(engine[0]) == [adopter.lease.owner]
    with engine[0].connect() as conn:
        assert conn.execute(text("SELECT closed FROM sm_sessions")).scalar_one() is False
    for r in (a, b, c):
        await r.die()


async def test_a_terminate_sent_to_a_replica_not_charging_the_call_goes_to_its_owner(engine) -> None:
    """OpenSIPS went back to a restarted engine: the call's Terminate and ProcessCDR reach B while
    A, alive, charges it. B must not charge it one-shot: it passes both to A over SessionService."""
    import grpc

    from cgrates.v1 import sm_pb2_grpc
    from cgrpy.config import load_settings
    from services.sm.forward import OwnerForwarder
    from services.sm.server import SessionServicer
    from tests.suite import free_port

    fb = FakeBackends()
    port = free_port()
    a, b = _replica(engine, fb, f"127.0.0.1:{port}"), _replica(engine, fb, "127.0.0.1:1")
    settings = load_settings(env={"CGRPY_API_TOKEN_FILE": ""})
    server = grpc.aio.server()
    holder = type("Owner", (), {"sm": a.sm, "settings": settings})()
    sm_pb2_grpc.add_SessionServiceServicer_to_server(SessionServicer(holder), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    b.sm.forward = fwd = OwnerForwarder(settings, b.store, 2.0, b.adopter.missing)
    try:
        await a.sm.initiate(_event(), SessionFlags())
        assert a.store.flush()
        assert await b.sm.terminate(_event(Usage="150ms")) is None
        assert fwd.forwarded == 1 and b.adopter.adopted == 0 and not b.sm.get_session(s_id(a))
        assert fb.balances["1001"] == Decimal("99.85")  # charged by A, once
        assert await b.sm.process_cdr(_event(Usage="150ms")) is None
        assert fwd.forwarded == 2
        await asyncio.sleep(0.05)
        assert len(fb.cdrs) == 1
    finally:
        await fwd.close()
        await server.stop(None)
        for r in (a, b):
            await r.die()


def s_id(r: Replica) -> str:
    return next(iter(r.sm._table.closed)) if r.sm._table.closed else next(iter(r.sm._active))
