"""Helpers of the provisioning tests: the RALs process (TariffPlanService) next to the services
it reloads, every other service address pointing at a closed port (never someone's running stack)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from cgrates.v1 import common_pb2, tariffplan_pb2, tariffplan_pb2_grpc
from cgrpy.event import dumps_exact, loads_exact
from cgrpy.storage.db import make_engine
from cgrpy.storage.tariffplans import read_tariffplan
from cgrpy.tariffplan.columns import TariffPlanRows

CLOSED = "127.0.0.1:1"
SERVICES = ("attributes", "chargers", "suppliers", "stats", "thresholds", "cdre", "rals", "sm", "resources")


def addrs(**running: str) -> dict[str, str]:
    """CGRPY_<SVC>_ADDR for every service: the given ones, the rest a closed port."""
    return {f"CGRPY_{s.upper()}_ADDR": running.get(s, CLOSED) for s in SERVICES}


def stub(channel: grpc.aio.Channel) -> tariffplan_pb2_grpc.TariffPlanServiceStub:
    return tariffplan_pb2_grpc.TariffPlanServiceStub(channel)


def set_req(kind: str, obj: Any, **kw: Any) -> tariffplan_pb2.ProfileRequest:
    return tariffplan_pb2.ProfileRequest(kind=kind, object=common_pb2.JsonObject(json=dumps_exact(obj)), **kw)


async def get(channel: grpc.aio.Channel, kind: str, obj: Any) -> Any:
    return loads_exact((await stub(channel).GetProfile(set_req(kind, obj))).json)


def dump(db_url: str, tpid: str = "cgrpy") -> TariffPlanRows:
    engine = make_engine(db_url)
    try:
        return read_tariffplan(engine, tpid)
    finally:
        engine.dispose()


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value
