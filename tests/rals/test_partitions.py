"""Partition leases on a real Postgres: one owner per partition, found by address, taken over
when the owner's connection goes away."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from cgrpy.storage.db import make_engine
from services.rals.partitions import PARTITIONS, AdvisoryPartitions, OwnsAll, partition_of


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def _lease(engine: Engine, address: str, gained: list[int], lost: list[int]) -> AdvisoryPartitions:
    return AdvisoryPartitions(engine, address, on_gained=gained.append,
                              on_lost=lambda: lost.append(1), heartbeat_s=0.1)


def test_partition_spread() -> None:
    seen = {partition_of("cgrates.org", f"{i}") for i in range(2000)}
    assert seen == set(range(PARTITIONS))
    assert partition_of("t", "a") == partition_of("t", "a")
    assert OwnsAll().claim("t", "a") is None and OwnsAll().owns("t", "a")


def test_one_owner_others_find_it_and_take_over(engine: Engine) -> None:
    ga: list[int] = []
    gb: list[int] = []
    lost: list[int] = []
    a = _lease(engine, "127.0.0.1:1111", ga, lost)
    b = _lease(engine, "127.0.0.1:2222", gb, lost)
    try:
        assert not a.owns("t", "x")
        assert a.claim("t", "x") is None  # free: a takes it
        assert a.owns("t", "x") and ga == [partition_of("t", "x")]
        assert b.claim("t", "x") == "127.0.0.1:1111"  # held: b learns the owner's address
        assert b.known_owner("t", "x") == "127.0.0.1:1111" and not b.owns("t", "x")
        a.close()  # the owner goes away: its locks go with its connection
        b.forget("t", "x")
        assert b.claim("t", "x") is None and b.owns("t", "x")
        assert gb == [partition_of("t", "x")]
    finally:
        a.close()
        b.close()
    assert lost == []


def test_a_lost_lease_connection_gives_everything_up(engine: Engine, pg_url: str) -> None:
    import psycopg

    gained: list[int] = []
    lost: list[int] = []
    a = _lease(engine, "127.0.0.1:1111", gained, lost)
    try:
        assert a.claim("t", "x") is None and a.owns("t", "x")
        admin = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(admin, autocommit=True) as conn:  # the DBA kills the session
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE application_name = 'cgrpy-rals 127.0.0.1:1111'")
        deadline = time.monotonic() + 5
        while a.owns("t", "x") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not a.owns("t", "x") and lost
        assert a.claim("t", "x") is None  # a new lease connection takes it again
    finally:
        a.close()
