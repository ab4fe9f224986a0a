"""The shared partition leases on a real Postgres: a write fenced on the lease connection commits
only while the partition is held, so an owner that lost its lease (its session terminated) cannot
overwrite what the new owner writes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from cgrpy.runtime.partitions import NotOwner, PartitionLeases

LOCK_CLASS = 0x43475458  # a class of the test's own


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _lease(url: str, address: str, gained: list[int]) -> PartitionLeases:
    return PartitionLeases(_libpq(url), address, lock_class=LOCK_CLASS, app_prefix="cgrpy-test ",
                           on_gained=gained.append, on_lost=lambda: None, heartbeat_s=0.1)


@pytest.fixture
def table(pg_url: str) -> Iterator[str]:
    with psycopg.connect(_libpq(pg_url), autocommit=True) as c:
        c.execute("CREATE TABLE fenced (k int PRIMARY KEY, v text NOT NULL)")
    yield pg_url


def _write(lease: PartitionLeases, p: int, value: str) -> None:
    lease.fenced([p]).execute("INSERT INTO fenced VALUES (1, %s) ON CONFLICT (k) DO UPDATE "
                              "SET v = EXCLUDED.v", (value,))


def _value(url: str) -> str:
    with psycopg.connect(_libpq(url), autocommit=True) as c:
        row = c.execute("SELECT v FROM fenced WHERE k = 1").fetchone()
    return row[0] if row else ""


def test_a_write_commits_only_while_the_partition_is_held(table: str) -> None:
    ga: list[int] = []
    gb: list[int] = []
    a = _lease(table, "127.0.0.1:1111", ga)
    b = _lease(table, "127.0.0.1:2222", gb)
    try:
        assert a.claim(7) is None and ga == [7]
        _write(a, 7, "a1")
        assert b.claim(7) == "127.0.0.1:1111"  # held: b learns the owner
        with pytest.raises(NotOwner):
            _write(b, 7, "b-too-early")
        with pytest.raises(NotOwner):
            _write(a, 8, "a-not-its-partition")
        # the DBA (or a network cut) ends A's lease session; A has not noticed yet
        with psycopg.connect(_libpq(table), autocommit=True) as c:
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'cgrpy-test 127.0.0.1:1111'")
        deadline = time.monotonic() + 10
        b.forget(7)
        while b.claim(7) is not None:  # B takes the partition once the lock went with the session
            assert time.monotonic() < deadline
            time.sleep(0.05)
            b.forget(7)
        assert gb == [7]
        _write(b, 7, "b1")
        with pytest.raises((NotOwner, psycopg.Error)):  # A's late write cannot land
            _write(a, 7, "a-late")
        assert _value(table) == "b1"
    finally:
        a.close()
        b.close()
