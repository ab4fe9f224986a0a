"""`cgr status`: health of every service, every replica (CGRateS's `cgr-console status`), and
for each RALs, StatS and ThresholdS replica the partitions (of accounts, stat queues,
thresholds) it owns, and which ResourceS replica owns the resources (the others pass their
requests to it)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import grpc

from cgrates.v1 import (
    common_pb2,
    rals_pb2_grpc,
    resources_pb2_grpc,
    stats_pb2_grpc,
    thresholds_pb2_grpc,
)
from cgrpy.config import SERVICES, Settings, load_settings, split_targets
from cgrpy.runtime import auth
from cgrpy.runtime.balance import resolve
from cgrpy.runtime.healthcheck import check


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show each service's replicas, addresses and health")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def replicas(settings: Settings, name: str) -> list[dict[str, Any]]:
    """Each process of ``name`` with its addresses: ``grpc``, ``metrics`` (when it is a local
    replica on the port rule; unknown for an explicit address), and for SM its listeners
    (``opensips`` for OpenSIPS's cgrates module, ``opensips_events``, ``jsonrpc``, ``http``)."""
    explicit = split_targets(settings.get(f"{name}_addr"))
    out: list[dict[str, Any]] = []
    for k, addr in enumerate(_expand(settings.addrs(name))):
        metrics = None if explicit else f"{settings.listen_host}:{settings.replica_ports(name, k)[1]}"
        out.append({"replica": k, "grpc": addr, "metrics": metrics})
    if name == "sm":
        for k, rep in enumerate(out):
            lis = settings.sm_listeners(k)
            rep.update(opensips=lis["opensips_listen"], opensips_events=lis["opensips_event_listen"],
                       jsonrpc=lis["jsonrpc_listen"], http=lis["http_listen"])
    return out


def _expand(targets: tuple[str, ...]) -> list[str]:
    """A ``dns:///`` target as every address it resolves to now (each replica behind a
    Kubernetes headless Service); kept as it is when the name does not resolve."""
    out: list[str] = []
    for target in targets:
        if target.startswith("dns:///"):
            try:
                out += asyncio.run(resolve(target))
                continue
            except OSError:
                pass
        out.append(target)
    return out


# service -> (its stub, what its partitions hold)
PARTITIONED = {"rals": (rals_pb2_grpc.RalsServiceStub, "accounts"),
               "stats": (stats_pb2_grpc.StatsServiceStub, "stat queues"),
               "thresholds": (thresholds_pb2_grpc.ThresholdsServiceStub, "thresholds"),
               "resources": (resources_pb2_grpc.ResourcesServiceStub, "resources")}


def ownership(settings: Settings, addr: str, name: str = "rals") -> dict[str, Any] | None:
    """What one RALs, StatS or ThresholdS process owns: ``partitions`` (the partitions it holds
    now, of ``partitions_total``), ``advertised`` (where the other replicas forward to),
    ``mode``. None when it does not answer."""
    with auth.channel(settings, addr) as ch:
        try:
            own = PARTITIONED[name][0](ch).GetOwnership(common_pb2.Empty(), timeout=2.0)
        except grpc.RpcError:
            return None
    return {"advertised": own.advertised, "partitions": list(own.partitions),
            "partitions_total": own.partitions_total, "mode": own.mode}


def _ranges(parts: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0-2,5,7-8" (the text table's short form)."""
    out: list[str] = []
    for p in parts:
        if out and int(out[-1].rsplit("-", 1)[-1]) == p - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{p}"
        else:
            out.append(str(p))
    return ",".join(out)


def _owns(name: str, rep: dict[str, Any]) -> str:
    own = rep.get("ownership")
    if not own:
        return ""
    if own["mode"] == "owns-all":
        return f"  owns all {PARTITIONED[name][1]}"
    if name == "resources":  # one partition holds every resource
        if own["partitions"]:
            return f"  owner of every resource as {own['advertised'] or 'no advertised address'}"
        return "  passes requests to the owner"
    n = len(own["partitions"])
    where = own["advertised"] or f"no advertised address (CGRPY_{name.upper()}_ADVERTISE)"
    return f"  {n}/{own['partitions_total']} partitions {_ranges(own['partitions']) or '-'} as {where}"


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    table = {name: replicas(settings, name) for name in SERVICES}
    for name, reps in table.items():
        for rep in reps:
            rep["status"] = check(rep["grpc"], "", 1.0, settings)
            if name in PARTITIONED and rep["status"] == "SERVING":
                rep["ownership"] = ownership(settings, rep["grpc"], name)
    ok = all(rep["status"] == "SERVING" for reps in table.values() for rep in reps)
    if args.json:
        # addr/status: the first replica's, as before replicas existed
        print(json.dumps({n: {"addr": reps[0]["grpc"], "status": reps[0]["status"], "replicas": reps}
                          for n, reps in table.items()}))
        return 0 if ok else 1
    rows = [(n if len(reps) == 1 else f"{n}-{r['replica']}", r["grpc"], r["status"])
            for n, reps in table.items() for r in reps]
    w = max(len(a) for _, a, _ in rows)
    owns = [_owns(n, r) for n, reps in table.items() for r in reps]
    for (label, a, s), o in zip(rows, owns, strict=True):
        print(f"{label:<13} {a:<{w}}  {s}{o}")
    return 0 if ok else 1
