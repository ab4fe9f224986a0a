"""Entry point of `cgr`. Each sub-command lives in its own module under ``cgrpy.cli`` and
exposes ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.

A bad setup that escapes a sub-command — a StorDB that is unreachable or was never migrated, a
service that does not answer, a bad configuration — is answered here, once for every command,
with one line ``cgr <command>: <what is wrong>`` on stderr and exit code 1 (2 for
configuration), never a traceback. Anything else is a bug and keeps its traceback.
"""

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
    "resources",
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
    except Exception as exc:
        answer = bad_setup(exc)
        if answer is None:
            raise
        line, code = answer
        print(f"{_label(args)}: {line}", file=sys.stderr)
        return code


_SUBCOMMAND_DESTS = ("account_command", "balance_command", "cdrs_command", "config_command",
                     "opensips_command", "sessions_command", "action")


def _label(args: argparse.Namespace) -> str:
    sub = next((getattr(args, d) for d in _SUBCOMMAND_DESTS if getattr(args, d, None)), "")
    return " ".join(x for x in ("cgr", args.command, sub) if x)


def bad_setup(exc: BaseException) -> tuple[str, int] | None:
    """(one line, exit code) for an error of the environment rather than of cgrpy, else None."""
    import grpc
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from cgrpy.config import ConfigError
    from cgrpy.storage.db import describe_db_error
    from cgrpy.storage.migrate import MigrationError

    if isinstance(exc, DBAPIError):
        return describe_db_error(exc), 1
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return f"bad database URL: {exc}", 2
    if isinstance(exc, ConfigError):
        return str(exc), 2
    if isinstance(exc, MigrationError) or type(exc).__module__.startswith("alembic"):
        return f"StorDB migration: {str(exc).strip().splitlines()[0]}", 1
    if isinstance(exc, grpc.RpcError) and exc.code() in (  # type: ignore[attr-defined]
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        details = (exc.details() or "").strip().splitlines()  # type: ignore[attr-defined]
        return f"service unreachable ({exc.code().name}){': ' + details[0] if details else ''}", 1  # type: ignore[attr-defined]
    if isinstance(exc, OSError):
        return str(exc), 1
    return None


if __name__ == "__main__":
    sys.exit(main())
