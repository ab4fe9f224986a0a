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


def combine(results: dict[str, str]) -> str:
    """One service's outcome over its replicas (target -> outcome): an error wins, named with
    the replica's address when there are several; else "reloaded" if any replica reloaded (one
    not running compiles the plan when it starts); else "not running"."""
    errors = {t: r for t, r in results.items() if r not in ("reloaded", "not running")}
    if errors:
        if len(results) == 1:
            return next(iter(errors.values()))
        return "; ".join(f"{t}: {r}" for t, r in errors.items())
    return "reloaded" if "reloaded" in results.values() else "not running"


def _reload_one(settings: Settings, target: str, stub_cls: type, tpid: str, timeout: float) -> str:
    with auth.channel(settings, target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=0.3)
        except grpc.FutureTimeoutError:
            return "not running"
        try:
            stub_cls(channel).ReloadCache(common_pb2.ReloadCacheRequest(tpid=tpid), timeout=timeout)
            return "reloaded"
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:  # stopping, or not loaded yet
                return "not running"
            return f"{exc.code().name}: {exc.details()}"


def reload_service(settings: Settings, name: str, tpid: str, timeout: float = 30.0) -> str:
    """ReloadCache on every replica of ``name``; its outcome as :func:`combine` gives it."""
    return combine({t: _reload_one(settings, t, RELOADABLE[name], tpid, timeout) for t in settings.addrs(name)})


def reload_all(settings: Settings, tpid: str, timeout: float = 30.0) -> dict[str, str]:
    """ReloadCache on every replica of every reloadable service (each process compiles its own
    copy of the plan: one left out would go on serving the old one); service -> "reloaded",
    "not running" or error (:func:`combine`)."""
    return {name: reload_service(settings, name, tpid, timeout) for name in RELOADABLE}
