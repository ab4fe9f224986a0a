"""Start the whole suite (`cgr up`) as real processes on free loopback ports, for e2e tests."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cgrpy.config import PARTITIONED_SERVICES, REPLICA_PORT_STEP, SERVICES, STATELESS_SERVICES

REPO = Path(__file__).resolve().parent.parent


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Test servers listen on ports below the kernel's ephemeral range. A port the kernel hands out
# (bind to 0) is free only at that moment: until the service binds it, any outgoing connection on
# the machine (a Postgres client, a gRPC channel) can be given the same port, and on a busy machine
# a suite then failed to start with "address already in use". Below the range only another
# listener can take it.
_PORT_LOW, _PORT_HIGH = 10_000, min(_ephemeral_low(), 32_768)
_rng = random.Random()


def _bindable(port: int, kind: int, held: list[socket.socket]) -> bool:
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return False
    held.append(s)
    return True


def free_ports(n: int, kind: int = socket.SOCK_STREAM, *, step: int = 0, copies: int = 2) -> list[int]:
    """``n`` distinct free ports below the ephemeral range, all held at once while picking (so two
    services of one suite never get the same one); with ``step``, p + k·step is free too for each
    k < ``copies`` (the other replicas' ports) and none of them is another pick's."""
    out: list[int] = []
    taken: set[int] = set()
    held: list[socket.socket] = []
    try:
        for _ in range(100 * n + 1000):
            if len(out) == n:
                return out
            port = _rng.randrange(_PORT_LOW, _PORT_HIGH - step * copies)
            pair = {port + k * step for k in range(copies)} if step else {port}
            if pair & taken or not all(_bindable(p, kind, held) for p in sorted(pair)):
                continue
            out.append(port)
            taken |= pair
    finally:
        for s in held:
            s.close()
    raise RuntimeError(f"no {n} free ports between {_PORT_LOW} and {_PORT_HIGH}")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    return free_ports(1, kind)[0]


def free_port_pairs(n: int, step: int, copies: int = 2) -> list[int]:
    """``n`` distinct free ports p, each with p + k·``step`` free too for k < ``copies`` (the other
    replicas' ports)."""
    return free_ports(n, step=step, copies=copies)


# What `cgr up --replicas N` runs N of on a Postgres StorDB.
REPLICATED = (*STATELESS_SERVICES, *PARTITIONED_SERVICES, "sm")


def replica_env(replicas: int = 2, names: tuple[str, ...] = REPLICATED) -> dict[str, str]:
    """CGRPY_REPLICAS and base ports for ``names`` whose replicas' ports (+100 each) are free too;
    with SM, its listeners' too (each SM replica has its own)."""
    if replicas <= 1:
        return {}
    ports = iter(free_port_pairs(2 * len(names) + 3, REPLICA_PORT_STEP, copies=replicas))
    out = {"CGRPY_REPLICAS": str(replicas)}
    for name in names:
        out[f"CGRPY_{name.upper()}_GRPC_PORT"] = str(next(ports))
        out[f"CGRPY_{name.upper()}_METRICS_PORT"] = str(next(ports))
    if "sm" in names:
        for key in ("OPENSIPS_LISTEN", "JSONRPC_LISTEN", "HTTP_LISTEN"):
            out[f"CGRPY_{key}"] = f"127.0.0.1:{next(ports)}"
        (udp,) = free_ports(1, socket.SOCK_DGRAM, step=REPLICA_PORT_STEP, copies=replicas)
        out["CGRPY_OPENSIPS_EVENT_LISTEN"] = f"127.0.0.1:{udp}"
    return out


@contextmanager
def started(make: Callable[[], Any], attempts: int = 3) -> Iterator[Any]:
    """Enter the suite ``make()`` builds (a :class:`Suite` or alike); a start that lost one of its
    ports to another run on the machine (`cgr up` says "port in use", or a service exits 78 when
    it binds) is tried again with what ``make()`` picks anew."""
    for attempt in range(attempts):
        suite = make()
        try:
            suite.__enter__()
        except RuntimeError as exc:
            suite.__exit__(None, None, None)
            if not any(w in str(exc) for w in ("port in use", "exit code 78")) or attempt == attempts - 1:
                raise
            continue
        try:
            yield suite
        finally:
            suite.__exit__(None, None, None)
        return


def suite_env(db_url: str, **extra: str) -> dict[str, str]:
    """Environment for a suite on its own free ports (so tests never collide with `make run`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
    env["CGRPY_STORDB_URL"] = db_url
    ports = iter(free_ports(2 * len(SERVICES) + 3))
    for name in SERVICES:
        env[f"CGRPY_{name.upper()}_GRPC_PORT"] = str(next(ports))
        env[f"CGRPY_{name.upper()}_METRICS_PORT"] = str(next(ports))
    env["CGRPY_OPENSIPS_LISTEN"] = f"127.0.0.1:{next(ports)}"
    env["CGRPY_OPENSIPS_EVENT_LISTEN"] = f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    env["CGRPY_JSONRPC_LISTEN"] = f"127.0.0.1:{next(ports)}"
    env["CGRPY_HTTP_LISTEN"] = f"127.0.0.1:{next(ports)}"
    env["CGRPY_GRACE_PERIOD"] = "2s"
    # each frame lane on a port the kernel picks (outside the range the ports above come from),
    # so a lane at gRPC port + 1000 never takes a port another suite just picked
    env["CGRPY_FRAME_PORT_OFFSET"] = "0"
    env["CGRPY_SM_SPOOL_PATH"] = str(Path(tempfile.mkdtemp(prefix="cgrpy-spool-")) / "spool.sqlite")
    # No API token unless a test sets one (CGRPY_API_TOKEN): most tests drive the services with
    # plain gRPC stubs and JSON-RPC clients; tests/apier/test_security.py runs suites with one,
    # and with the default token file.
    env["CGRPY_API_TOKEN_FILE"] = ""
    env.update(extra)
    return env


class Suite:
    """`cgr up` in a subprocess; ``with Suite(env) as s:`` waits for all SERVING."""

    def __init__(self, env: dict[str, str], *args: str, timeout: float = 90) -> None:
        self.env = env
        self.args = args
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def port(self, service: str) -> int:
        return int(self.env[f"CGRPY_{service.upper()}_GRPC_PORT"])

    def addr(self, service: str) -> str:
        return f"127.0.0.1:{self.port(service)}"

    def __enter__(self) -> Suite:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cgrpy.cli.main", "up", *self.args],
            cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        # a thread drains the output so the pipe never fills and blocks the suite
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if "All services SERVING" in self.read_output():
                return self
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                raise RuntimeError(f"cgr up exited {self.proc.returncode}:\n{self.read_output()[-4000:]}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"suite not SERVING in {self.timeout}s:\n{self.read_output()[-4000:]}")

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def read_output(self) -> str:
        return "".join(self.output)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.read_output()


def service_children(ppid: int) -> dict[str, int]:
    """service name -> pid of the `services.<name>` children of process ``ppid`` (from /proc)."""
    out: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != ppid:
            continue
        for i, part in enumerate(cmd):
            if part == b"-m" and i + 1 < len(cmd) and cmd[i + 1].startswith(b"services."):
                out[cmd[i + 1].decode().split(".", 1)[1]] = int(entry.name)
    return out
