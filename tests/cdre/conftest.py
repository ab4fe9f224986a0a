"""StorDB with every model's tables, on SQLite and on Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from cgrates.v1 import cdre_pb2_grpc, rals_pb2_grpc, stats_pb2_grpc, thresholds_pb2_grpc
from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from services.attributes.server import AttributesServer
from services.cdre.server import CdreServer
from services.cdre.store import CdrStore
from services.chargers.server import ChargersServer
from services.rals.server import RalsServer
from services.stats.server import StatsServer
from services.thresholds.server import ThresholdsServer
from tests.harness import serve


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: Engine) -> Iterator[CdrStore]:
    st = CdrStore(engine)
    yield st
    st.close()


@dataclass
class Stack:
    """Every service ProcessCDR reaches, each a real gRPC server on loopback (tutorial plan)."""

    cdrs: cdre_pb2_grpc.CdrServiceStub
    rals: rals_pb2_grpc.RalsServiceStub
    stats: stats_pb2_grpc.StatsServiceStub
    thresholds: thresholds_pb2_grpc.ThresholdsServiceStub


@pytest.fixture
async def stack(db_url) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as es:
        rals = await es.enter_async_context(serve(RalsServer, db_url))
        env = {"CGRPY_RALS_ADDR": rals.addr}
        attrs = await es.enter_async_context(serve(AttributesServer, db_url, tariffplan=None))
        env["CGRPY_ATTRIBUTES_ADDR"] = attrs.addr
        thr = await es.enter_async_context(
            serve(ThresholdsServer, db_url, tariffplan=None, env=env))
        env["CGRPY_THRESHOLDS_ADDR"] = thr.addr
        st = await es.enter_async_context(serve(StatsServer, db_url, tariffplan=None, env=env))
        env["CGRPY_STATS_ADDR"] = st.addr
        ch = await es.enter_async_context(serve(ChargersServer, db_url, tariffplan=None, env=env))
        env["CGRPY_CHARGERS_ADDR"] = ch.addr
        cdre = await es.enter_async_context(serve(CdreServer, db_url, tariffplan=None, env=env))
        yield Stack(
            cdre_pb2_grpc.CdrServiceStub(cdre.channel),
            rals_pb2_grpc.RalsServiceStub(rals.channel),
            stats_pb2_grpc.StatsServiceStub(st.channel),
            thresholds_pb2_grpc.ThresholdsServiceStub(thr.channel),
        )
