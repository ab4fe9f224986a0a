"""`cgr status`: health of every service (CGRateS's `cgr-console status`)."""

from __future__ import annotations

import argparse
import json

from cgrpy.config import SERVICES, load_settings
from cgrpy.runtime.healthcheck import check


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show each service's address and health")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    rows = [(name, settings.addr(name), check(settings.addr(name), "", 1.0, settings)) for name in SERVICES]
    if args.json:
        print(json.dumps({n: {"addr": a, "status": s} for n, a, s in rows}))
    else:
        w = max(len(a) for _, a, _ in rows)
        for n, a, s in rows:
            print(f"{n:<11} {a:<{w}}  {s}")
    return 0 if all(s == "SERVING" for _, _, s in rows) else 1
