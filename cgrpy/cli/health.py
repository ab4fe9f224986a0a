"""`cgr health --service NAME`: one real gRPC health check (Docker HEALTHCHECK uses it)."""

from __future__ import annotations

import argparse

from cgrpy.config import SERVICES, load_settings
from cgrpy.runtime.healthcheck import check


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("health", help="exit 0 if the service answers SERVING on gRPC health")
    p.add_argument("--service", required=True, choices=SERVICES)
    p.add_argument("--addr", help="host:port (default from configuration)")
    p.add_argument("--timeout", type=float, default=2.0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    addr = args.addr or settings.addr(args.service)
    status = check(addr, "", args.timeout, settings)
    print(f"{args.service} {addr} {status}")
    return 0 if status == "SERVING" else 1
