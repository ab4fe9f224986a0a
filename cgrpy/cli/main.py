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


# Commands run by container health checks every few seconds: `cgr health` loads only its own
# module (a fraction of the start-up CPU of the full parser), so it answers within the check's
# timeout on a busy host.
FAST_PATH = ("health",)


def build_parser(only: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cgr", description="cgrpy operator CLI")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in only:
        try:
            module = importlib.import_module(f"cgrpy.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cgrpy.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    first = (sys.argv[1:] if argv is None else argv)[:1]
    parser = build_parser((first[0],) if first and first[0] in FAST_PATH else COMMAND_MODULES)
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
