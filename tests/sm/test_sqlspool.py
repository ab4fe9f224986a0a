"""SM's CDR spool in the StorDB (real Postgres): durable before the answer, forwarded by any live
replica (a dead replica's CDRs too), and kept in the local file spool when the StorDB refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cgrpy.event import CGREvent
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from services.sm.spool import CdrSpool
from services.sm.sqlspool import SqlCdrSpool


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    upgrade(pg_url)
    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


def _cdr(i: int) -> CGREvent:
    return CGREvent(tenant="cgrates.org", id=f"cdr-{i}", time=datetime(2026, 1, 1, tzinfo=UTC),
                    event={"OriginID": f"call-{i}", "Usage": "10s", "Cost": "0.1"})


class Cdre:
    def __init__(self) -> None:
        self.stored: list[str] = []

    async def deliver(self, items: list[tuple[CGREvent, dict[str, bool]]]) -> list[Exception | None]:
        self.stored += [ev.event["OriginID"] for ev, _ in items]
        return [None] * len(items)


def _rows(eng: Engine) -> int:
    with eng.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM sm_cdr_spool")).scalar_one())


def _spool(eng: Engine, tmp: Path, name: str) -> SqlCdrSpool:
    return SqlCdrSpool(eng, CdrSpool(tmp / f"{name}.sqlite"), poll_s=0.1, own_lease_s=0.5)


async def test_a_cdr_is_durable_when_put_returns_and_forwarded_once(engine, tmp_path) -> None:
    cdre = Cdre()
    a = _spool(engine, tmp_path, "a")
    a.start(cdre.deliver)
    ids = await asyncio.gather(*(a.aput(_cdr(i), {"rals": True}) for i in range(20)))
    assert all(i > 0 for i in ids) and a.commits < 20  # group-committed
    for _ in range(100):
        if len(cdre.stored) == 20 and _rows(engine) == 0:
            break
        await asyncio.sleep(0.05)
    assert sorted(cdre.stored) == sorted(f"call-{i}" for i in range(20))
    assert _rows(engine) == 0
    await a.close()


async def test_the_cdrs_of_a_replica_that_died_are_forwarded_by_another(engine, tmp_path) -> None:
    """The taker holds its own CDRs for ``own_lease_s`` (it forwards them from memory); once that
    runs out, another replica claims and forwards them."""
    a = _spool(engine, tmp_path, "a")  # took the CDRs, died before forwarding any
    for i in range(5):
        a.put(_cdr(i), {"rals": True})
    assert _rows(engine) == 5
    await a.close()
    cdre = Cdre()
    b = _spool(engine, tmp_path, "b")
    b.start(cdre.deliver)
    for _ in range(100):
        if _rows(engine) == 0:
            break
        await asyncio.sleep(0.05)
    assert sorted(cdre.stored) == [f"call-{i}" for i in range(5)]
    await b.close()


async def test_a_stordb_that_refuses_sends_the_cdr_to_the_local_spool(tmp_path) -> None:
    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    cdre = Cdre()
    s = SqlCdrSpool(dead, CdrSpool(tmp_path / "local.sqlite"), poll_s=0.1)
    assert s.put(_cdr(1), {"rals": True}) == -1  # durable in the local file
    assert s.fallback.depth() == 1
    s.start(cdre.deliver)
    for _ in range(100):
        if cdre.stored:
            break
        await asyncio.sleep(0.05)
    assert cdre.stored == ["call-1"]
    await s.close()
    dead.dispose()
