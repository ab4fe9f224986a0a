"""`cgr status`: health of every service, every replica (CGRateS's `cgr-console status`)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from cgrpy.config import SERVICES, Settings, load_settings, split_targets
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
        out[0].update(opensips=settings.opensips_listen, opensips_events=settings.opensips_event_listen,
                      jsonrpc=settings.jsonrpc_listen, http=settings.http_listen)
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


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    table = {name: replicas(settings, name) for name in SERVICES}
    for reps in table.values():
        for rep in reps:
            rep["status"] = check(rep["grpc"], "", 1.0, settings)
    ok = all(rep["status"] == "SERVING" for reps in table.values() for rep in reps)
    if args.json:
        # addr/status: the first replica's, as before replicas existed
        print(json.dumps({n: {"addr": reps[0]["grpc"], "status": reps[0]["status"], "replicas": reps}
                          for n, reps in table.items()}))
        return 0 if ok else 1
    rows = [(n if len(reps) == 1 else f"{n}-{r['replica']}", r["grpc"], r["status"])
            for n, reps in table.items() for r in reps]
    w = max(len(a) for _, a, _ in rows)
    for label, a, s in rows:
        print(f"{label:<13} {a:<{w}}  {s}")
    return 0 if ok else 1
