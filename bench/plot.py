"""`python -m bench plot RESULT.json --plots DIR`: PNG plots of a saved result (any call mode)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.report import write_plots


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="PNG plots (latency, calls/s, RSS, sessions) of a result JSON")
    p.add_argument("result", type=Path, help="a result JSON of calls/ramp/soak/sessions/echo")
    p.add_argument("--plots", type=Path, required=True, metavar="DIR", help="folder for the PNG files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = json.loads(args.result.read_text())
    if "timeline" not in result:
        raise SystemExit(f"bench plot: {args.result} has no timeline (a micro result?)")
    line = write_plots(result, args.plots)
    print(line)
    return 0 if line.startswith("plots written") else 1
