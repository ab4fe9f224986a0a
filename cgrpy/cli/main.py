"""Entry point of `cgr`. Each sub-command lives in its own module under ``cgrpy.cli`` and
exposes ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``."""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules, in the order `cgr --help` lists them. A module missing here is skipped,
# so sub-commands can land one at a time.
COMMAND_MODULES = (
    "up",
    "load",
    "status",
    "health",
    "cost",
    "account",
    "sessions",
    "cdrs",
    "opensips",
    "migrate",
    "profiles",
    "stats",
    "provision",
    "config",
    "smoke",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cgr", description="cgrpy operator CLI")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"cgrpy.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cgrpy.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
