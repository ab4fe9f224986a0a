"""A real OpenSIPS fails over between two SM replicas: the shipped script with its two
`cgrates_engine` entries pointed at SM replica 0 and 1 of a `cgr up --replicas 2` suite on one
Postgres; SIPp calls (`cgr smoke`) are up when SM replica 0 is killed with SIGKILL. OpenSIPS sends
the calls' Terminate/ProcessCDR to replica 1, which adopted the calls from the StorDB, and
`cgr smoke` must find every answered call with its CDRs and debited at their cost.

Needs an OpenSIPS binary (``OPENSIPS_BIN``) and SIPp; skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.faults import listener_pid, rals_pids
from cgrpy.config import load_settings
from tests.suite import REPO, Suite, replica_env, started, suite_env

from .test_opensips_start import real_opensips_or_skip

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path, pg_databases) -> Iterator[tuple[Suite, object, list[str], list[str]]]:
    if shutil.which("sipp") is None:
        pytest.skip("SIPp not installed (Debian package sip-tester)")
    db = pg_databases.create()
    osips_db = pg_databases.create()

    def make() -> Suite:
        env = suite_env(db, CGRPY_SM_CDR_WAIT="3s", **replica_env())
        return Suite(env, "--tariffplan", str(REPO / "tariffplans" / "tutorial"), timeout=180)

    with started(make) as suite:
        settings = load_settings(env={k: v for k, v in suite.env.items() if k.startswith("CGRPY_")})
        listeners = [settings.sm_listeners(k) for k in range(2)]
        engines = [lis["opensips_listen"] for lis in listeners]
        osips = real_opensips_or_skip(tmp_path, osips_db, engines[0], engines[1])
        osips.start()
        try:
            yield suite, osips, engines, [lis["http_listen"] for lis in listeners]
        finally:
            osips.stop()


def test_real_opensips_moves_running_calls_to_the_second_sm_when_the_first_dies(stack) -> None:
    suite, osips, engines, http = stack
    assert "\n".join(engines) in "\n".join(
        line.split('"')[5] for line in osips.cfg.read_text().splitlines() if '"cgrates_engine"' in line)
    sip_port = osips.cfg.read_text().split("socket=udp:127.0.0.1:", 1)[1].split()[0]
    smoke = subprocess.Popen(
        [sys.executable, "-m", "cgrpy.cli.main", "smoke", "--sip", f"127.0.0.1:{sip_port}",
         "--calls", "4", "--rate", "4", "--duration", "8", "--jsonrpc", f"http://{http[1]}/jsonrpc"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    time.sleep(4.5)  # every call answered and charging on SM replica 0
    port0 = int(engines[0].rpartition(":")[2])
    victim = listener_pid(port0, rals_pids(suite.proc.pid, "sm"))
    os.kill(victim, signal.SIGKILL)
    out, err = smoke.communicate(timeout=300)
    lines = out.strip().splitlines()
    print("\n" + out.strip())
    log = suite.read_output()
    print("\n".join(ln[:250] for ln in log.splitlines() if "sm.adopted" in ln or "sm.restored" in ln))
    # what OpenSIPS itself logged about its engines (the failover)
    print("\n".join(ln[:250] for ln in osips.log_text().splitlines() if "cgrates" in ln)[-3000:])
    assert smoke.returncode == 0, out + err + "\n" + osips.log_text()[-3000:]
    assert len(lines) == 1 and lines[0].startswith("smoke: OK: 4/4 calls answered"), lines
    assert "sm.adopted" in log  # replica 1 took replica 0's calls over
