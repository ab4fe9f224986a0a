"""`cgr config show`: the effective configuration and where each value came from (default,
file named by CGRPY_CONFIG, CGRPY_* environment, override), with its CGRateS name.

    cgr config show [--json] [--changed]

Exit codes: 0 printed; 2 bad configuration (the one-line error on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cgrpy.config import KEYS, SECRET_KEYS, ConfigError, load_settings
from cgrpy.units import format_duration


def _text(kind: str, value: Any) -> str:
    if kind == "duration":
        return format_duration(value)
    if kind == "json_list":
        return json.dumps(value)
    return str(value)


def show(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"cgr config: {exc}", file=sys.stderr)
        return 2
    rows = []
    for name, key in KEYS.items():
        source = settings.sources[name]
        if args.changed and source == "default":
            continue
        value = _text(key.kind, settings.get(name))
        if name in SECRET_KEYS and value:
            value = "***"  # set, but never shown
        rows.append({"key": name, "env": f"CGRPY_{name.upper()}", "value": value,
                     "source": source, "cgrates": key.cgrates})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["key"]) for r in rows), default=0)
    vwidth = min(max((len(r["value"]) for r in rows), default=0), 48)
    for r in rows:
        cg = f"  ({r['cgrates']})" if r["cgrates"] else ""
        print(f"{r['key']:<{width}}  {r['value']:<{vwidth}}  {r['source']}{cg}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("config", help="show the effective configuration")
    sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    s = sub.add_parser("show", help="every setting, its value and where it came from")
    s.add_argument("--json", action="store_true", help="JSON list of {key, env, value, source, cgrates}")
    s.add_argument("--changed", action="store_true", help="only settings not at their default")
    s.set_defaults(func=show)
