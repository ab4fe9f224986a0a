"""Tell running services to reload a tariff plan (ReloadCache), e.g. after `cgr load`."""

from __future__ import annotations

import grpc

from cgrates.v1 import (
    attributes_pb2_grpc,
    chargers_pb2_grpc,
    common_pb2,
    rals_pb2_grpc,
    resources_pb2_grpc,
    stats_pb2_grpc,
    suppliers_pb2_grpc,
    thresholds_pb2_grpc,
)
from cgrpy.config import Settings
from cgrpy.runtime import auth

# The services that compile the tariff plan into memory.
RELOADABLE = {
    "rals": rals_pb2_grpc.RalsServiceStub,
    "attributes": attributes_pb2_grpc.AttributesServiceStub,
    "chargers": chargers_pb2_grpc.ChargersServiceStub,
    "suppliers": suppliers_pb2_grpc.SuppliersServiceStub,
    "stats": stats_pb2_grpc.StatsServiceStub,
    "thresholds": thresholds_pb2_grpc.ThresholdsServiceStub,
    "resources": resources_pb2_grpc.ResourcesServiceStub,
}


def reload_all(settings: Settings, tpid: str, timeout: float = 30.0) -> dict[str, str]:
    """ReloadCache on every reloadable service; service -> "reloaded", "not running" or error."""
    out: dict[str, str] = {}
    for name, stub_cls in RELOADABLE.items():
        with auth.channel(settings, settings.addr(name)) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=0.3)
            except grpc.FutureTimeoutError:
                out[name] = "not running"
                continue
            try:
                stub_cls(channel).ReloadCache(common_pb2.ReloadCacheRequest(tpid=tpid), timeout=timeout)
                out[name] = "reloaded"
            except grpc.RpcError as exc:
                out[name] = f"{exc.code().name}: {exc.details()}"
    return out
