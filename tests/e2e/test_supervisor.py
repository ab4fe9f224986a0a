"""`cgr up` as an operator runs it: eight processes SERVING, crash recovery, clean stop, and
one clear line for a bad start-up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cgrpy.config import SERVICES
from cgrpy.runtime.healthcheck import check
from tests.suite import REPO, Suite, service_children, suite_env

pytestmark = pytest.mark.e2e


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_restart_and_clean_stop(sqlite_url):
    env = suite_env(sqlite_url)
    with Suite(env) as suite:
        assert suite.proc is not None
        for name in SERVICES:
            assert check(suite.addr(name)) == "SERVING", name
        children = service_children(suite.proc.pid)
        assert set(children) == set(SERVICES)

        # kill -9 one service: the supervisor restarts it and it is SERVING again
        os.kill(children["rals"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = service_children(suite.proc.pid).get("rals")
            if new and new != children["rals"] and check(suite.addr("rals")) == "SERVING":
                break
            time.sleep(0.2)
        else:
            pytest.fail("rals was not restarted:\n" + suite.read_output())
        assert "service.crashed" in suite.read_output()

        all_pids = list(service_children(suite.proc.pid).values())
        rc = suite.stop()
    assert rc == 0
    for pid in all_pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    for name in SERVICES:
        assert not _listening(int(env[f"CGRPY_{name.upper()}_GRPC_PORT"])), name
        assert not _listening(int(env[f"CGRPY_{name.upper()}_METRICS_PORT"])), name


def _up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "up"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_port_in_use_is_one_clear_line(sqlite_url):
    env = suite_env(sqlite_url)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["CGRPY_STATS_GRPC_PORT"])))
        blocker.listen()
        out = _up(env)
    assert out.returncode == 78
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("cgr up: port in use: stats gRPC 127.0.0.1:" + env["CGRPY_STATS_GRPC_PORT"])


def test_unreachable_stordb_is_one_clear_line():
    port = suite_env("x")["CGRPY_RALS_GRPC_PORT"]  # a free port: nothing listens there
    env = suite_env(f"postgresql+psycopg://postgres@127.0.0.1:{port}/nope?connect_timeout=2")
    out = _up(env)
    assert out.returncode == 78
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"cgr up: StorDB postgresql+psycopg://postgres@127.0.0.1:{port}/nope")
    assert "unreachable" in lines[0]


def test_unknown_setting_is_one_clear_line(sqlite_url):
    env = suite_env(sqlite_url, CGRPY_DEBIT_INTERVALL="5s")
    out = _up(env)
    assert out.returncode == 78
    assert out.stderr.strip() == "cgr up: environment CGRPY_DEBIT_INTERVALL: unknown setting"
