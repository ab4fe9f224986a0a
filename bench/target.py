"""What a benchmark drives: a suite it starts itself (`cgr up` on a fresh Postgres database) or one
already running (``--target``). Shared by every mode of ``python -m bench``."""

from __future__ import annotations

import argparse
import subprocess
import sys
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.plan import Plan
from cgrpy.config import GRPC_PORTS, METRICS_PORTS

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class SuiteDidNotStart(RuntimeError):
    """The suite was not SERVING in time (e.g. a loaded machine)."""


@dataclass
class Target:
    host: str
    port: int  # SM's OpenSIPS (cgrates module) listener
    rals: str  # gRPC host:port
    cdre: str
    metrics_url: str  # SM's Prometheus endpoint
    supervisor_pid: int | None  # parent of the service processes (CPU/RSS), None = unknown
    pg_dbname: str | None  # the run's Postgres database (its backends' CPU), None = not Postgres
    suite: Any = None  # tests.suite.Suite when started here (its output for --suite-log)


def add_set_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", type=_setting,
                   help="a setting of the suite it starts (repeatable), e.g. gc_middle_threshold=2; "
                        "CGRPY_* variables of the bench's own environment are not passed on")


def _setting(text: str) -> tuple[str, str]:
    from cgrpy.config import KEYS

    name, eq, value = text.partition("=")
    name = name.strip().lower()
    if not eq or name not in KEYS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE with NAME a setting (cgr config show)")
    return name, value


def settings_env(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """``--set`` pairs as the CGRPY_* environment of the started suite."""
    return {f"CGRPY_{name.upper()}": value for name, value in pairs}


def add_suite_args(p: argparse.ArgumentParser, *, debit_interval: str = "10s") -> None:
    p.add_argument("--accounts", type=int, default=1000, help="accounts generated for the run")
    p.add_argument("--balance", default="1000", help="monetary balance each account starts with")
    p.add_argument("--debit-interval", default=debit_interval, help="SM debit interval of the suite it starts")
    p.add_argument("--log-level", default="WARNING", help="log level of the suite it starts")
    p.add_argument("--suite-log", type=Path, help="write the started suite's output (logs) here")
    add_set_arg(p)
    p.add_argument("--rpc-transport", choices=("frame", "mux", "unary"), default="frame",
                   help="calls between the started suite's services: the frame lane, one gRPC stream per channel, or unary RPCs")
    p.add_argument("--replicas", type=int, default=1,
                   help="processes of each replicated service in the started suite (cgr up --replicas)")
    p.add_argument("--db-url", help="start the suite on this StorDB (kept) instead of a fresh Postgres DB")
    p.add_argument("--pg-admin", default=PG_ADMIN, help="Postgres server where the fresh DB is created")
    p.add_argument("--target", metavar="HOST:PORT", help="drive this running SM's OpenSIPS port instead")
    p.add_argument("--rals", default=f"127.0.0.1:{GRPC_PORTS['rals']}", help="with --target: RALs gRPC")
    p.add_argument("--cdre", default=f"127.0.0.1:{GRPC_PORTS['cdre']}", help="with --target: cdre gRPC")
    p.add_argument("--sm-metrics", default=f"http://127.0.0.1:{METRICS_PORTS['sm']}/metrics",
                   help="with --target: SM's Prometheus endpoint")
    p.add_argument("--supervisor-pid", type=int, help="with --target: pid of `cgr up` (for CPU/RSS)")
    p.add_argument("--no-load", action="store_true", help="with --target: the plan is loaded already")


def add_load_args(p: argparse.ArgumentParser, *, call_length: str = "30s", postpaid: float = 0.2) -> None:
    p.add_argument("--call-length", default=call_length, help="how long each answered call lasts (e.g. 30s)")
    p.add_argument("--postpaid-ratio", type=float, default=postpaid, help="share of *postpaid calls (0..1)")
    p.add_argument("--connections", type=int, default=4, help="TCP connections to SM (OpenSIPS workers)")
    p.add_argument("--per-conn", type=int, default=1,
                   help="requests in flight per connection (OpenSIPS: 1, a worker blocks on its command)")
    p.add_argument("--request-timeout", type=float, default=10.0, help="give up on a reply after (s)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, help="write the result JSON here")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots here (needs matplotlib)")


def loopback(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise SystemExit(f"bench: --target {hostport!r} is not a loopback address")
    return host, int(port)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


class FreshDatabase:
    """A Postgres database created for the run and dropped (WITH FORCE) afterwards."""

    def __init__(self, admin_url: str) -> None:
        self.admin = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.name = f"cgrpy_bench_{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> str:
        with psycopg.connect(self.admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        base = self.admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        return f"{base}/{self.name}"

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _dbname(url: str | None) -> str | None:
    return url.rsplit("/", 1)[-1].split("?")[0] if url and url.startswith("postgresql") else None


def open_target(args: argparse.Namespace, stack: ExitStack, plan: Plan) -> Target:
    """Start the suite on ``plan`` (closed with ``stack``) or describe the ``--target`` one."""
    if args.target:
        host, port = loopback(args.target)
        if not args.no_load:
            if not args.db_url:
                raise SystemExit("bench: --target needs --db-url to load the plan (or --no-load)")
            rc = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "load", str(plan.folder),
                                 "--db-url", args.db_url], cwd=REPO).returncode
            if rc != 0:
                raise SystemExit(f"bench: cgr load failed ({rc})")
        return Target(host, port, args.rals, args.cdre, args.sm_metrics, args.supervisor_pid,
                      _dbname(args.db_url))
    from tests.suite import Suite, replica_env, suite_env

    db_url = args.db_url or stack.enter_context(FreshDatabase(args.pg_admin))
    env = suite_env(db_url, CGRPY_DEBIT_INTERVAL=args.debit_interval, CGRPY_LOG_LEVEL=args.log_level.upper(),
                    CGRPY_RPC_TRANSPORT=getattr(args, "rpc_transport", "frame"))
    env.update(replica_env(getattr(args, "replicas", 1)))
    env.update(settings_env(getattr(args, "set", [])))
    print(f"starting the suite (cgr up) on {db_url.rsplit('@', 1)[-1]} ...", file=sys.stderr)
    try:
        suite = stack.enter_context(Suite(env, "--tariffplan", str(plan.folder), timeout=180))
    except RuntimeError as exc:
        raise SuiteDidNotStart(str(exc)[-600:]) from None
    if args.suite_log:
        stack.callback(lambda: args.suite_log.write_text(suite.read_output()))
    host, port = loopback(env["CGRPY_OPENSIPS_LISTEN"])
    assert suite.proc is not None
    return Target(host, port, suite.addr("rals"), suite.addr("cdre"),
                  f"http://127.0.0.1:{env['CGRPY_SM_METRICS_PORT']}/metrics", suite.proc.pid,
                  _dbname(db_url), suite)
