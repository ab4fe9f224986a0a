"""Start the whole suite (`cgr up`) as real processes on free loopback ports, for e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cgrpy.config import SERVICES

REPO = Path(__file__).resolve().parent.parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports. All are bound at once: picked one by one, a port just
    closed can be handed out again, and two services of one suite then ask for the same port."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port_pairs(n: int, step: int) -> list[int]:
    """``n`` distinct free ports p, each with p + ``step`` free too (a second replica's port)."""
    out: list[int] = []
    held: list[socket.socket] = []
    try:
        while len(out) < n:
            a = socket.socket()
            a.bind(("127.0.0.1", 0))
            held.append(a)
            port = a.getsockname()[1]
            if port + step > 65535 or port + step in out or port in [p + step for p in out]:
                continue
            b = socket.socket()
            try:
                b.bind(("127.0.0.1", port + step))
            except OSError:
                b.close()
                continue
            held.append(b)
            out.append(port)
    finally:
        for s in held:
            s.close()
    return out


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
