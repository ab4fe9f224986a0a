"""The StorDB engine on real Postgres after its backends were killed (pg_terminate_backend):
no round trip per checkout on the hot path, yet a dead connection is recovered from."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, exc, text

from cgrpy.storage.db import make_engine


def _kill_backends(engine) -> int:
    dbname = engine.url.database
    admin = create_engine(engine.url.set(database="postgres").render_as_string(hide_password=False),
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            return c.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": dbname}).scalar()
    finally:
        admin.dispose()


def test_hot_checkouts_do_not_ping(pg_url: str):
    engine = make_engine(pg_url)
    pings = 0
    real = engine.dialect.do_ping

    def counting(conn):
        nonlocal pings
        pings += 1
        return real(conn)

    engine.dialect.do_ping = counting  # type: ignore[method-assign]
    try:
        for _ in range(20):
            with engine.begin() as c:
                assert c.execute(text("SELECT 1")).scalar() == 1
        assert pings == 0
    finally:
        engine.dispose()


def test_an_idle_connection_killed_meanwhile_is_replaced_before_use(pg_url: str):
    engine = make_engine(pg_url, idle_ping_s=0)
    try:
        with engine.begin() as c:
            before = c.execute(text("SELECT pg_backend_pid()")).scalar()
        assert _kill_backends(engine) >= 1
        with engine.begin() as c:  # the ping finds it dead; the pool connects afresh
            assert c.execute(text("SELECT pg_backend_pid()")).scalar() != before
    finally:
        engine.dispose()


def test_pooled_connections_killed_meanwhile_are_replaced_without_a_round_trip(pg_url: str):
    engine = make_engine(pg_url, pool_size=3)  # idle ping after 2 s: not reached here
    try:
        conns = [engine.connect() for _ in range(3)]  # three pooled connections
        for c in conns:
            c.execute(text("SELECT 1"))
            c.close()
        assert _kill_backends(engine) >= 3
        time.sleep(0.2)  # the backends' goodbye reaches the sockets
        for _ in range(4):
            with engine.begin() as c:
                assert c.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_a_connection_killed_while_checked_out_fails_once_then_the_pool_recovers(pg_url: str):
    engine = make_engine(pg_url, pool_size=3)
    try:
        conns = [engine.connect() for _ in range(3)]
        for c in conns:
            c.execute(text("SELECT 1"))
            c.close()
        c = engine.connect()
        c.execute(text("SELECT 1"))
        assert _kill_backends(engine) >= 3
        with pytest.raises(exc.DBAPIError) as err:
            c.execute(text("SELECT 2"))
        c.close()
        assert err.value.connection_invalidated
        # the disconnect invalidated every connection pooled before it: all later ones work
        for _ in range(4):
            with engine.begin() as c:
                assert c.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
