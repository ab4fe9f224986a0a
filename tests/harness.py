"""Contract-test harness: a real service (its real gRPC server) on an ephemeral loopback port,
backed by a real database into which a repo tariff plan has been loaded.

    async with serve(RalsServer, db_url, tariffplan="tutorial") as svc:
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc

from cgrpy.config import load_settings
from cgrpy.runtime.server import BaseService, ServiceRunner
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.tariffplan.csvread import read_folder
from tests.conftest import TARIFFPLANS


@dataclass
class Served:
    runner: ServiceRunner
    channel: grpc.aio.Channel

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.runner.grpc_port}"


def load_tariffplan(db_url: str, name: str, tpid: str = "cgrpy") -> None:
    """Store a repo tariff plan (tariffplans/<name>) under ``tpid`` (migrating first)."""
    from cgrpy.storage.tariffplans import replace_tariffplan

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        replace_tariffplan(engine, tpid, read_folder(TARIFFPLANS / name), source=name)
    finally:
        engine.dispose()


@asynccontextmanager
async def serve(
    service_cls: type[BaseService],
    db_url: str,
    *,
    tariffplan: str | None = "tutorial",
    env: dict[str, str] | None = None,
) -> AsyncIterator[Served]:
    if tariffplan:
        await asyncio.to_thread(load_tariffplan, db_url, tariffplan)
    settings = load_settings(env={"CGRPY_STORDB_URL": db_url, **(env or {})})
    runner = ServiceRunner(service_cls(settings), grpc_port=0, metrics_port=-1)
    await runner.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runner.grpc_port}")
    try:
        yield Served(runner, channel)
    finally:
        await channel.close()
        await runner.stop(grace=0.5)
